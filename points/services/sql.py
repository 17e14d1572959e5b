"""Set-based writes the ORM makes slow: updating many rows, each to its own values.

``QuerySet.bulk_update`` builds a ``CASE WHEN pk = ...`` per column and row, which costs
seconds for a thousand rows; on PostgreSQL this sends one ``UPDATE ... FROM unnest(arrays)``
instead (one array parameter per column). Other databases fall back to ``bulk_update``.
"""

from collections.abc import Sequence

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


def rows_update(objects: Sequence[models.Model], fields: list[str]) -> None:
    """Write ``fields`` of ``objects`` (all of one model, with primary keys) in one statement."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objects, fields, batch_size=1000)
        return
    meta = model._meta
    pk = meta.pk
    columns = [pk, *(meta.get_field(name) for name in fields)]
    types = [_ARRAY_TYPES[column.get_internal_type()] for column in columns]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = [quote(column.column) for column in columns]
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    arrays = ", ".join(f"%s::{kind}[]" for kind in types)
    sql = (
        f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 - names are the model's own
        f"FROM unnest({arrays}) AS v({', '.join(names)}) WHERE t.{names[0]} = v.{names[0]}"
    )
    params = [[getattr(obj, column.attname) for obj in objects] for column in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
