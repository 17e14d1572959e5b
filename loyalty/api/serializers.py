"""Serializer pieces every app's API shares, so a rule reads and answers the same everywhere.

- :class:`StrictSerializer` refuses a body field it does not declare (400, ``unknown_field``
  on that field), so a misspelt field never passes silently as if it had been left out; and a
  JSON value of the wrong type for a text or true/false field (400, ``invalid``), where DRF
  would quietly turn ``0`` into ``"0"`` or ``false``.
- :class:`MoneyField` is an amount of money as a decimal string with the ledger's precision
  (``loyalty.money``), never a float; a string that is not plainly digits (``""``, ``"1e3"``,
  ``"+1"``, ``"1."``) is refused, as the schema's pattern says.
- :func:`not_in_future` refuses a business date after today in the bank's timezone
  (``future_date``): balances, snapshots and birthdays are facts, not forecasts.
"""

import datetime as dt
import re
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from loyalty.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from loyalty.timeutils import business_today

# The JSON type each kind of field takes as it is: anything else is a client's mistake.
_JSON_TYPES: tuple[tuple[type[serializers.Field], type], ...] = (
    (serializers.BooleanField, bool),
    (serializers.CharField, str),
)


def _json_type_errors(fields: Any, data: dict) -> dict[str, list[serializers.ErrorDetail]]:
    errors = {}
    for name, field in fields.items():
        value = data.get(name)
        if field.read_only or value is None:
            continue
        for kind, json_type in _JSON_TYPES:
            if isinstance(field, kind) and not isinstance(value, json_type):
                message = str(field.error_messages["invalid"])
                errors[name] = [serializers.ErrorDetail(message, code="invalid")]
    return errors


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo never passes silently, and values of the
    wrong JSON type."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            errors = _json_type_errors(self.fields, data)
            if errors:
                raise serializers.ValidationError(errors)
            if not hasattr(self, "initial_data"):  # nested in another body: checked here
                self._refuse_unknown(data)
        return super().to_internal_value(data)

    # The docstring is the schema's description of every body without its own. A subclass
    # that overrides ``validate`` calls ``super().validate(attrs)`` first, so an unknown
    # field is reported before its own rules.

    def validate(self, attrs: Any) -> Any:
        initial = getattr(self, "initial_data", None)
        if isinstance(initial, dict):
            self._refuse_unknown(initial)
        return attrs

    def _refuse_unknown(self, data: dict) -> None:
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {
                    name: [serializers.ErrorDetail(str(_("Unknown field.")), code="unknown_field")]
                    for name in unknown
                }
            )


_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class MoneyField(serializers.DecimalField):
    """An amount of money as a decimal string (``"1234.50"``), ``NUMERIC(18, 2)`` like the
    columns it reads and writes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs)

    @property
    def pattern(self) -> str:
        """What an amount looks like: digits, at most two decimals, a sign only where the
        field takes negative amounts (the schema states it, the field enforces it)."""
        sign = "-?" if self.min_value is None or self.min_value < 0 else ""
        whole = MONEY_MAX_DIGITS - MONEY_DECIMAL_PLACES
        return rf"^{sign}\d{{1,{whole}}}(?:\.\d{{1,{MONEY_DECIMAL_PLACES}}})?$"

    def to_internal_value(self, data: Any) -> Any:
        # Plainly written digits, or ``invalid``; their number, places and sign are then
        # checked as for any decimal (``max_digits``, ``max_decimal_places``, ``min_value``).
        if isinstance(data, str) and not _PLAIN_DECIMAL.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


def not_in_future(value: dt.date | None) -> None:
    """Field validator: the date is today or earlier in the bank's timezone."""
    if value is not None and value > business_today():
        raise serializers.ValidationError(_("This date is in the future."), code="future_date")
