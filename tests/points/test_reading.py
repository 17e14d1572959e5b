"""Reading points: a member's balance, pending and expiring points and own ledger (filtered,
paged), staff reading a member's ledger, and reconciliation catching a tampered balance."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from loyalty import roles
from points.models import Account
from points.services.ledger import points_credit, points_debit
from points.services.reconciliation import points_reconcile
from tests.factories import MemberFactory
from tests.points.conftest import ingest
from tests.points.factories import tx_item

pytestmark = pytest.mark.django_db


def test_me_points_shows_balance_pending_and_expiring(member_client, card_rule):
    client = member_client()
    member = client.member
    ingest([tx_item(member, amount="200.00")])
    ingest([tx_item(member, amount="100.00")], process=False)
    response = client.get("/api/v1/me/points/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["balance"] == 10
    assert body["pending"] == 5
    assert body["lifetime_earned"] == 10
    assert body["lifetime_redeemed"] == 0
    assert body["expiring"] == []


def test_me_points_for_new_member_is_all_zero(member_client):
    body = member_client().get("/api/v1/me/points/").json()
    assert body == {
        "balance": 0,
        "pending": 0,
        "lifetime_earned": 0,
        "lifetime_redeemed": 0,
        "expiring": [],
    }


def test_me_entries_are_my_own_newest_first_with_filters(member_client, business_clock):
    client = member_client()
    member = client.member
    other = MemberFactory()
    points_credit(member=member, points=100, idempotency_key="a")
    points_debit(member=member, points=40, idempotency_key="b")
    points_credit(member=other, points=7, idempotency_key="c")
    response = client.get("/api/v1/me/points/entries/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(row["kind"], row["points"], row["balance_after"]) for row in results] == [
        ("redeem", -40, 60),
        ("bonus", 100, 100),
    ]
    assert set(results[0]) == {
        "id",
        "kind",
        "points",
        "balance_after",
        "description",
        "occurred_at",
        "expires_at",
    }
    kinds = [
        row["kind"]
        for row in client.get("/api/v1/me/points/entries/?kind=redeem").json()["results"]
    ]
    assert kinds == ["redeem"]
    today = business_clock.today.isoformat()
    tomorrow = (business_clock.today + dt.timedelta(days=1)).isoformat()
    assert client.get(f"/api/v1/me/points/entries/?from={tomorrow}").json()["results"] == []
    assert len(client.get(f"/api/v1/me/points/entries/?from={today}").json()["results"]) == 2
    assert len(client.get(f"/api/v1/me/points/entries/?to={today}").json()["results"]) == 2


def test_me_entries_cursor_pages(member_client):
    client = member_client()
    for index in range(5):
        points_credit(member=client.member, points=1, idempotency_key=f"k{index}")
    first = client.get("/api/v1/me/points/entries/?page_size=2").json()
    assert len(first["results"]) == 2
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 2
    assert {row["id"] for row in first["results"]}.isdisjoint(
        row["id"] for row in second["results"]
    )


@pytest.mark.parametrize("query", ["kind=bogus", "from=yesterday", "to=2026-13-01"])
def test_bad_entry_filters_answer_400(member_client, query):
    response = member_client().get(f"/api/v1/me/points/entries/?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_staff_read_a_member_ledger_and_unknown_member_is_404(staff_client):
    member = MemberFactory()
    points_credit(member=member, points=5, idempotency_key="a")
    client = staff_client(roles.OPERATIONS)
    response = client.get(f"/api/v1/members/{member.customer_no}/points/entries/")
    assert response.status_code == 200
    assert response.json()["results"][0]["points"] == 5
    response = client.get("/api/v1/members/NOBODY/points/entries/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_member_token_cannot_read_another_members_ledger(member_client):
    other = MemberFactory()
    points_credit(member=other, points=7, idempotency_key="theirs")
    response = member_client().get(f"/api/v1/members/{other.customer_no}/points/entries/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "results" not in response.json()


def test_reconciliation_detects_a_tampered_balance(capsys):
    member = MemberFactory()
    points_credit(member=member, points=50, idempotency_key="a")
    call_command("reconcile_points")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE points_account SET balance = 5000 WHERE member_id = %s", [member.pk])
    _checked, discrepancies = points_reconcile()
    assert [(d.member_id, d.balance, d.entries_sum) for d in discrepancies] == [
        (member.pk, 5000, 50)
    ]
    with pytest.raises(CommandError) as error:
        call_command("reconcile_points")
    assert error.value.returncode == 1
    assert f"member {member.pk}: balance 5000" in capsys.readouterr().err
    assert Account.objects.get(member=member).balance == 5000


def test_me_points_lists_points_expiring_within_90_days_per_date(member_client, business_clock):
    from loyalty.services import programme_settings_update

    client = member_client()
    now = business_clock.now
    for months, key, points in [(1, "a", 30), (1, "b", 12), (2, "c", 5), (6, "d", 9)]:
        programme_settings_update(actor=None, expiry_policy="exact", expiry_months=months)
        points_credit(member=client.member, points=points, idempotency_key=key, occurred_at=now)
    points_debit(member=client.member, points=2, idempotency_key="spent")
    expiring = client.get("/api/v1/me/points/").json()["expiring"]
    # Per date: the two one-month lots together, less what was spent; then the two-month lot.
    # The six-month lot expires beyond the 90 days.
    assert [row["points"] for row in expiring] == [40, 5]
    first, second = (dt.date.fromisoformat(row["date"]) for row in expiring)
    assert business_clock.today < first < second <= business_clock.today + dt.timedelta(days=90)
    assert Account.objects.get(member=client.member).balance == 54


@pytest.mark.parametrize(
    "query", ["to=9999-12-31", "from=0001-01-01", "from=0001-01-01&to=9999-12-31"]
)
def test_extreme_ledger_dates_answer_200_not_500(member_client, query):
    response = member_client().get(f"/api/v1/me/points/entries/?{query}")
    assert response.status_code == 200, response.content
