import io

import pytest
from django.contrib.auth.models import User

from points.demo import seed_points
from points.models import Adjustment, Campaign, EarningRule, Entry, Transaction
from points.services.adjustments import adjustment_request
from points.services.reconciliation import points_reconcile
from tests.factories import MemberFactory, UserFactory
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
    entries = Entry.objects.count()
    second = seed_points()
    assert second == {"rules": 0, "transactions": 0, "processed": 0}
    assert Entry.objects.count() == entries
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


def test_admin_retry_action_requeues_and_credits(superuser_client, card_rule):
    from points.services.ingest import transactions_store
    from points.validation import transaction_items_validate

    member = MemberFactory()
    valid, _ = transaction_items_validate([tx_item(member)])
    transactions_store(transactions=[valid[0][1]], via="api")
    row = Transaction.objects.get()
    Transaction.objects.filter(pk=row.pk).update(status="failed", status_reason="boom")
    response = superuser_client.post(
        "/admin/points/transaction/", {"action": "retry", "_selected_action": [row.pk]}
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == "pending"


def test_admin_approve_action_applies_through_the_service(superuser_client):
    member = MemberFactory()
    maker = UserFactory()
    adjustment = adjustment_request(member=member, points=30, reason="fix", actor=maker)
    response = superuser_client.post(
        "/admin/points/adjustment/",
        {"action": "approve", "_selected_action": [str(adjustment.pk)]},
    )
    assert response.status_code == 302
    adjustment.refresh_from_db()
    assert adjustment.status == "approved"
    assert adjustment.entry.points == 30
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
