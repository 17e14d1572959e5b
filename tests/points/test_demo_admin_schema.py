"""The points demo seed, the points admin (pages, the retry and approve actions, each through
its service) and the points part of the OpenAPI schema."""

import io

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from loyalty.models import AuditLog
from points.demo import seed_points
from points.models import Account, Adjustment, Campaign, EarningRule, Entry, Transaction
from points.services.adjustments import adjustment_request
from points.services.earning import campaigns_active
from points.services.reconciliation import points_reconcile
from tests.factories import MemberFactory, UserFactory, database_state
from tests.points.factories import tx_item

pytestmark = pytest.mark.django_db


def test_seed_points_is_idempotent_and_goes_through_the_inbox():
    for _ in range(4):
        MemberFactory()
    out = io.StringIO()
    first = seed_points(stdout=out)
    assert first["rules"] == 5
    assert first["transactions"] > 30
    assert Entry.objects.filter(kind="earn").exists()
    assert Entry.objects.filter(kind="reverse").exists()
    assert not Transaction.objects.filter(status="pending").exists()
    assert "card-spend" in EarningRule.objects.values_list("code", flat=True)
    assert Campaign.objects.count() == 2
    # Through the inbox: every earning and refund entry is a demo inbox row's, processed.
    earned = Entry.objects.filter(kind__in=["earn", "reverse"])
    assert not earned.filter(transaction__isnull=True).exists()
    assert set(earned.values_list("transaction__via", flat=True)) == {"demo"}
    assert set(earned.values_list("transaction__status", flat=True)) == {"processed"}
    before = database_state()
    second = seed_points()
    assert second == {"rules": 0, "transactions": 0, "processed": 0}
    assert database_state() == before  # no rule, campaign, inbox row, entry or balance more
    assert points_reconcile()[1] == []


@pytest.fixture
def superuser_client(client):
    user = User.objects.create_superuser("root", "root@example.com", "pw-1234567")
    client.force_login(user)
    client.user = user
    return client


@pytest.mark.parametrize(
    "model", ["account", "entry", "lot", "transaction", "earningrule", "campaign", "adjustment"]
)
def test_admin_pages_render(superuser_client, card_rule, model):
    seed_points()
    response = superuser_client.get(f"/admin/points/{model}/")
    assert response.status_code == 200
    response = superuser_client.get(f"/admin/points/{model}/?q=C")
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_admin_retry_action_requeues_and_credits(superuser_client, card_rule):
    """The retry commits the row back to pending, and its commit wakes the consumer (tasks run
    in-process here), which credits the row: no test calls the consumer itself."""
    from points.services.ingest import transactions_store
    from points.validation import transaction_items_validate

    member = MemberFactory()
    valid, _ = transaction_items_validate([tx_item(member, amount="100.00")])
    with transaction.atomic():  # committed as failed: the consumer its commit wakes finds nothing
        transactions_store(transactions=[valid[0][1]], via="api")
        Transaction.objects.update(status="failed", status_reason="boom")
    row = Transaction.objects.get()
    assert (row.status, Entry.objects.count()) == ("failed", 0)
    response = superuser_client.post(
        "/admin/points/transaction/",
        {"action": "retry", "_selected_action": [row.pk], "confirm": "yes"},
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.status, row.points) == ("processed", 5)  # CNY 100 at 1 point per CNY 20
    entry = Entry.objects.get()
    assert (entry.member_id, entry.kind, entry.points, entry.transaction_id) == (
        member.pk,
        "earn",
        5,
        row.pk,
    )
    assert entry.idempotency_key == f"tx:{row.source}:{row.external_id}"
    assert Account.objects.get(member=member).balance == 5
    retry = AuditLog.objects.get(action="points.transaction_retry")
    assert (retry.actor_id, retry.target_id) == (superuser_client.user.pk, str(row.pk))
    assert points_reconcile()[1] == []


def test_admin_approve_action_applies_through_the_service(superuser_client):
    member = MemberFactory()
    maker = UserFactory()
    adjustment = adjustment_request(member=member, points=30, reason="fix", actor=maker)
    response = superuser_client.post(
        "/admin/points/adjustment/",
        {"action": "approve", "_selected_action": [str(adjustment.pk)], "confirm": "yes"},
    )
    assert response.status_code == 302
    adjustment.refresh_from_db()
    assert adjustment.status == "approved"
    assert adjustment.decided_by == superuser_client.user
    assert (adjustment.entry.kind, adjustment.entry.points) == ("adjust", 30)
    assert Account.objects.get(member=member).balance == 30
    approve = AuditLog.objects.get(action="points.adjustment_approve")  # the service's own row
    assert (approve.actor_id, approve.target_id) == (superuser_client.user.pk, str(adjustment.pk))
    assert Adjustment.objects.count() == 1


def test_openapi_schema_describes_the_points_endpoints(admin_api):
    response = admin_api.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/ingest/transactions/",
        "/api/v1/me/points/",
        "/api/v1/me/points/entries/",
        "/api/v1/members/{customer_no}/points/entries/",
        "/api/v1/points/adjustments/",
        "/api/v1/points/adjustments/{adjustment_id}/approve/",
        "/api/v1/points/adjustments/{adjustment_id}/reject/",
    ]:
        assert path in paths, path


def test_demo_campaigns_target_tiers_that_exist_and_apply(business_clock):
    from members.models import Tier

    MemberFactory()
    out = io.StringIO()
    seed_points(stdout=out)
    premium = Campaign.objects.get(code="premium-wealth-bonus")
    assert premium.target_tiers
    assert set(premium.target_tiers) <= set(Tier.objects.values_list("code", flat=True))
    transactions = Transaction.objects.filter(source="demo").count()
    assert f"{transactions} processed" in out.getvalue()
    (terms,) = [c for c in campaigns_active() if c.code == "premium-wealth-bonus"]
    today = business_clock.today
    for code, applies in [("PLATINUM", True), ("PRIVATE", True), ("GOLD", False)]:
        assert terms.applies(rule_id=None, on=today, tier_code=code) is applies


def test_a_campaign_naming_a_tier_that_does_not_exist_is_refused():
    from django.core.exceptions import ValidationError

    from members.demo_tiers import seed_tiers

    seed_tiers()
    campaign = Campaign.objects.get_or_create(
        code="c1",
        defaults={
            "name_en": "C",
            "name_zh_hans": "C",
            "starts_on": "2026-01-01",
            "ends_on": "2026-02-01",
            "multiplier": 2,
        },
    )[0]
    campaign.target_tiers = ["platinum"]
    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()
    assert "target_tiers" in refused.value.message_dict
    campaign.target_tiers = ["PLATINUM"]
    campaign.full_clean()
