"""Reads of the insights app: stored KPI snapshots, customer values, surveys (marketing's
list and figures; a member's own surveys, another member's not found)."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Min, Q, QuerySet

from insights.errors import SurveyNotFound
from insights.models import KpiSnapshot, Survey, SurveyResponse
from members.models import (
    Member,
    MemberValue,
    Tier,
    TierEvaluationRun,
    TierHistory,
    TierOverride,
)
from points.models import Adjustment, Transaction

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
    "recommended_redemption_rate": RATE,
    "holdout_redemption_rate": RATE,
    "recommendation_uplift": RATE,
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


# --- Surveys ---------------------------------------------------------------------------


def survey_list() -> QuerySet[Survey]:
    return Survey.objects.all()


def survey_get(*, survey_id: Any) -> Survey:
    survey = Survey.objects.filter(pk=survey_id).first()
    if survey is None:
        raise SurveyNotFound()
    return survey


def survey_figures(*, survey: Survey) -> dict[str, Any]:
    """Responses sent and answered, promoters (9-10), passives (7-8), detractors (0-6), the
    average score and the NPS (% promoters minus % detractors), both with two places; null
    while nobody has answered."""
    figures = SurveyResponse.objects.filter(survey=survey).aggregate(
        sent=Count("id"),
        answered=Count("id", filter=Q(answered_at__isnull=False)),
        promoters=Count("id", filter=Q(score__gte=9)),
        passives=Count("id", filter=Q(score__gte=7, score__lte=8)),
        detractors=Count("id", filter=Q(score__lte=6)),
        score_avg=Avg("score"),
    )
    answered = figures["answered"]
    hundredth = Decimal("0.01")
    figures["score_avg"] = Decimal(figures["score_avg"]).quantize(hundredth) if answered else None
    figures["nps"] = (
        (Decimal(100) * (figures["promoters"] - figures["detractors"]) / answered).quantize(
            hundredth
        )
        if answered
        else None
    )
    return figures


def member_surveys(*, member: Member) -> QuerySet[SurveyResponse]:
    return SurveyResponse.objects.filter(member=member).select_related("survey")


def member_survey_get(*, member: Member, response_id: Any) -> SurveyResponse:
    response = member_surveys(member=member).filter(pk=response_id).first()
    if response is None:
        raise SurveyNotFound()
    return response


# --- The console's dashboard -----------------------------------------------------------
# Each read below is one or two set-based statements whatever the number of members: the
# database aggregates, Python receives a handful of rows (a month, a tier, a status).

DASHBOARD_MONTHS = 12
DASHBOARD_APPROVALS_SHOWN = 10


def dashboard_kpi_months(*, months: int = DASHBOARD_MONTHS) -> list[dict[str, Any]]:
    """The latest ``months`` months that have an overall KPI snapshot, oldest first, each
    ``{"month": date, "figures": {...}, "by_tier": {tier_code: {...}}}`` with the figures
    typed as :func:`figures_from_json` reads them. One statement."""
    latest = KpiSnapshot.objects.filter(tier_code="").order_by("-month").values("month")[:months]
    by_month: dict[dt.date, dict[str, Any]] = {}
    for row in KpiSnapshot.objects.filter(month__in=latest).order_by("month", "tier_code"):
        entry = by_month.setdefault(row.month, {"month": row.month, "figures": {}, "by_tier": {}})
        if row.tier_code:
            entry["by_tier"][row.tier_code] = figures_from_json(row.figures)
        else:
            entry["figures"] = figures_from_json(row.figures)
    return [by_month[month] for month in sorted(by_month)]


def dashboard_tier_migration() -> dict[str, Any] | None:
    """The tier moves of the latest finished evaluation run: ``{"run": TierEvaluationRun,
    "moves": {(from_tier_id, to_tier_id): members}}``, a member who had no tier state counted
    from ``None`` (the lowest tier); ``None`` when no run has finished. Two statements."""
    run = (
        TierEvaluationRun.objects.filter(status=TierEvaluationRun.Status.DONE)
        .order_by("-finished_at", "-created_at")
        .first()
    )
    if run is None:
        return None
    rows = (
        TierHistory.objects.filter(run=run)
        .values_list("from_tier_id", "to_tier_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {"run": run, "moves": {(source, target): n for source, target, n in rows}}


def dashboard_inbox_figures(*, now: dt.datetime, recent_days: int = 7) -> dict[str, Any]:
    """The transaction inbox: how many wait (``pending``, ``parked`` waiting for their
    original), how many failed (all and within ``recent_days`` of ``now`` by receipt) and
    when the oldest waiting one was received (``None`` without any). One statement."""
    waiting = [Transaction.Status.PENDING, Transaction.Status.PARKED]
    return Transaction.objects.aggregate(
        pending=Count("pk", filter=Q(status=Transaction.Status.PENDING)),
        parked=Count("pk", filter=Q(status=Transaction.Status.PARKED)),
        failed=Count("pk", filter=Q(status=Transaction.Status.FAILED)),
        failed_recent=Count(
            "pk",
            filter=Q(
                status=Transaction.Status.FAILED,
                received_at__gte=now - dt.timedelta(days=recent_days),
            ),
        ),
        oldest_waiting=Min("received_at", filter=Q(status__in=waiting)),
    )


def adjustments_awaiting(
    *, user: Any, limit: int = DASHBOARD_APPROVALS_SHOWN
) -> tuple[int, list[Adjustment]]:
    """Pending point adjustments that ``user`` may decide: none without the approve
    permission, never their own request (four eyes). Their count and the oldest ``limit``
    with members joined. Two statements."""
    if not user.has_perm("points.approve_adjustment"):
        return 0, []
    pending = Adjustment.objects.filter(status=Adjustment.Status.PENDING).exclude(
        requested_by_id=user.pk
    )
    shown = list(pending.select_related("member", "requested_by").order_by("created_at")[:limit])
    return pending.count(), shown


def tier_overrides_awaiting(
    *, user: Any, limit: int = DASHBOARD_APPROVALS_SHOWN
) -> tuple[int, list[TierOverride]]:
    """Pending tier overrides that ``user`` may decide, as :func:`adjustments_awaiting`."""
    if not user.has_perm("members.approve_tieroverride"):
        return 0, []
    pending = TierOverride.objects.filter(status=TierOverride.Status.PENDING).exclude(
        requested_by_id=user.pk
    )
    shown = list(
        pending.select_related("member", "tier", "requested_by").order_by("requested_at")[:limit]
    )
    return pending.count(), shown
