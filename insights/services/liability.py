"""The points liability: what the points members hold are worth to the bank, gross and net of the
points expected never to be redeemed (breakage).

Guarantees:

* **Gross** as of a business date ``D``: the points outstanding at the end of ``D`` (the sum of
  every ledger entry that occurred by then: balances, any debt netted) times
  ``ProgrammeSettings.point_value``, in money with 2 places.
* **Breakage per earning cohort** (the month of ``Lot.earned_on``), from the lots as the ledger
  holds them now, for lots earned by ``D``. For each cohort ``c``:

  - ``issued_c`` = its lots' points less what a ``reverse`` clawed back from them;
  - ``expired_c`` = what ``expire`` and ``forfeit`` debits took from them (from the lot
    consumptions, so points refunded into an expired lot and expired again count once);
  - ``outstanding_c`` = their ``remaining``;
  - ``redeemed_c`` = ``issued_c - expired_c - outstanding_c`` (what was spent: redemptions net
    of refunds, debit adjustments).

  A cohort is *resolved* when nothing of it is outstanding. The expected ultimate redemption
  rate ``R_c`` of a cohort is the points-weighted redemption rate of the resolved cohorts
  older than it, ``sum(redeemed) / sum(issued)``; with no older resolved cohort it falls back
  to the rate observed so far over every cohort, ``sum(redeemed) / sum(redeemed + expired)``
  (points resolved either way), and with nothing resolved at all to 1 (no breakage assumed).
  ``R_c`` is never below what the cohort has already redeemed, ``redeemed_c / issued_c``.
  ``breakage_c = 1 - R_c``.
* **Net**: the points of a cohort still expected to be redeemed are
  ``expected_c = min(outstanding_c, max(0, R_c * issued_c - redeemed_c))`` (what it will
  redeem in all, less what it already has, never more than it still holds); the breakage rate
  of the outstanding points is ``1 - sum(expected_c) / sum(outstanding_c)`` (null when nothing
  is outstanding), and the net liability is the gross liability times ``1 - breakage_rate``.
  When the ledger's balance equals the lots' remaining points (no debt, ``D`` today), that is
  exactly ``point_value * sum(expected_c)``. Per tier (a member's current tier), the KPIs apply
  the programme's breakage rate to the tier's own gross liability (a tier's cohorts are too
  thin a history, and splitting every lot by tier would cost a join of each).
* Set-based: one aggregate over the lots by earning day, one over the consumptions of
  ``expire``, ``forfeit`` and ``reverse`` debits (with their lots) and one over the ledger;
  nothing per member reaches Python. Rates are
  ``Decimal`` (4 places), money ``Decimal`` (2 places); no float anywhere.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection

from loyalty.money import money_quantize
from loyalty.selectors import programme_settings_get
from loyalty.timeutils import add_months, business_tz, month_end

RATE_QUANTUM = Decimal("0.0001")

# The lots earned by %(as_of)s, by earning day (months are added up in Python: a date is a
# cheaper key than a month computed per lot): their points and what they still hold.
LOTS_SQL = """
SELECT l.earned_on, sum(l.points), sum(l.remaining)
FROM points_lot l
WHERE l.earned_on <= %(as_of)s
GROUP BY 1
"""

# What expire and forfeit debits (expired) and reverses (clawed back) took from those lots, by
# the lots' earning day: the debits' consumptions only, each found with its lot by primary key.
DEBITS_SQL = """
SELECT l.earned_on,
       coalesce(sum(c.points) FILTER (WHERE e.kind IN ('expire', 'forfeit')), 0),
       coalesce(sum(c.points) FILTER (WHERE e.kind = 'reverse'), 0)
FROM points_consumption c
JOIN points_entry e ON e.id = c.entry_id
JOIN points_lot l ON l.id = c.lot_id
WHERE e.kind IN ('expire', 'forfeit', 'reverse') AND l.earned_on <= %(as_of)s
GROUP BY 1
"""

# The ledger's balance at the end of each month from the first entry to %(until)s (exclusive).
BALANCES_BY_MONTH_SQL = """
SELECT date_trunc('month', e.occurred_at AT TIME ZONE %(tz)s)::date AS month, sum(e.points)
FROM points_entry e
WHERE e.occurred_at < %(until)s
GROUP BY 1
"""


@dataclass
class Cohort:
    month: dt.date
    issued: int = 0
    expired: int = 0
    outstanding: int = 0

    @property
    def redeemed(self) -> int:
        return max(0, self.issued - self.expired - self.outstanding)

    @property
    def resolved(self) -> bool:
        return self.outstanding == 0 and self.issued > 0


def _rate(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATE_QUANTUM, ROUND_HALF_UP)


def ultimate_rates(cohorts: list[Cohort]) -> dict[dt.date, Decimal]:
    """Each cohort's expected ultimate redemption rate ``R_c`` (unrounded), as the module says."""
    ordered = sorted(cohorts, key=lambda c: c.month)
    redeemed_all = sum(c.redeemed for c in ordered)
    resolved_all = redeemed_all + sum(c.expired for c in ordered)
    fallback = Decimal(redeemed_all) / Decimal(resolved_all) if resolved_all else Decimal(1)
    rates: dict[dt.date, Decimal] = {}
    history_redeemed = history_issued = 0
    for cohort in ordered:
        base = Decimal(history_redeemed) / Decimal(history_issued) if history_issued else fallback
        own = Decimal(cohort.redeemed) / Decimal(cohort.issued) if cohort.issued else Decimal(0)
        rates[cohort.month] = min(Decimal(1), max(base, own))
        if cohort.resolved:
            history_redeemed += cohort.redeemed
            history_issued += cohort.issued
    return rates


