"""Set-based writes the ORM makes slow: updating many rows, each to its own values.

``QuerySet.bulk_update`` builds a ``CASE WHEN pk = ...`` per column and row, which costs
seconds for a thousand rows; on PostgreSQL this sends one ``UPDATE ... FROM unnest(arrays)``
instead (one array parameter per column). Other databases fall back to ``bulk_update``.

The statements run on the connection's psycopg cursor with server-side parameter binding (the
arrays travel as parameters, not as quoted SQL text), inside Django's current transaction.
"""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

from django.db import connection, models

_ARRAY_TYPES = {
    "BigAutoField": "bigint",
    "BigIntegerField": "bigint",
    "IntegerField": "integer",
    "PositiveIntegerField": "integer",
    "CharField": "text",
    "DateTimeField": "timestamptz",
    "DateField": "date",
}


@contextmanager
def raw_cursor() -> Iterator[Any]:
    """A psycopg cursor on Django's connection (same transaction) that binds parameters on the
    server, unlike Django's own client-side binding cursor. Database errors come out as Django's
    (``django.db.IntegrityError`` and so on), as from any other query."""
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def rows_update(
    objects: Sequence[Any], fields: list[str], *, model: type[models.Model] | None = None
) -> None:
    """Write ``fields`` of ``objects`` (rows of ``model``, with primary keys: model instances or
    plain objects with the same attribute names) in one statement."""
    if not objects:
        return
    model = model or type(objects[0])
    meta: Any = model._meta  # get_field()/pk are unions in the stubs; these are concrete fields
    if connection.vendor != "postgresql":
        # The development database (SQLite): one UPDATE per row is fast enough there.
        attnames = {name: meta.get_field(name).attname for name in fields}
        for obj in objects:
            model._default_manager.filter(pk=getattr(obj, meta.pk.attname)).update(
                **{name: getattr(obj, attname) for name, attname in attnames.items()}
            )
        return
    pk = meta.pk
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    pk_name = quote(pk.column)
    pk_type = _ARRAY_TYPES[pk.get_internal_type()]
    ids = [getattr(obj, pk.attname) for obj in objects]
    # A column with one value for every row is bound once, not as an array.
    assignments, columns, arrays, params = [], [pk_name], [f"%b::{pk_type}[]"], [ids]
    scalars: list[Any] = []
    for name in fields:
        field = meta.get_field(name)
        kind = _ARRAY_TYPES[field.get_internal_type()]
        column = quote(field.column)
        values = [getattr(obj, field.attname) for obj in objects]
        first = values[0]
        if all(value == first and type(value) is type(first) for value in values):
            assignments.append(f"{column} = %b::{kind}")
            scalars.append(first)
        else:
            assignments.append(f"{column} = v.{column}")
            columns.append(column)
            arrays.append(f"%b::{kind}[]")
            params.append(values)
    # ``t.pk = ANY(ids)`` lets the planner reach the rows through the primary key whatever its
    # statistics say, instead of hashing a scan of the whole table.
    sql = (
        f"UPDATE {table} AS t SET {', '.join(assignments)} "  # noqa: S608 - the model's names
        f"FROM unnest({', '.join(arrays)}) AS v({', '.join(columns)}) "
        f"WHERE t.{pk_name} = v.{pk_name} AND t.{pk_name} = ANY(%b::{pk_type}[])"
    )
    with raw_cursor() as cursor:
        cursor.execute(sql, [*scalars, *params, ids])


_INSERT_TYPES = {
    **_ARRAY_TYPES,
    "UUIDField": "uuid",
    "JSONField": "jsonb",
    "DecimalField": "numeric",
    "BooleanField": "boolean",
    "TextField": "text",
    "SlugField": "text",
    "PositiveSmallIntegerField": "smallint",
}


def _array_type(field: Any) -> str:
    if field.is_relation:
        return _array_type(field.target_field)
    return _INSERT_TYPES[field.get_internal_type()]


