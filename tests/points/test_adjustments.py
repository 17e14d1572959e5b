"""Point adjustments are maker-checker: requested by operations, applied only when another
approver approves; every refusal (four eyes, the wrong role, a decided or unknown adjustment,
too few points, a bad body, an unknown member) changes nothing at all."""

import pytest

from loyalty import roles
from loyalty.models import AuditLog
from points.models import Account, Adjustment, Entry
from tests.factories import MemberFactory, database_state

pytestmark = pytest.mark.django_db

URL = "/api/v1/points/adjustments/"


def _request(client, member, points=500, reason="Goodwill for branch outage"):
    return client.post(
        URL, {"customer_no": member.customer_no, "points": points, "reason": reason}, format="json"
    )


def test_adjustment_is_pending_until_another_approver_approves(staff_client):
    member = MemberFactory()
    maker = staff_client(roles.OPERATIONS)
    response = _request(maker, member)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert not Entry.objects.filter(member=member).exists()
    assert not Account.objects.filter(member=member, balance__gt=0).exists()

    checker = staff_client(roles.APPROVER)
    response = checker.post(f"{URL}{body['id']}/approve/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    entry = Entry.objects.get(member=member)
    assert (entry.kind, entry.points) == ("adjust", 500)
    assert Account.objects.get(member=member).balance == 500
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"points.adjustment_request", "points.adjustment_approve"} <= actions

    before = database_state()
    again = checker.post(f"{URL}{body['id']}/approve/", {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "adjustment_decided"
    assert database_state() == before
    assert Entry.objects.filter(member=member).count() == 1


def test_requester_cannot_approve_own_adjustment(staff_client):
    member = MemberFactory()
    both = staff_client(roles.OPERATIONS, roles.APPROVER)
    adjustment_id = _request(both, member).json()["id"]
    before = database_state()
    response = both.post(f"{URL}{adjustment_id}/approve/", {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "four_eyes_required"
    assert database_state() == before  # no entry, lot, balance, audit row; still pending
    assert Adjustment.objects.get(pk=adjustment_id).status == "pending"


def test_operations_cannot_approve(staff_client):
    member = MemberFactory()
    adjustment_id = _request(staff_client(roles.OPERATIONS), member).json()["id"]
    other_operator = staff_client(roles.OPERATIONS)
    before = database_state()
    response = other_operator.post(f"{URL}{adjustment_id}/approve/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert database_state() == before
    assert Adjustment.objects.get(pk=adjustment_id).status == "pending"


def test_rejected_adjustment_moves_nothing(staff_client):
    member = MemberFactory()
    adjustment_id = _request(staff_client(roles.OPERATIONS), member).json()["id"]
    checker = staff_client(roles.APPROVER)
    before = database_state()
    response = checker.post(f"{URL}{adjustment_id}/reject/", {"note": "no evidence"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "rejected"
    changed = {table for table, rows in database_state().items() if before[table] != rows}
    assert changed == {"points_adjustment", "loyalty_auditlog"}  # no entry, lot or balance
    assert Adjustment.objects.get(pk=adjustment_id).status == "rejected"
    assert AuditLog.objects.filter(action="points.adjustment_reject").count() == 1


def test_negative_adjustment_beyond_balance_answers_insufficient_points(staff_client):
    member = MemberFactory()
    maker = staff_client(roles.OPERATIONS)
    before = database_state()
    response = _request(maker, member, points=-10)
    assert response.status_code == 422
    assert response.json()["code"] == "insufficient_points"
    assert database_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_no": "C1", "points": 0, "reason": "x"}, "points"),
        ({"customer_no": "C1", "points": "many", "reason": "x"}, "points"),
        ({"customer_no": "C1", "points": 5}, "reason"),
        ({"points": 5, "reason": "x"}, "customer_no"),
    ],
)
def test_invalid_adjustment_request_names_the_field(staff_client, body, field):
    MemberFactory(customer_no="C1")  # a member there is: only the named field is wrong
    maker = staff_client(roles.OPERATIONS)
    before = database_state()
    response = maker.post(URL, body, format="json")
    assert response.status_code == 400
    assert field in {error["field"] for error in response.json()["errors"]}
    assert database_state() == before  # no adjustment, no audit row


def test_unknown_member_or_adjustment_answers_404(staff_client):
    maker, checker = staff_client(roles.OPERATIONS), staff_client(roles.APPROVER)
    before = database_state()
    response = _request(maker, MemberFactory.build(customer_no="NOPE"))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    response = checker.post(f"{URL}00000000-0000-0000-0000-000000000000/approve/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert database_state() == before
