"""Database-level guarantees that must hold even for writes that bypass the ORM."""

from django.db import migrations


def _append_only_sql(vendor: str, table: str) -> tuple[list[str], list[str]]:
    if vendor == "postgresql":
        forward = [
            """
            CREATE OR REPLACE FUNCTION loyalty_refuse_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'restrict_violation';
            END;
            $$ LANGUAGE plpgsql;
            """,
            f"""
            CREATE TRIGGER {table}_append_only
            BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();
            """,
        ]
        backward = [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};",
        ]
    elif vendor == "sqlite":
        forward = [
            f"""
            CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;
            """,
            f"""
            CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;
            """,
        ]
        backward = [
            f"DROP TRIGGER IF EXISTS {table}_no_update;",
            f"DROP TRIGGER IF EXISTS {table}_no_delete;",
        ]
    else:
        forward, backward = [], []
    return forward, backward


def append_only(table: str) -> migrations.RunPython:
    """A migration operation that makes ``table`` refuse UPDATE and DELETE of any row.

    TRUNCATE stays possible for the owner, so a test database can still be flushed.
    """

    def forward(apps, schema_editor):
        for statement in _append_only_sql(schema_editor.connection.vendor, table)[0]:
            schema_editor.execute(statement, params=None)

    def backward(apps, schema_editor):
        for statement in _append_only_sql(schema_editor.connection.vendor, table)[1]:
            schema_editor.execute(statement, params=None)

    return migrations.RunPython(forward, backward, elidable=False)