def expected_redemptions(cohorts: list[Cohort], rates: dict[dt.date, Decimal]) -> Decimal:
    """Points of ``cohorts`` still expected to be redeemed: ``sum(expected_c)``."""
    total = Decimal(0)
    for cohort in cohorts:
        ultimate = rates[cohort.month] * cohort.issued
        total += min(Decimal(cohort.outstanding), max(Decimal(0), ultimate - cohort.redeemed))
    return total


def cohorts(*, as_of: dt.date) -> list[Cohort]:
    """The programme's cohorts of the lots earned by ``as_of``, oldest first."""
    by_month: dict[dt.date, Cohort] = {}
    with connection.cursor() as cursor:
        cursor.execute(LOTS_SQL, {"as_of": as_of})
        for earned_on, points, remaining in cursor.fetchall():
            month = earned_on.replace(day=1)
            cohort = by_month.setdefault(month, Cohort(month=month))
            cohort.issued += int(points)
            cohort.outstanding += int(remaining)
        cursor.execute(DEBITS_SQL, {"as_of": as_of})
        for earned_on, expired, reversed_ in cursor.fetchall():
            cohort = by_month[earned_on.replace(day=1)]
            cohort.expired += int(expired)
            cohort.issued -= int(reversed_)
    return sorted(by_month.values(), key=lambda c: c.month)


def breakage_rate(cohorts: list[Cohort], rates: dict[dt.date, Decimal]) -> Decimal | None:
    """The share of the outstanding points expected never to be redeemed (4 places)."""
    outstanding = sum(c.outstanding for c in cohorts)
    if not outstanding:
        return None
    expected = expected_redemptions(cohorts, rates)
    return (1 - expected / Decimal(outstanding)).quantize(RATE_QUANTUM, ROUND_HALF_UP)


def redeemed_share(cohorts: list[Cohort], rates: dict[dt.date, Decimal]) -> Decimal | None:
    """``sum(expected_c) / sum(outstanding_c)`` unrounded (``1 - breakage``), null when nothing
    is outstanding."""
    outstanding = sum(c.outstanding for c in cohorts)
    if not outstanding:
        return None
    return expected_redemptions(cohorts, rates) / Decimal(outstanding)


def liability_figures(*, outstanding_points: int, share: Decimal | None, point_value) -> dict:
    """``points_liability`` (gross), ``points_liability_net`` and ``breakage_rate`` of
    ``outstanding_points`` when ``share`` of the outstanding points is expected to be redeemed
    (:func:`redeemed_share`; ``None``: nothing outstanding in the lots, no breakage known)."""
    gross = Decimal(outstanding_points) * point_value
    # The unrounded share for the net figure, so it is exactly point_value * sum(expected_c)
    # when the ledger's balance equals the lots' remaining points.
    return {
        "points_liability": money_quantize(gross),
        "points_liability_net": money_quantize(gross * (Decimal(1) if share is None else share)),
        "breakage_rate": None
        if share is None
        else (1 - share).quantize(RATE_QUANTUM, ROUND_HALF_UP),
    }


def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=business_tz())


def points_outstanding(*, as_of: dt.date) -> int:
    """Points held at the end of ``as_of``: the sum of every entry that occurred by then."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(points), 0) FROM points_entry WHERE occurred_at < %s",
            [_day_end(as_of)],
        )
        return int(cursor.fetchone()[0])


def points_liability(*, as_of: dt.date) -> dict[str, Any]:
    """The programme's liability at the end of ``as_of``: ``points_outstanding``,
    ``points_liability`` (gross), ``points_liability_net``, ``breakage_rate``."""
    programme = cohorts(as_of=as_of)
    outstanding = points_outstanding(as_of=as_of)
    figures = liability_figures(
        outstanding_points=outstanding,
        share=redeemed_share(programme, ultimate_rates(programme)),
        point_value=programme_settings_get().point_value,
    )
    return {"as_of": as_of, "points_outstanding": outstanding, **figures}


def points_liability_series(*, first_month: dt.date, last_month: dt.date) -> list[dict[str, Any]]:
    """The liability at each month end from ``first_month`` to ``last_month`` (any day of
    them), for the dashboard: ``month`` (its first day) and :func:`points_liability`'s figures
    as of its last day. Two queries whatever the number of months: the ledger's balance by
    month, and the cohorts by the last month's end (each month end sees the lots earned by
    then)."""
    first, last = first_month.replace(day=1), last_month.replace(day=1)
    if first > last:
        return []
    until = _day_end(month_end(last))
    with connection.cursor() as cursor:
        cursor.execute(BALANCES_BY_MONTH_SQL, {"until": until, "tz": str(business_tz())})
        by_month = {month: int(points) for month, points in cursor.fetchall()}
    every = cohorts(as_of=month_end(last))
    point_value = programme_settings_get().point_value
    balance = sum(points for month, points in by_month.items() if month < first)
    series = []
    month = first
    while month <= last:
        balance += by_month.get(month, 0)
        known = [c for c in every if c.month <= month]
        figures = liability_figures(
            outstanding_points=balance,
            share=redeemed_share(known, ultimate_rates(known)),
            point_value=point_value,
        )
        series.append({"month": month, "points_outstanding": balance, **figures})
        month = add_months(month, 1)
    return series


__all__ = [
    "Cohort",
    "breakage_rate",
    "cohorts",
    "liability_figures",
    "points_liability",
    "points_liability_series",
    "redeemed_share",
    "ultimate_rates",
]
