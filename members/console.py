"""What other apps show of a member in the staff console.

Members cannot import the apps built on it (points, rewards, events), yet the customer view
lists a member's ledger, lots, adjustments, redemptions and invitations, and closing members
shows the points they will forfeit. Each such app registers what it knows from its
``AppConfig.ready()``, as it registers its API sections (``members.api.sections``):

- ``customer_rows_register(name=..., load=...)``: ``load(*, member)`` is a queryset of the
  member's rows of one kind, newest first (the view takes the first few in one query);
- ``points_balances_register(balances=..., total=...)``: ``balances(*, member_ids)`` is each
  member's spendable balance, ``total(*, members)`` the sum over a queryset of members.

A name registered twice fails loudly. Without the app, its part of the page is absent.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

RowsLoader = Callable[..., QuerySet]

_ROWS: dict[str, RowsLoader] = {}


@dataclass(frozen=True)
class PointsBalances:
    balances: Callable[..., dict[int, int]]
    total: Callable[..., int]


_BALANCES: list[PointsBalances] = []


def customer_rows_register(*, name: str, load: RowsLoader) -> None:
    if name in _ROWS:
        raise ImproperlyConfigured(f"Customer view rows {name!r} are registered twice.")
    _ROWS[name] = load


def customer_rows_loaders() -> dict[str, RowsLoader]:
    return dict(_ROWS)


def points_balances_register(
    *, balances: Callable[..., dict[int, int]], total: Callable[..., int]
) -> None:
    if _BALANCES:
        raise ImproperlyConfigured("Points balances are registered twice.")
    _BALANCES.append(PointsBalances(balances=balances, total=total))


def points_balances() -> PointsBalances | None:
    """The registered points balances, or ``None`` without the points app."""
    return _BALANCES[0] if _BALANCES else None
