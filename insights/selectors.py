"""Reads of the insights app: stored KPI snapshots, customer values."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from insights.models import KpiSnapshot
from members.models import MemberValue, Tier

# Every key of the figures, with its kind: how it is rounded, rendered and read back from a
# snapshot's JSON.
COUNT, POINTS, RATE, MONEY, SCORE = "count", "points", "rate", "money", "score"
KPI_FIELDS: dict[str, str] = {
    "members_total": COUNT,
    "members_new": COUNT,
    "growth_rate": RATE,
    "members_active": COUNT,
    "retention_rate": RATE,
    "avg_aum": MONEY,
    "avg_contribution": MONEY,
    "points_issued": POINTS,
    "points_redeemed": POINTS,
    "points_expired": POINTS,
    "points_outstanding": POINTS,
    "points_liability": MONEY,
    "points_liability_net": MONEY,
    "breakage_rate": RATE,
    "redemption_rate": RATE,
    "event_acceptance_rate": RATE,
    "event_attendance_rate": RATE,
    "satisfaction_avg": SCORE,
    "nps": SCORE,
}


def figures_from_json(stored: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's figures back with their types (decimals from their strings)."""
    figures: dict[str, Any] = {}
    for key, kind in KPI_FIELDS.items():
        value = stored.get(key)
        if value is None:
            figures[key] = None
        elif kind in (COUNT, POINTS):
            figures[key] = int(value)
        else:
            figures[key] = Decimal(str(value))
    return figures


def kpi_snapshot_figures(*, month: dt.date) -> dict[str, Any] | None:
    """The stored KPIs of ``month`` (its first day) in the shape of
    :func:`insights.services.kpis.kpis_compute` (``by_tier`` included), or ``None`` when the
    month has no overall snapshot."""
    rows = list(KpiSnapshot.objects.filter(month=month))
    overall = next((row for row in rows if row.tier_code == ""), None)
    if overall is None:
        return None
    figures = figures_from_json(overall.figures)
    # Lowest rank first, as computed (a code no longer configured last).
    ranks = dict(Tier.objects.values_list("code", "rank"))
    tiers = sorted(
        (row for row in rows if row.tier_code),
        key=lambda row: (ranks.get(row.tier_code, 2**16), row.tier_code),
    )
    figures["by_tier"] = {row.tier_code: figures_from_json(row.figures) for row in tiers}
    return figures


def kpi_snapshot_list() -> QuerySet[KpiSnapshot]:
    return KpiSnapshot.objects.order_by("-month", "tier_code")


def member_value_list() -> QuerySet[MemberValue]:
    return MemberValue.objects.select_related("member").order_by("-score")
