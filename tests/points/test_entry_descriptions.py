"""A member's ledger reads newest business first, and each entry says what it is in the
caller's language: the rule and the campaign that applied, the refunded transaction."""

import datetime as dt

import pytest
from django.utils import timezone

from points.models import Entry
from points.services.ledger import points_credit
from tests.factories import MemberFactory
from tests.points.conftest import ingest
from tests.points.factories import CampaignFactory, tx_item

pytestmark = pytest.mark.django_db


def _entries(client, **headers) -> list[dict]:
    response = client.get("/api/v1/me/points/entries/", headers=headers)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_entries_are_ordered_by_when_the_business_happened_across_pages(member_client):
    member = MemberFactory()
    now = timezone.now()
    # Recorded in one order, happened in another (a late delivery of an older purchase).
    for key, days_ago in [("a", 1), ("b", 9), ("c", 3), ("d", 9), ("e", 0)]:
        points_credit(
            member=member,
            points=10,
            idempotency_key=key,
            occurred_at=now - dt.timedelta(days=days_ago),
        )
    expected = list(
        Entry.objects.filter(member=member)
        .order_by("-occurred_at", "-id")
        .values_list("idempotency_key", flat=True)
    )
    assert expected == ["e", "a", "c", "d", "b"]
    client = member_client(member)
    seen, url = [], "/api/v1/me/points/entries/?page_size=2"
    while url:
        page = client.get(url).json()
        seen += [
            Entry.objects.get(public_id=item["id"]).idempotency_key for item in page["results"]
        ]
        url = page["next"]
    assert seen == expected


def test_an_earning_names_its_rule_and_campaign_in_the_callers_language(member_client, card_rule):
    member = MemberFactory()
    CampaignFactory(code="double", name_en="Double days", name_zh_hans="双倍积分日").rules.add(
        card_rule
    )
    item = tx_item(member, amount="100.00")
    ingest([item, tx_item(member, amount="40.00", reverses=item["external_id"])])
    client = member_client(member)

    earned, refunded = sorted(_entries(client), key=lambda entry: entry["kind"])
    assert earned["description"] == "Rule card, with campaign Double days"
    assert refunded["description"] == f"Refund of transaction {item['external_id']}"

    earned, refunded = sorted(
        _entries(client, accept_language="zh-hans"), key=lambda entry: entry["kind"]
    )
    assert earned["description"] == "规则 card，参与活动：双倍积分日"  # noqa: RUF001
    assert refunded["description"] == f"交易 {item['external_id']} 退款"
    # The stored text is the one written, in the worker's language.
    assert Entry.objects.get(kind="earn").description == "Rule card, with campaign Double days"
