"""Transactions imported in the console (django-import-export) go into the inbox exactly as
the API's do: each row is judged by :func:`points.validation.transaction_items_validate` (the
API's validation) and stored by :func:`points.services.ingest.transactions_store` (the API's
ingest: ``ON CONFLICT DO NOTHING`` per ``(source, external_id)``, the consumer enqueued after the
commit), received ``via`` the batch file.

Guarantees: the preview stores nothing; a row that is not valid is shown with its reasons and
the file is not stored at all (nothing half-written); a row already in the inbox, or repeated
in the file, is shown as skipped, never an error, and never stored twice."""

import datetime as dt
from collections import OrderedDict
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources
from import_export.results import Result, RowResult

from points.models import Transaction
from points.services.ingest import transactions_store
from points.validation import transaction_items_validate

# The columns of a file, in the API's names: the delivered fields and the customer number.
IMPORT_COLUMNS = ("customer_no", *Transaction.DELIVERED_FIELDS)
NOTE_COLUMN = "note"


def _cell(value: Any) -> Any:
    """A cell as the API would receive it: text (a spreadsheet's date or number as text),
    an empty cell left out."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float | int | Decimal) and not isinstance(value, bool):
        # A spreadsheet's number (a float in Excel) as its shortest text; the API's own
        # validation then parses the amount as a Decimal of two places or refuses the row.
        return str(value)
    return value.strip() if isinstance(value, str) else value


class TransactionResource(resources.ModelResource):
    """Import only (the inbox's export is the admin's own, of what the list shows)."""

    customer_no = fields.Field(attribute="member__customer_no", column_name="customer_no")

    class Meta:
        model = Transaction
        fields = IMPORT_COLUMNS
        import_id_fields = ("source", "external_id")
        skip_unchanged = False
        report_skipped = True

    def get_diff_headers(self) -> list[str]:
        return [*IMPORT_COLUMNS, NOTE_COLUMN]

    def import_data_inner(
        self,
        dataset,
        dry_run,
        raise_errors,
        using_transactions,
        collect_failed_rows,
        **kwargs,
    ) -> Result:
        """The whole file at once, as one delivery to the API would be (``import_data`` runs
        this inside its transaction, rolled back for a preview)."""
        result = self.get_result_class()()
        result.diff_headers = self.get_diff_headers()
        result.total_rows = len(dataset)
        headers = [str(header).strip() for header in dataset.headers or []]
        missing = [name for name in ("customer_no", "external_id") if name not in headers]
        if missing:
            result.append_base_error(
                self.get_error_result_class()(
                    ValidationError(
                        _("The file has no column %(columns)s.") % {"columns": ", ".join(missing)}
                    )
                )
            )
            return result
        rows = [OrderedDict(zip(headers, values, strict=False)) for values in dataset]
        items = [
            {
                name: _cell(row.get(name))
                for name in IMPORT_COLUMNS
                if name in row and _cell(row.get(name)) is not None
            }
            for row in rows
        ]
        valid, rejected = transaction_items_validate(items)
        errors = {entry["index"]: entry["errors"] for entry in rejected}
        stored = self._stored_keys([item for _, item in valid])
        seen: set[tuple[str, str]] = set()
        to_store = []
        validated = dict(valid)
        for index, row in enumerate(rows):
            row_result = self.get_row_result_class()()
            row_result.row_values = row
            if index in errors:
                row_result.import_type = RowResult.IMPORT_TYPE_INVALID
                row_result.validation_error = ValidationError(
                    {
                        (error.get("field") or NON_FIELD_ERRORS): [str(error["detail"])]
                        for error in errors[index]
                    }
                )
                result.append_invalid_row(index + 1, row, row_result.validation_error)
            else:
                item = validated[index]
                key = (item["source"], item["external_id"])
                note = ""
                if key in stored:
                    row_result.import_type = RowResult.IMPORT_TYPE_SKIP
                    note = str(_("Already in the inbox: not stored again."))
                elif key in seen:
                    row_result.import_type = RowResult.IMPORT_TYPE_SKIP
                    note = str(_("Repeated in this file: stored once."))
                else:
                    row_result.import_type = RowResult.IMPORT_TYPE_NEW
                    to_store.append(item)
                seen.add(key)
                row_result.diff = [
                    *(
                        row.get(name, "") if row.get(name) is not None else ""
                        for name in IMPORT_COLUMNS
                    ),
                    note,
                ]
            result.increment_row_result_total(row_result)
            result.append_row_result(row_result)
        if not dry_run and not result.has_validation_errors() and to_store:
            transactions_store(transactions=to_store, via=Transaction.Via.FILE)
        return result

    @staticmethod
    def _stored_keys(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """Which of the items' ``(source, external_id)`` the inbox holds already."""
        if not items:
            return set()
        external_ids = sorted({item["external_id"] for item in items})
        return set(
            Transaction.objects.filter(external_id__any=external_ids).values_list(
                "source", "external_id"
            )
        )
