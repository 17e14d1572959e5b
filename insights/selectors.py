"""Reads of the insights app: stored KPI snapshots, customer values, surveys (marketing's
list and figures; a member's own surveys, another member's not found)."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet

from insights.errors import SurveyNotFound
from insights.models import KpiSnapshot, Survey, SurveyResponse
from members.models import Member, MemberValue, Tier

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
