"""Tiers and points together: the multiplier follows the tier; /me/ and staff detail show both."""

from decimal import Decimal

import pytest

from points.models import Entry
from tests.factories import MemberFactory
from tests.members.tier_helpers import evaluate, ladder, snapshots, tier_of
from tests.points.conftest import ingest
from tests.points.factories import tx_item

pytestmark = pytest.mark.django_db


def _earned(member) -> list[int]:
    return list(
        Entry.objects.filter(member=member, kind="earn")
        .order_by("occurred_at", "id")
        .values_list("points", flat=True)
    )


def test_earning_after_an_upgrade_uses_the_new_multiplier(card_rule):
    ladder()
    member = MemberFactory()
    ingest([tx_item(member, amount="1000.00")])  # 50 points at Standard (x1.00)
    snapshots(member, "600000.00")  # Platinum: x1.50
    evaluate()
    assert tier_of(member) == "PLATINUM"
    ingest([tx_item(member, amount="1000.00")])
    assert _earned(member) == [50, 75]
    entry = Entry.objects.filter(member=member, kind="earn").order_by("-occurred_at", "-id").first()
    assert "1.5" in str(entry.rules)


def test_me_shows_tier_and_points_balance(card_rule, member_client):
    ladder()
    member = MemberFactory()
    snapshots(member, "150000.00")
    evaluate()
    ingest([tx_item(member, amount="400.00")])  # 20 points x1.20 = 24
    body = member_client(member).get("/api/v1/me/").json()
    assert body["tier"] == {"code": "GOLD", "name": "Gold"}
    assert body["points_balance"] == 24
    assert "****" in body["phone"]


def test_staff_detail_shows_tier_history_and_points_summary(card_rule, staff_client):
    ladder()
    member = MemberFactory()
    snapshots(member, "150000.00")
    evaluate()
    ingest([tx_item(member, amount="400.00")])
    body = staff_client("operations").get(f"/api/v1/members/{member.customer_no}/").json()
    assert body["tier"]["code"] == "GOLD"
    assert [(row["from_tier"], row["to_tier"]) for row in body["tier_history"]] == [
        ("STANDARD", "GOLD")
    ]
    assert body["points"]["balance"] == 24
    assert body["points"]["lifetime_earned"] == 24
    assert Decimal(body["aum"]) == Decimal("150000.00")
