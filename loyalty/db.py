"""Database-level guarantees that must hold even for writes that bypass the ORM.

Each function here returns a migration operation (``RunSQL`` with its reverse) that installs a
PostgreSQL trigger: append-only tables, undeletable rows, references checked once per statement.
"""

from django.db import migrations

_REFUSE_CHANGE_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""


def append_only(table: str) -> migrations.RunSQL:
    """A migration operation that makes ``table`` refuse UPDATE and DELETE of any row.

    TRUNCATE stays possible for the owner, so a test database can still be flushed.
    """
    return migrations.RunSQL(
        [
            _REFUSE_CHANGE_FUNCTION,
            f"""
            CREATE OR REPLACE TRIGGER {table}_append_only
            BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();
            """,
        ],
        [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"],
        elidable=False,
    )


# Foreign keys checked once per statement.
#
# PostgreSQL checks a foreign key with one query per written row (a lookup plus a row lock on
# the referenced row). For the bulk writers (a tier evaluation chunk writes state, history and
# a message for tens of thousands of members in one statement, the points consumer thousands
# of entries) those per-row checks cost more than the writes themselves. The references below
# are checked instead once per INSERT statement, over all the rows it wrote (the statement's
# transition table), with one anti-join per column. An UPDATE is checked row by row, and only
# where it changes the reference, as a foreign key does (an inbox row changing status costs
# nothing).
#
# The row lock a foreign key takes only guards against the referenced row being deleted (or
# its key changed) before the writer commits. These references point only at tables whose rows
# are never deleted and whose keys never change (members are closed, tiers retired, runs and
# inbox transactions kept as records), which :func:`undeletable` makes the database enforce.
# A row that is visible once can therefore never go away, so the check needs no lock and is as
# strong as a foreign key. One difference: a foreign key also refuses TRUNCATE of the referenced
# table alone; here TRUNCATE is left to the owner, whose tool it is for emptying a database (a
# test flush truncates every table in one statement). The functions run with the search_path of
# the migration that created them, so a caller's search_path cannot point a check elsewhere.

_CHECK_REFERENCES_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_check_references() RETURNS trigger AS $$
DECLARE
    i integer := 0;
    missing text;
BEGIN
    -- TG_ARGV: (column, referenced table, referenced column) triples.
    WHILE i < TG_NARGS LOOP
        EXECUTE format(
            -- Each distinct value once: a chunk's 20,000 history rows name five tiers.
            'SELECT n.v::text FROM (SELECT DISTINCT %1$I AS v FROM loyalty_new_rows '
            'WHERE %1$I IS NOT NULL) n '
            'WHERE NOT EXISTS (SELECT FROM %2$I r WHERE r.%3$I = n.v) LIMIT 1',
            TG_ARGV[i], TG_ARGV[i + 1], TG_ARGV[i + 2]
        ) INTO missing;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION
                'insert or update on table "%" violates its reference to "%"', TG_TABLE_NAME,
                TG_ARGV[i + 1]
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (%s)=(%s) is not present in table "%s".',
                                      TG_ARGV[i], missing, TG_ARGV[i + 1]);
        END IF;
        i := i + 3;
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;
"""

# The row check for an UPDATE that changes a reference: one function per column, with the
# tables in its text (not a generic one with dynamic SQL), so its query is planned once per
# session like a foreign key's, not on every row.
_CHECK_COLUMN_FUNCTION = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM {target} WHERE {target_column} = NEW.{column}) THEN
        RAISE EXCEPTION 'insert or update on table "{table}" violates its reference to "{target}"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key ({column})=(%s) is not present in table "{target}".',
                                  NEW.{column});
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;
"""

_REFUSE_DELETE_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_refuse_delete() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'rows of table % are never deleted or re-keyed: % refused',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""


def checked_references(table: str, references: dict[str, tuple[str, str]]) -> migrations.RunSQL:
    """A migration operation that checks ``table``'s ``references`` (column: (referenced
    table, referenced column)) once per INSERT statement over all its rows, and on UPDATE for
    each row whose reference changes.

    For columns declared ``ForeignKey(db_constraint=False)`` whose referenced table is
    :func:`undeletable`: see the comment above for why that is as strong as a foreign key.
    A dangling reference raises ``foreign_key_violation`` (Django's ``IntegrityError``) and
    the statement writes nothing.
    """
    arguments = ", ".join(
        f"'{column}', '{target}', '{target_column}'"
        for column, (target, target_column) in references.items()
    )
    forward = [
        _CHECK_REFERENCES_FUNCTION,
        f"""
        CREATE TRIGGER {table}_insert_references
        AFTER INSERT ON {table}
        REFERENCING NEW TABLE AS loyalty_new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION loyalty_check_references({arguments});
        """,
    ]
    backward = [f"DROP TRIGGER IF EXISTS {table}_insert_references ON {table};"]
    for column, (target, target_column) in references.items():
        function = f"{table}_{column}_reference"
        name = f"{table}_{column}_update_reference"
        forward += [
            _CHECK_COLUMN_FUNCTION.format(
                function=function,
                table=table,
                column=column,
                target=target,
                target_column=target_column,
            ),
            f"""
            CREATE TRIGGER {name}
            AFTER UPDATE OF {column} ON {table}
            FOR EACH ROW
            WHEN (NEW.{column} IS NOT NULL AND OLD.{column} IS DISTINCT FROM NEW.{column})
            EXECUTE FUNCTION {function}();
            """,
        ]
        backward += [
            f"DROP TRIGGER IF EXISTS {name} ON {table};",
            f"DROP FUNCTION IF EXISTS {function}();",
        ]
    return migrations.RunSQL(tuple(forward), tuple(backward), elidable=False)


def undeletable(table: str, key: str = "id") -> migrations.RunSQL:
    """A migration operation that makes ``table`` refuse DELETE and any change of ``key``."""
    return migrations.RunSQL(
        [
            _REFUSE_DELETE_FUNCTION,
            f"""
            CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_delete();
            """,
            f"""
            CREATE TRIGGER {table}_no_rekey BEFORE UPDATE OF {key} ON {table}
            FOR EACH ROW WHEN (OLD.{key} IS DISTINCT FROM NEW.{key})
            EXECUTE FUNCTION loyalty_refuse_delete();
            """,
        ],
        [
            f"DROP TRIGGER IF EXISTS {table}_no_delete ON {table};",
            f"DROP TRIGGER IF EXISTS {table}_no_rekey ON {table};",
        ],
        elidable=False,
    )
