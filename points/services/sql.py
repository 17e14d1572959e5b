"""Set-based writes the ORM makes slow: updating many rows, each to its own values.

``QuerySet.bulk_update`` builds a ``CASE WHEN pk = ...`` per column and row, which costs
seconds for a thousand rows; on PostgreSQL this sends one ``UPDATE ... FROM unnest(arrays)``
instead (one array parameter per column); new rows go in with ``COPY``.

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


_SEQUENCES: dict[str, str] = {}


def _sequence(meta) -> str:
    """The name of the sequence behind ``meta``'s auto primary key (cached per process)."""
    table = meta.db_table
    if table not in _SEQUENCES:
        with raw_cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, meta.pk.column])
            _SEQUENCES[table] = cursor.fetchone()[0]
    return _SEQUENCES[table]


def rows_create(objects: Sequence[Any], *, model: type[models.Model]) -> None:
    """Insert ``objects`` (plain objects with the model's attribute names, primary key unset)
    and set their primary keys.

    The keys come from the table's own sequence first (one round trip, in the order of
    ``objects``, so they grow in the order the rows were made, as with an ``INSERT``), then the
    rows go in with ``COPY``, which costs the server and the client least per row.
    """
    if not objects:
        return
    meta: Any = model._meta  # get_field()/pk are unions in the stubs; these are concrete fields
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
