"""Member and asset-snapshot files for the console's import and export (django-import-export).

What holds:

- An import writes through the services that every other path uses: members through
  :func:`members.services.members.member_upsert` (validated, audited, the customer number as
  the key), snapshots through :func:`members.services.snapshots.asset_snapshots_store` (one row
  per member and date, a re-sent one replacing the amounts). A row is checked by the same rules
  as the API's: the model's validators for a member, ``AssetSnapshotItemSerializer`` for a
  snapshot (a known customer number, no future date, no negative balance), and a member and
  date given twice in one file is refused.
- Every refusal is a per-row error naming the column; the preview shows them all and offers no
  confirmation while any is left.
- Nothing is half-written: the whole file is one transaction, rolled back on any error or
  refused row, the confirmed import included (``rollback_on_validation_errors``, so a row that
  turned invalid between preview and confirmation stops the whole file).
- Exported members carry their contact data (phone, email) masked unless the exporting user
  holds ``members.view_member_contact``; no file carries an internal id.
"""

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets

from loyalty.errors import LoyaltyError
from members.api.serializers import AssetSnapshotItemSerializer
from members.models import AssetSnapshot, Member, mask_phone
from members.selectors import member_ids_by_customer_no
from members.services.members import MEMBER_FIELDS, member_upsert
from members.services.snapshots import SNAPSHOT_AMOUNTS, asset_snapshots_store

CONTACT_PERMISSION = "members.view_member_contact"


def mask_email(email: str) -> str:
    """``wang.li@example.com`` -> ``w******@example.com``: the first letter and the domain."""
    if not email:
        return ""
    local, _at, domain = email.partition("@")
    return f"{local[:1]}{'*' * max(len(local) - 1, 3)}@{domain}"


class _AllOrNothing:
    """The whole file in one transaction, rolled back on any error or refused row."""

    def import_data(self, dataset, *args: Any, **kwargs: Any):
        kwargs["use_transactions"] = True
        kwargs["rollback_on_validation_errors"] = True
        return super().import_data(dataset, *args, **kwargs)  # type: ignore[misc]


def _refusal(exc: LoyaltyError) -> ValidationError:
    return ValidationError(str(exc.detail), code=exc.code)


class MemberResource(_AllOrNothing, resources.ModelResource):
    customer_no = fields.Field(attribute="customer_no", column_name="customer_no")
    status = fields.Field(attribute="status", column_name="status", readonly=True)

    class Meta:
        model = Member
        fields = ("customer_no", *MEMBER_FIELDS, "status")
        import_id_fields = ("customer_no",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def __init__(self, *, contact_visible: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_visible = contact_visible

    def dehydrate_phone(self, member: Member) -> str:
        return member.phone if self.contact_visible else mask_phone(member.phone)

    def dehydrate_email(self, member: Member) -> str:
        return member.email if self.contact_visible else mask_email(member.email)

    def save_instance(self, instance: Member, is_create: bool, row: Any, **kwargs: Any) -> None:
        given = {name: getattr(instance, name) for name in MEMBER_FIELDS if name in row}
        try:
            member, _created = member_upsert(
                customer_no=instance.customer_no, actor=kwargs.get("user"), **given
            )
        except LoyaltyError as exc:  # e.g. a closed member: refused, reported on its row
            raise _refusal(exc) from None
        instance.pk = member.pk


class AssetSnapshotResource(_AllOrNothing, resources.ModelResource):
    customer_no = fields.Field(
        attribute="member",
        column_name="customer_no",
        widget=widgets.ForeignKeyWidget(Member, field="customer_no"),
    )

    class Meta:
        model = AssetSnapshot
        fields = ("customer_no", "as_of", *SNAPSHOT_AMOUNTS)
        export_order = ("customer_no", "as_of", *SNAPSHOT_AMOUNTS)
        import_id_fields = ("customer_no", "as_of")
        clean_model_instances = False  # checked by the API's serializer instead

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._member_ids: dict[str, int] = {}
        self._seen: dict[tuple[int, dt.date], int] = {}
        self._row: dict[str, Any] = {}
        self._errors: dict[str, list[str]] = {}

    def before_import(self, dataset, **kwargs: Any) -> None:
        column = dataset.headers.index("customer_no") if "customer_no" in dataset.headers else None
        numbers = {str(row[column]).strip() for row in dataset} if column is not None else set()
        self._member_ids = member_ids_by_customer_no(customer_nos=numbers)
        self._seen = {}

    def before_import_row(self, row: Any, **kwargs: Any) -> None:
        """Checks the row by the API's rules; what it found is used by the steps after it."""
        data = {}
        for name in ("customer_no", "as_of", *SNAPSHOT_AMOUNTS):
            value = row.get(name)
            if value is None or value == "":
                continue
            if isinstance(value, dt.datetime):  # a spreadsheet's date cell
                value = value.date()
            data[name] = value if isinstance(value, dt.date) else str(value).strip()
        serializer = AssetSnapshotItemSerializer(
            data=data, context={"member_ids": self._member_ids}
        )
        self._row, self._errors = {}, {}
        if not serializer.is_valid():
            self._errors = {
                name: [str(message) for message in messages]
                for name, messages in serializer.errors.items()
            }
            return
        self._row = dict(serializer.validated_data)
        key = (self._row["member_id"], self._row["as_of"])
        number = kwargs.get("row_number", 0)
        if key in self._seen:
            self._errors = {
                "as_of": [
                    str(
                        _("Row %(row)s already holds this member and date.")
                        % {"row": self._seen[key]}
                    )
                ]
            }
        else:
            self._seen[key] = number

    def get_or_init_instance(self, instance_loader, row: Any):
        if self._row:
            stored = AssetSnapshot.objects.filter(
                member_id=self._row["member_id"], as_of=self._row["as_of"]
            ).first()
            if stored is not None:
                return stored, False
        return AssetSnapshot(), True

    def import_instance(self, instance: AssetSnapshot, row: Any, **kwargs: Any) -> None:
        if self._errors:
            raise ValidationError(self._errors)
        instance.member_id = self._row["member_id"]
        instance.as_of = self._row["as_of"]
        for name in SNAPSHOT_AMOUNTS:
            setattr(instance, name, self._row[name])

    def save_instance(
        self, instance: AssetSnapshot, is_create: bool, row: Any, **kwargs: Any
    ) -> None:
        asset_snapshots_store(snapshots=[self._row])
        if instance.pk is None:
            instance.pk = (
                AssetSnapshot.objects.filter(member_id=instance.member_id, as_of=instance.as_of)
                .values_list("pk", flat=True)
                .first()
            )
