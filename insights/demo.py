"""Demo insights for ``seed_demo``, made by the jobs and services production runs, in their
order: customer values (segment rules read them), the segments refreshed, a satisfaction
survey sent to every consenting member and answered by some, a recommendation run and a few
members taking their first recommended reward, then the KPI snapshots of the closed months.

Idempotent: values, segments and snapshots are recomputed in place (the same rows); the survey
and the recommendation run are made once (a second seed finds them and leaves them alone)."""

import random
from typing import Any, TextIO

from insights.models import Recommendation, RecommendationRun, Survey, SurveyResponse
from insights.services.kpis import kpi_snapshots_refresh
from insights.services.recommendations import recommendations_refresh
from insights.services.surveys import survey_answer, survey_create, survey_send
from insights.services.value import member_values_refresh
from loyalty.errors import LoyaltyError
from loyalty.timeutils import add_months, business_today
from members.models import Member
from members.services.segments import segments_refresh_all
from rewards.services.redemptions import redemption_create

SURVEY = {
    "question_en": "How likely are you to recommend our bank to a friend or colleague?",
    "question_zh_hans": "您有多大可能向朋友或同事推荐我行？",  # noqa: RUF001
}
# Scores drawn for the demo answers: mostly promoters and passives, some detractors.
SCORES = [10, 10, 9, 9, 9, 8, 8, 7, 6, 4]
COMMENTS = [
    "",
    "",
    "",
    "服务很好，理财经理很专业。",  # noqa: RUF001
    "The app is quick and clear.",
    "排队时间有点长。",
]
ANSWER_SHARE = 0.4
# Share of the members holding recommendations who take their first recommended reward.
TAKE_SHARE = 0.1
# Closed months snapshotted, the latest first.
KPI_MONTHS = 6


def _write(stdout: TextIO | None, text: str) -> None:
    if stdout is not None:
        stdout.write(text)


def _survey(rng: random.Random) -> dict[str, int]:
    if Survey.objects.filter(question_en=SURVEY["question_en"]).exists():
        return {"sent": 0, "answered": 0}
    survey = survey_create(actor=None, fields=SURVEY)
    sent = survey_send(survey=survey, actor=None)["responses"]
    answered = 0
    for response in SurveyResponse.objects.filter(survey=survey).select_related("survey"):
        if rng.random() < ANSWER_SHARE:
            survey_answer(response=response, score=rng.choice(SCORES), comment=rng.choice(COMMENTS))
            answered += 1
    return {"sent": sent, "answered": answered}


def _recommendations(rng: random.Random) -> dict[str, Any]:
    if RecommendationRun.objects.exists():
        return {"members": 0, "taken": 0}
    run = recommendations_refresh()
    taken = 0
    rows = Recommendation.objects.filter(member__status=Member.Status.ACTIVE).select_related(
        "member"
    )
    for row in rows.order_by("member_id").iterator(chunk_size=500):
        first = next((item for item in row.items if item["type"] == "reward"), None)
        if first is None or rng.random() >= TAKE_SHARE:
            continue
        try:
            redemption_create(member=row.member, reward_id=first["id"])
        except LoyaltyError:  # refused now (stock, budget, limits): nothing written
            continue
        taken += 1
    return {"members": run.members if run else 0, "taken": taken}


def _snapshots() -> int:
    last = add_months(business_today().replace(day=1), -1)
    months = [add_months(last, -back) for back in range(KPI_MONTHS)]
    return sum(kpi_snapshots_refresh(month=month)["rows"] for month in months)


def seed_insights(*, stdout: TextIO | None = None) -> dict[str, Any]:
    rng = random.Random(20261203)  # noqa: S311 - demo data, not secrets
    values = member_values_refresh()
    segments_refresh_all()
    survey = _survey(rng)
    recommended = _recommendations(rng)
    snapshots = _snapshots()
    result = {
        "values": values["members"],
        "churn_risk": values["churn_risk"],
        "survey_sent": survey["sent"],
        "survey_answered": survey["answered"],
        "recommended": recommended["members"],
        "recommendations_taken": recommended["taken"],
        "kpi_snapshots": snapshots,
    }
    _write(
        stdout,
        "Insights: {values} customer values ({churn_risk} at risk of churn), a survey sent to "
        "{survey_sent} members ({survey_answered} answered), recommendations for {recommended} "
        "members ({recommendations_taken} taken), {kpi_snapshots} KPI snapshot rows.".format(
            **result
        ),
    )
    return result
