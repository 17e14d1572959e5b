"""Validation of incoming transactions, shared by the three ways in (API, batch file, Celery
message), so each rejects the same items for the same reasons."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from loyalty.api.batch import BatchItemSerializer, batch_validate
from loyalty.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from members.models import Member, customer_no_validator
from points.models import Channel, TransactionType, mcc_validator

# Clocks of upstream systems may run a little ahead of ours.
CLOCK_SKEW = dt.timedelta(minutes=5)
external_id_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$",
    _("An external id is 1 to 64 letters, digits or '_.:/-'."),
    code="invalid_external_id",
)
source_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,31}$",
    _("A source is 1 to 32 lowercase letters, digits, '-' or '_'."),
    code="invalid_source",
)
currency_validator = RegexValidator(
    r"^[A-Z]{3}$", _("A currency is a 3-letter ISO 4217 code."), code="invalid_currency"
)


class TransactionItemSerializer(BatchItemSerializer):
    """One incoming transaction. ``context["member_ids"]`` maps known customer numbers to ids."""

    external_id = serializers.CharField(max_length=64, validators=[external_id_validator])
    source = serializers.CharField(
        max_length=32, required=False, default="core", validators=[source_validator]
    )
    customer_no = serializers.CharField(max_length=32, validators=[customer_no_validator])
    type = serializers.ChoiceField(choices=TransactionType.choices)
    amount = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        min_value=Decimal("0.01"),
    )
    currency = serializers.CharField(
        max_length=3, required=False, default="CNY", validators=[currency_validator]
    )
    occurred_at = serializers.DateTimeField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    merchant_category = serializers.CharField(
        max_length=4, required=False, allow_blank=True, allow_null=True, validators=[mcc_validator]
    )
    reverses = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        allow_null=True,
        validators=[external_id_validator],
    )

    def validate_customer_no(self, value: str) -> str:
        if value not in self.context["member_ids"]:
            raise serializers.ValidationError(
                _("Unknown customer number."), code="unknown_customer"
            )
        return value

    def validate_occurred_at(self, value: dt.datetime) -> dt.datetime:
        if value > timezone.now() + CLOCK_SKEW:
            raise serializers.ValidationError(
                _("This timestamp is in the future."), code="future_timestamp"
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["member_id"] = self.context["member_ids"][attrs["customer_no"]]
        attrs["merchant_category"] = attrs.get("merchant_category") or ""
        attrs["reverses"] = attrs.get("reverses") or ""
        if attrs["reverses"] and attrs["reverses"] == attrs["external_id"]:
            raise serializers.ValidationError(
                {
                    "reverses": [
                        serializers.ErrorDetail(
                            _("A transaction cannot reverse itself."), code="reverses_itself"
                        )
                    ]
                }
            )
        return attrs


def transaction_items_validate(
    items: list[Any],
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """``([(index, validated)], [{index, errors: [{field, code, detail}]}])`` for raw items."""
    customer_nos = {
        item["customer_no"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("customer_no"), str)
    }
    member_ids = dict(
        Member.objects.filter(customer_no__in=customer_nos).values_list("customer_no", "id")
    )
    return batch_validate(
        items, serializer_class=TransactionItemSerializer, context={"member_ids": member_ids}
    )
