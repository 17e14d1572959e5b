"""Segments through the API: marketing creates, previews, changes and lists them; a bad rule
answers 400 naming its bad part with nothing written; other roles and members get 403; the
members list filters by a segment."""

import pytest

from members.models import MemberTier, Segment
from tests.factories import MemberFactory, database_state
from tests.members.tier_helpers import ladder

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketing(staff_client):
    return staff_client("marketing")


def _fields(problem: dict) -> list[str]:
    return [error["field"] for error in problem["errors"]]


def test_marketing_previews_creates_changes_and_lists_a_segment(marketing):
    tiers = ladder()
    for i in range(3):
        MemberTier.objects.create(
            member=MemberFactory(customer_no=f"G{i}", city="Ningbo"), tier=tiers["GOLD"]
        )
    MemberFactory(customer_no="S0", city="Ningbo")
    rule = {"tiers": ["GOLD"], "cities": ["Ningbo"]}

    before = database_state()
    preview = marketing.post("/api/v1/segments/preview/", {"rule": rule}, format="json")
    assert preview.status_code == 200
    assert database_state() == before
    assert preview.json()["member_count"] == 3
    assert [row["customer_no"] for row in preview.json()["sample"]] == ["G0", "G1", "G2"]
    assert set(preview.json()["sample"][0]) == {"customer_no", "tier", "city", "branch_code"}

    created = marketing.post(
        "/api/v1/segments/",
        {"name": "Ningbo gold", "name_zh_hans": "宁波金卡客户", "rule": rule},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["name_en"]) == ("宁波金卡客户", "Ningbo gold")
    assert body["member_count"] == 3
    assert body["rule"] == rule
    assert body["refreshed_at"] is not None

    changed = marketing.patch(
        f"/api/v1/segments/{body['id']}/", {"rule": {"cities": ["Ningbo"]}}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["member_count"] == 4
    assert changed.json()["name"] == "Ningbo gold"

    listed = marketing.get("/api/v1/segments/")
    assert [row["name"] for row in listed.json()["results"]] == ["Ningbo gold"]
    assert marketing.get(f"/api/v1/segments/{body['id']}/").json()["member_count"] == 4


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"colour": "red"}, "rule.colour"),
        ({"age_min": "old"}, "rule.age_min"),
        ({"age_min": 60, "age_max": 20}, "rule.age_min"),
        ({"tiers": ["NOPE"]}, "rule.tiers"),
        ({"holds": ["gold bars"]}, "rule.holds.0"),
        ({"aum_min": "12.345"}, "rule.aum_min"),
    ],
)
def test_a_bad_rule_answers_400_naming_the_bad_part_and_writes_nothing(marketing, rule, field):
    ladder()
    before = database_state()
    for path, body in (
        ("/api/v1/segments/", {"name": "Bad", "rule": rule}),
        ("/api/v1/segments/preview/", {"rule": rule}),
    ):
        answer = marketing.post(path, body, format="json")
        assert answer.status_code == 400, answer.json()
        assert field in _fields(answer.json())
    assert database_state() == before


def test_a_rule_that_is_not_an_object_answers_400(marketing):
    answer = marketing.post("/api/v1/segments/", {"name": "x", "rule": [1]}, format="json")
    assert answer.status_code == 400
    assert not Segment.objects.exists()


def test_other_roles_and_members_are_refused(staff_client, member_client):
    operations = staff_client("operations")  # reads members, so segments too; changes neither
    assert operations.get("/api/v1/segments/").status_code == 200
    refused = operations.post("/api/v1/segments/", {"name": "x", "rule": {}}, format="json")
    assert refused.status_code == 403
    assert staff_client("approver").get("/api/v1/segments/").status_code == 403
    member = member_client()
    assert member.get("/api/v1/segments/").status_code == 403
    assert member.post("/api/v1/segments/preview/", {"rule": {}}, format="json").status_code == 403


def test_an_unknown_segment_is_not_found(marketing):
    answer = marketing.get("/api/v1/segments/00000000-0000-4000-8000-000000000000/")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_the_members_list_filters_by_segment(marketing, staff_client):
    MemberFactory(customer_no="IN1", city="Dalian")
    MemberFactory(customer_no="OUT1", city="Harbin")
    segment = marketing.post(
        "/api/v1/segments/", {"name": "Dalian", "rule": {"cities": ["Dalian"]}}, format="json"
    ).json()
    operations = staff_client("operations")
    listed = operations.get("/api/v1/members/", {"segment": segment["id"]})
    assert [row["customer_no"] for row in listed.json()["results"]] == ["IN1"]
    assert operations.get("/api/v1/members/", {"segment": "not-a-uuid"}).status_code == 400


def test_the_member_detail_shows_the_customer_value_once_refreshed(staff_client):
    import datetime as dt
    from decimal import Decimal

    from members.models import MemberValue

    member = MemberFactory(customer_no="V1")
    operations = staff_client("operations")
    assert operations.get("/api/v1/members/V1/").json()["value"] is None
    MemberValue.objects.create(
        member=member,
        as_of=dt.date(2026, 11, 30),
        score=Decimal("72.50"),
        contribution_score=Decimal("80"),
        aum_score=Decimal("70"),
        activity_score=Decimal("60"),
        frequency=4,
        monetary=Decimal("1234.50"),
        churn_risk=True,
        churn_reasons=["aum_down_3_months"],
    )
    value = operations.get("/api/v1/members/V1/").json()["value"]
    assert (value["score"], value["churn_risk"], value["churn_reasons"]) == (
        "72.50",
        True,
        ["aum_down_3_months"],
    )
    assert value["monetary"] == "1234.50"
