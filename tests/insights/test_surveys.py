"""Satisfaction surveys on PostgreSQL: sent once to a segment's consenting active members with
one inbox message each (also when sent twice at once), answered once each, closed surveys
refuse answers, figures and NPS, another member's survey is not found."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from insights.errors import SurveyAnswered, SurveyClosed, SurveyNotDraft
from insights.models import Survey, SurveyResponse
from insights.selectors import survey_figures
from insights.services.surveys import survey_answer, survey_close, survey_create, survey_send
from members.models import Member, MemberTier, Message
from members.services.segments import segment_create
from tests.factories import MemberFactory, database_state
from tests.members.tier_helpers import ladder

pytestmark = pytest.mark.django_db


def _survey(**fields) -> Survey:
    return survey_create(
        actor=None,
        fields={
            "question_en": "How likely are you to recommend us?",
            "question_zh_hans": "您有多大可能向朋友推荐我们？",  # noqa: RUF001
            **fields,
        },
    )


def test_a_survey_goes_to_its_segments_consenting_active_members_once_each():
    tiers = ladder()
    targets = MemberFactory.create_batch(3, city="Taiyuan")
    MemberTier.objects.create(member=targets[0], tier=tiers["GOLD"])
    MemberFactory(city="Taiyuan", marketing_consent=False)
    MemberFactory(city="Taiyuan", status=Member.Status.FROZEN)
    MemberFactory(city="Datong")
    segment = segment_create(actor=None, name_en="Taiyuan", rule={"cities": ["Taiyuan"]})
    english = MemberFactory(city="Taiyuan", preferred_language="en")  # joins after the save
    survey = _survey(segment=segment)

    assert survey_send(survey=survey, actor=None, chunk_size=2) == {"responses": 4, "messages": 4}
    responses = SurveyResponse.objects.filter(survey=survey)
    assert {r.member_id for r in responses} == {m.pk for m in [*targets, english]}
    assert {r.member_id: r.tier_code for r in responses}[targets[0].pk] == "GOLD"
    assert {r.member_id: r.tier_code for r in responses}[targets[1].pk] == "STANDARD"
    messages = Message.objects.filter(kind="survey")
    assert messages.count() == 4
    assert "recommend" in messages.get(member=english).body
    assert "推荐" in messages.get(member=targets[1]).body
    survey.refresh_from_db()
    assert (survey.status, survey.sent_at is not None) == ("sent", True)

    before = database_state()
    with pytest.raises(SurveyNotDraft):
        survey_send(survey=survey, actor=None)
    assert database_state() == before


@pytest.mark.django_db(transaction=True)
def test_sent_twice_at_once_it_reaches_each_member_once():
    MemberFactory.create_batch(30)
    survey = _survey()
    barrier = threading.Barrier(2)
    outcomes: list = []

    def send():
        try:
            barrier.wait(timeout=10)
            outcomes.append(survey_send(survey=Survey.objects.get(pk=survey.pk), actor=None))
        except BaseException as error:  # surfaced below
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(type(o).__name__ for o in outcomes) == ["SurveyNotDraft", "dict"]
    assert SurveyResponse.objects.count() == Message.objects.filter(kind="survey").count() == 30


def test_each_member_answers_once_and_a_closed_survey_refuses_answers():
    first, second = MemberFactory.create_batch(2)
    survey = _survey()
    survey_send(survey=survey, actor=None)
    mine = SurveyResponse.objects.get(member=first)
    answered = survey_answer(response=mine, score=9, comment="Great salons")
    assert (answered.score, answered.comment, answered.answered_at is not None) == (
        9,
        "Great salons",
        True,
    )
    with pytest.raises(SurveyAnswered):
        survey_answer(response=mine, score=0)
    mine.refresh_from_db()
    assert mine.score == 9

    survey_close(survey=survey, actor=None)
    theirs = SurveyResponse.objects.select_related("survey").get(member=second)
    with pytest.raises(SurveyClosed):
        survey_answer(response=theirs, score=3)
    theirs.refresh_from_db()
    assert theirs.answered_at is None


def test_past_its_closing_time_a_survey_refuses_answers():
    MemberFactory()
    survey = _survey(closes_at=timezone.now() + dt.timedelta(days=7))
    survey_send(survey=survey, actor=None)
    response = SurveyResponse.objects.select_related("survey").get()
    with pytest.raises(SurveyClosed):
        survey_answer(response=response, score=8, now=timezone.now() + dt.timedelta(days=8))


def test_figures_count_promoters_passives_detractors_and_the_nps():
    MemberFactory.create_batch(6)
    survey = _survey()
    survey_send(survey=survey, actor=None)
    assert survey_figures(survey=survey)["nps"] is None
    responses = list(SurveyResponse.objects.select_related("survey").order_by("id"))
    for response, score in zip(responses, [10, 9, 7, 6, 0], strict=False):
        survey_answer(response=response, score=score)
    figures = survey_figures(survey=survey)
    assert (figures["sent"], figures["answered"]) == (6, 5)
    assert (figures["promoters"], figures["passives"], figures["detractors"]) == (2, 1, 2)
    assert str(figures["score_avg"]) == "6.40"  # 32 / 5
    assert str(figures["nps"]) == "0.00"  # 40% - 40%


def test_the_member_api_lists_and_answers_only_the_members_own_surveys(member_client):
    client = member_client()
    stranger = member_client()
    survey = _survey()
    survey_send(survey=survey, actor=None)
    listed = client.get("/api/v1/me/surveys/").json()["results"]
    assert len(listed) == 1
    assert listed[0]["open"] is True
    mine = listed[0]["id"]
    theirs = stranger.get("/api/v1/me/surveys/").json()["results"][0]["id"]

    before = database_state()
    hidden = client.post(f"/api/v1/me/surveys/{theirs}/answer/", {"score": 5}, format="json")
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    bad = client.post(f"/api/v1/me/surveys/{mine}/answer/", {"score": 11}, format="json")
    assert bad.status_code == 400
    assert database_state() == before

    url = f"/api/v1/me/surveys/{mine}/answer/"
    given = client.post(url, {"score": 10, "comment": "好"}, format="json")
    assert given.status_code == 201, given.content
    assert (given.json()["score"], given.json()["open"]) == (10, False)
    again = client.post(url, {"score": 1}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "survey_answered")


def test_marketing_creates_sends_reads_and_closes_a_survey(staff_client, member_client):
    marketing = staff_client("marketing")
    member_client()  # one member to send to
    created = marketing.post(
        "/api/v1/surveys/", {"question": "Would you recommend our salons?"}, format="json"
    )
    assert created.status_code == 201, created.content
    survey_id = created.json()["id"]
    sent = marketing.post(f"/api/v1/surveys/{survey_id}/send/")
    assert sent.status_code == 200
    assert (sent.json()["status"], sent.json()["figures"]["sent"]) == ("sent", 1)
    twice = marketing.post(f"/api/v1/surveys/{survey_id}/send/")
    assert (twice.status_code, twice.json()["code"]) == (409, "survey_not_draft")
    closed = marketing.post(f"/api/v1/surveys/{survey_id}/close/")
    assert closed.json()["status"] == "closed"
    assert marketing.get("/api/v1/surveys/").json()["results"][0]["id"] == survey_id
    operations = staff_client("operations")
    refused = operations.post("/api/v1/surveys/", {"question": "x"}, format="json")
    assert refused.status_code == 403
