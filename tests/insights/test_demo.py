"""The insights demo seed: made by the production jobs on the demo programme, once."""

import io

import pytest
from django.core.management import call_command

from insights.demo import KPI_MONTHS, SURVEY, seed_insights
from insights.models import KpiSnapshot, Recommendation, RecommendationRun, Survey
from insights.selectors import kpi_snapshot_figures
from insights.services.kpis import kpis_compute
from loyalty.timeutils import add_months, business_today, month_end
from members.models import Member, MemberValue, Segment, Tier

pytestmark = pytest.mark.django_db


def test_seed_demo_leaves_values_a_survey_recommendations_and_snapshots():
    call_command("seed_demo", members=60, months=4, force=True, stdout=io.StringIO())
    active = Member.objects.filter(status=Member.Status.ACTIVE).count()
    assert MemberValue.objects.count() == active
    survey = Survey.objects.get(question_en=SURVEY["question_en"])
    assert survey.status == Survey.Status.SENT
    answered = survey.responses.filter(answered_at__isnull=False).count()
    assert 0 < answered < survey.responses.count()
    run = RecommendationRun.objects.get()
    assert run.status == RecommendationRun.Status.DONE
    assert run.members == active
    # A row for each member with something they can take.
    assert 0 < Recommendation.objects.count() <= active
    tiers = Tier.objects.filter(active=True).count()
    assert KpiSnapshot.objects.count() == KPI_MONTHS * (1 + tiers)
    # The segments were refreshed after the values their rules read.
    at_risk = Segment.objects.get(name_en="Wealth customers at risk")
    assert at_risk.refreshed_at is not None
    # A snapshotted month answers what computing it now answers.
    month = add_months(business_today().replace(day=1), -1)
    stored = kpi_snapshot_figures(month=month)
    assert stored is not None
    assert (
        stored["members_total"]
        == kpis_compute(day_from=month, day_to=month_end(month))["members_total"]
    )
    # The current month's survey answers are in its NPS.
    today = business_today()
    assert kpis_compute(day_from=today.replace(day=1), day_to=today)["nps"] is not None


def test_seed_insights_again_adds_no_survey_or_run():
    call_command("seed_demo", members=30, months=3, force=True, stdout=io.StringIO())
    out = io.StringIO()
    again = seed_insights(stdout=out)
    assert (again["survey_sent"], again["recommended"]) == (0, 0)
    assert (Survey.objects.count(), RecommendationRun.objects.count()) == (1, 1)
    assert "KPI snapshot rows" in out.getvalue()
