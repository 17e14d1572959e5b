"""``field__any=values``: one array parameter instead of an ``IN`` list.

``Entry.objects.filter(member_id__any=ids)`` becomes ``"member_id" = ANY(%s::bigint[])`` with the
ids bound as one PostgreSQL array. Django's ``__in`` writes one placeholder per value; for the
thousand ids of a consumer batch, building and splitting those placeholders cost more than the
look-up itself, and raw SQL was written only to bind an array. The cast names the column's own
type, so the planner uses the column's index whatever type psycopg would infer for the list.
"""

from collections.abc import Iterable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, ForeignObject, Lookup
from django.db.models.sql.compiler import SQLCompiler


@ForeignObject.register_lookup  # a relation keeps its own lookups: ``member__any=ids``
@Field.register_lookup
class AnyLookup(Lookup):  # type: ignore[type-arg]
    lookup_name = "any"
    # The right-hand side is a list, not one value of the field: no per-value preparation.
    prepare_rhs = False

    def get_db_prep_lookup(  # type: ignore[override]  # params hold one list
        self, value: Any, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise TypeError(f"{self.lhs.output_field.name}__any takes a list of values.")
        field = self.lhs.output_field
        return "%s", [[field.get_db_prep_value(item, connection) for item in value]]

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        db_type = self.lhs.output_field.cast_db_type(connection)
        return f"{lhs_sql} = ANY({rhs_sql}::{db_type}[])", [*lhs_params, *rhs_params]
