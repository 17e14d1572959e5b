"""Money and points: one place for precision and rounding, so every path converts alike."""

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.db import models

MONEY_MAX_DIGITS = 18
MONEY_DECIMAL_PLACES = 2
MONEY_QUANTUM = Decimal("0.01")
DEFAULT_CURRENCY = "CNY"


def MoneyField(**kwargs) -> models.DecimalField:
    """A ``NUMERIC(18, 2)`` column for an amount of money."""
    return models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs
    )


def money_quantize(amount: Decimal) -> Decimal:
    """Round an amount to cents, half up (the bank's convention for displayed money)."""
    return Decimal(amount).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)


def points_for_amount(*, amount: Decimal, amount_unit: Decimal, points_per_unit: int = 1) -> int:
    """Whole points for ``amount``: ``points_per_unit`` per full ``amount_unit``, rounded down.

    CNY 39.99 at 1 point per CNY 20 is 1 point; a partial unit never earns.
    """
    if amount <= 0 or amount_unit <= 0 or points_per_unit <= 0:
        return 0
    units = (Decimal(amount) / Decimal(amount_unit)).to_integral_value(rounding=ROUND_DOWN)
    return int(units) * points_per_unit
