"""Reads of surveys: marketing's list and figures, a member's own surveys (another member's
is not found)."""

from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet

from insights.errors import SurveyNotFound
from insights.models import Survey, SurveyResponse
from members.models import Member


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
