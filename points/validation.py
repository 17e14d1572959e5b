"""Validation of incoming transactions, shared by the three ways in (API, batch file, Celery
message), so each rejects the same items for the same reasons.

An item is judged on its own: one that is malformed, names an unknown customer, or lies beyond
the programme's plausibility limits (``ProgrammeSettings.oldest_transaction_days`` and
``largest_transaction_amount``) is rejected with its reasons while the others go on. No raw value
reaches a query before it has passed its pattern, so text PostgreSQL cannot hold (a NUL, a lone
surrogate) is a rejected item, never a failed batch."""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from loyalty.api.batch import BatchItemSerializer, batch_validate
from loyalty.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from loyalty.selectors import programme_settings_get
from members.models import customer_no_validator
from members.selectors import member_ids_by_customer_no
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
    """One incoming transaction. ``context["member_ids"]`` maps known customer numbers to ids;
    ``context["limits"]`` holds the plausibility limits (:class:`Limits`)."""

    external_id = serializers.CharField(max_length=64, validators=[external_id_validator])
    source = serializers.CharField(  # type: ignore[assignment]  # a field named like Field.source
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
        limits: Limits = self.context["limits"]
        if value > limits.latest:
            raise serializers.ValidationError(
                _("This timestamp is in the future."), code="future_timestamp"
            )
        if value < limits.earliest:
            raise serializers.ValidationError(
                _("This transaction is older than the programme accepts (%(days)s days).")
                % {"days": limits.oldest_days},
                code="too_old",
            )
        return value

    def validate_amount(self, value: Decimal) -> Decimal:
        limits: Limits = self.context["limits"]
        if value > limits.largest_amount:
            raise serializers.ValidationError(
                _("This amount is over the largest the programme accepts (%(amount)s).")
                % {"amount": limits.largest_amount},
                code="amount_too_large",
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
                            str(_("A transaction cannot reverse itself.")), code="reverses_itself"
                        )
                    ]
                }
            )
        return attrs


# RegexValidator compiles ``regex`` in __init__; the stubs still allow the uncompiled str.
_EXTERNAL_ID = re.compile(cast(re.Pattern[str], external_id_validator.regex).pattern)
_SOURCE = re.compile(cast(re.Pattern[str], source_validator.regex).pattern)
_CURRENCY = re.compile(cast(re.Pattern[str], currency_validator.regex).pattern)
_MCC = re.compile(r"^[0-9]{4}$")
_AMOUNT = re.compile(r"^[0-9]{1,16}(\.[0-9]{1,2})?$")
_TYPES = frozenset(TransactionType.values)
_CHANNELS = frozenset(Channel.values)
_CENT = Decimal("0.01")


def _optional_text(item: dict[str, Any], key: str, pattern: re.Pattern, default: str) -> Any:
    value = item.get(key, default)
    if value is None or value == "":
        return "" if key in ("merchant_category", "reverses") else None
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    return None


@dataclass(frozen=True)
class Limits:
    """What a transaction may be, as of one moment: no later than ``latest`` (our clock plus the
    skew), no earlier than ``earliest``, no larger than ``largest_amount``."""

    latest: dt.datetime
    earliest: dt.datetime
    oldest_days: int
    largest_amount: Decimal

    @classmethod
    def now(cls) -> "Limits":
        programme = programme_settings_get()
        now = timezone.now()
        return cls(
            latest=now + CLOCK_SKEW,
            earliest=now - dt.timedelta(days=programme.oldest_transaction_days),
            oldest_days=programme.oldest_transaction_days,
            largest_amount=programme.largest_transaction_amount,
        )


def _fast_validate(item: Any, member_ids: dict[str, int], limits: Limits) -> dict | None:
    """The validated form of an item that is plainly valid, or ``None`` to let the serializer
    decide (and explain). Accepts nothing the serializer would refuse."""
    if not isinstance(item, dict):
        return None
    external_id, customer_no = item.get("external_id"), item.get("customer_no")
    # fullmatch, never match: a pattern's "$" also matches before a final newline, and
    # "T1\n" must not pass as a different transaction than "T1".
    if not isinstance(external_id, str) or not _EXTERNAL_ID.fullmatch(external_id):
        return None
    member_id = member_ids.get(customer_no) if isinstance(customer_no, str) else None
    if member_id is None or item.get("type") not in _TYPES:
        return None
    if item.get("channel") not in _CHANNELS:
        return None
    amount = item.get("amount")
    plain_int = isinstance(amount, int) and not isinstance(amount, bool)
    if plain_int or (isinstance(amount, str) and _AMOUNT.fullmatch(amount)):
        amount = Decimal(amount)  # type: ignore[arg-type]  # int or str: checked just above
    elif not (
        isinstance(amount, Decimal)
        and amount.is_finite()
        and _CENT <= amount < Decimal("1e16")
        and amount == amount.quantize(_CENT)
    ):
        return None
    if not _CENT <= amount <= limits.largest_amount:
        return None
    occurred_at = item.get("occurred_at")
    if not isinstance(occurred_at, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(occurred_at)
        if moment.tzinfo is None or not limits.earliest <= moment <= limits.latest:
            return None
        moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    source = _optional_text(item, "source", _SOURCE, "core")
    currency = _optional_text(item, "currency", _CURRENCY, "CNY")
    mcc = _optional_text(item, "merchant_category", _MCC, "")
    reverses = _optional_text(item, "reverses", _EXTERNAL_ID, "")
    if source is None or currency is None or mcc is None or reverses is None:
        return None
    if reverses == external_id:
        return None
    return {
        "external_id": external_id,
        "source": source,
        "customer_no": customer_no,
        "type": item["type"],
        "amount": amount.quantize(_CENT),
        "currency": currency,
        "occurred_at": moment,
        "channel": item["channel"],
        "merchant_category": mcc,
        "reverses": reverses,
        "member_id": member_id,
    }


def transaction_items_validate(
    items: list[Any],
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """``([(index, validated)], [{index, errors: [{field, code, detail}]}])`` for raw items.

    Plainly valid items take a fast path (a batch of 1,000 is mostly those); any other item is
    judged by :class:`TransactionItemSerializer`, which names the reasons.
    """
    customer_nos = {
        item["customer_no"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("customer_no"), str)
    }
    member_ids = member_ids_by_customer_no(customer_nos=customer_nos)
    limits = Limits.now()
    context = {"member_ids": member_ids, "limits": limits}
    valid: list[tuple[int, dict[str, Any]]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        data = _fast_validate(item, member_ids, limits)
        if data is not None:
            valid.append((index, data))
            continue
        slow_valid, slow_rejected = batch_validate(
            [item], serializer_class=TransactionItemSerializer, context=context
        )
        valid.extend((index, data) for _, data in slow_valid)
        rejected.extend({**row, "index": index} for row in slow_rejected)
    return valid, rejected