def rows_insert(
    objects: Sequence[Any], *, key: str, model: type[models.Model] | None = None
) -> None:
    """Insert ``objects`` (rows of ``model`` with auto primary keys: model instances or plain
    objects with the same attribute names) in one statement and set their primary keys, matched
    back through the unique field ``key``. The ORM's ``bulk_create`` spends most of its time
    binding one parameter per value; this binds one array per column."""
    if not objects:
        return
    model = model or type(objects[0])
    meta: Any = model._meta  # get_field()/pk are unions in the stubs; these are concrete fields
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    if connection.vendor != "postgresql":
        instances = [
            obj
            if isinstance(obj, model)
            else model(**{field.attname: getattr(obj, field.attname) for field in fields})
            for obj in objects
        ]
        model._default_manager.bulk_create(instances, batch_size=500)
        for obj, instance in zip(objects, instances, strict=True):
            setattr(obj, meta.pk.attname, instance.pk)
        return
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in fields)
    arrays = []
    params = []
    for field in fields:
        kind = _array_type(field)
        values = [getattr(obj, field.attname) for obj in objects]
        if kind == "jsonb":
            values = [json.dumps(value, cls=field.encoder) for value in values]
            arrays.append("%b::text[]")
        elif kind == "uuid":
            values = [str(value) for value in values]
            arrays.append("%b::uuid[]")
        else:
            arrays.append(f"%b::{kind}[]")
        params.append(values)
    select = ", ".join(
        f"v{index}::jsonb" if _array_type(field) == "jsonb" else f"v{index}"
        for index, field in enumerate(fields)
    )
    aliases = ", ".join(f"v{index}" for index in range(len(fields)))
    key_column = quote(meta.get_field(key).column)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({names}) "  # noqa: S608 - the model's own names
        f"SELECT {select} FROM unnest({', '.join(arrays)}) AS u({aliases}) "
        f"RETURNING {quote(meta.pk.column)}, {key_column}"
    )
    with raw_cursor() as cursor:
        cursor.execute(sql, params)
        ids = {row[1]: row[0] for row in cursor.fetchall()}
    key_attname = meta.get_field(key).attname
    for obj in objects:
        setattr(obj, meta.pk.attname, ids[getattr(obj, key_attname)])
        if isinstance(obj, models.Model):
            obj._state.adding = False
            obj._state.db = connection.alias


_SEQUENCES: dict[str, str] = {}


def _sequence(meta) -> str:
    """The name of the sequence behind ``meta``'s auto primary key (cached per process)."""
    table = meta.db_table
    if table not in _SEQUENCES:
        with raw_cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, meta.pk.column])
            _SEQUENCES[table] = cursor.fetchone()[0]
    return _SEQUENCES[table]


def rows_create(objects: Sequence[Any], *, key: str, model: type[models.Model]) -> None:
    """Insert ``objects`` (plain objects with the model's attribute names, primary key unset)
    and set their primary keys.

    On PostgreSQL the keys come from the table's own sequence first (one round trip, in the
    order of ``objects``, so they grow in the order the rows were made, as with an ``INSERT``),
    then the rows go in with ``COPY``, which costs the server and the client least per row.
    Elsewhere this is :func:`rows_insert` (``key`` names a unique field to match keys back).
    """
    if not objects:
        return
    meta: Any = model._meta  # get_field()/pk are unions in the stubs; these are concrete fields
    if connection.vendor != "postgresql":
        rows_insert(objects, key=key, model=model)
        return
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT array(SELECT nextval(%s::regclass) FROM generate_series(1, %s))",
            [_sequence(meta), len(objects)],
        )
        ids = cursor.fetchone()[0]
        pk_attname = meta.pk.attname
        for obj, pk in zip(objects, ids, strict=True):
            setattr(obj, pk_attname, pk)
        fields = list(meta.concrete_fields)
        getter = attrgetter(*(field.attname for field in fields))
        encoders: list[tuple[int, Any]] = [
            (index, field.encoder or json.JSONEncoder)
            for index, field in enumerate(fields)
            if field.get_internal_type() == "JSONField"
        ]
        encoders = [(index, encoder().encode) for index, encoder in encoders]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in fields)
        with cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            write = copy.write_row
            if encoders:
                for obj in objects:
                    row = list(getter(obj))
                    for index, encode in encoders:
                        row[index] = encode(row[index])
                    write(row)
            else:
                for obj in objects:
                    write(getter(obj))
    for obj in objects:
        if isinstance(obj, models.Model):
            obj._state.adding = False
            obj._state.db = connection.alias


def rows_fetch(sql: str, params: Sequence[Any] = (), *, binary: bool = False) -> list[tuple]:
    """The rows of ``sql`` run with server-side parameter binding (arrays as one parameter each:
    ``= ANY(%b::bigint[])`` instead of an ``IN`` list of a thousand literals).

    With ``binary``, results come in binary format, which psycopg loads faster (timestamps come
    back aware, in the connection's time zone, UTC under Django)."""
    with raw_cursor() as cursor:
        cursor.execute(sql, params, binary=binary)
        return cursor.fetchall() if cursor.description else []
