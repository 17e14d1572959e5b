"""Adjustments in the console: requested with the member picked by customer number, refused at
request time for what approval would refuse, decided from the list (after a confirmation page)
or from the adjustment's own page by a permitted approver who is not its requester, with the
reason recorded; every refusal changes nothing."""

import pytest
from django.test import Client

from loyalty import roles
from loyalty.models import AuditLog
from members.models import Member
from points.errors import InsufficientPoints
from points.models import Account, Adjustment
from points.services.adjustments import adjustment_request
from points.services.ledger import points_debit
from tests.factories import MemberFactory, UserFactory, database_state
from tests.rewards.conftest import fund

pytestmark = pytest.mark.django_db

ADJUSTMENTS = "/admin/points/adjustment/"
IGNORE = ("django_session", "django_admin_log", "axes_accesslog", "axes_accessattempt")


def _client(*role_names: str, user=None) -> Client:
    client = Client()
    client.user = user or UserFactory(roles=list(role_names))  # type: ignore[attr-defined]
    client.force_login(client.user)  # type: ignore[attr-defined]
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _balance(member: Member) -> int:
    return Account.objects.filter(member=member).values_list("balance", flat=True).first() or 0


def test_a_debit_beyond_the_balance_is_refused_on_the_form_and_writes_nothing():
    member = MemberFactory()
    fund(member, 300)
    operator = _client(roles.OPERATIONS)
    before = database_state(ignore=IGNORE)
    response = operator.post(
        f"{ADJUSTMENTS}add/", {"member": member.pk, "points": "-999999", "reason": "Typo fix"}
    )
    assert response.status_code == 200  # the form again
    errors = response.context["adminform"].form.errors
    assert errors["points"] == ["The points balance is too low for this."]
    assert database_state(ignore=IGNORE) == before  # no adjustment, no audit row
    # The service refuses the same at request time (the one check approval uses too).
    with pytest.raises(InsufficientPoints):
        adjustment_request(member=member, points=-301, reason="x", actor=operator.user)
    assert database_state(ignore=IGNORE) == before
    # Within the balance it is requested, pending.
    response = operator.post(
        f"{ADJUSTMENTS}add/", {"member": member.pk, "points": "-300", "reason": "Duplicate bonus"}
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    adjustment = Adjustment.objects.get()
    assert (adjustment.points, adjustment.status) == (-300, "pending")


def test_a_closed_member_and_zero_points_are_refused_on_the_form():
    closed = MemberFactory(status=Member.Status.CLOSED)
    member = MemberFactory()
    operator = _client(roles.OPERATIONS)
    before = database_state(ignore=IGNORE)
    response = operator.post(
        f"{ADJUSTMENTS}add/", {"member": closed.pk, "points": "50", "reason": "Goodwill"}
    )
    assert response.context["adminform"].form.errors["member"] == [
        "This member is frozen or closed."
    ]
    response = operator.post(
        f"{ADJUSTMENTS}add/", {"member": member.pk, "points": "0", "reason": "Goodwill"}
    )
    assert response.context["adminform"].form.errors["points"] == [
        "An adjustment moves at least one point."
    ]
    assert database_state(ignore=IGNORE) == before


def test_the_member_is_picked_by_customer_number_through_the_autocomplete():
    member = MemberFactory(customer_no="C00042", name="Li Wei")
    MemberFactory(customer_no="C00077")
    operator = _client(roles.OPERATIONS)
    page = operator.get(f"{ADJUSTMENTS}add/")
    assert b"admin-autocomplete" in page.content
    response = operator.get(
        "/admin/autocomplete/",
        {
            "app_label": "points",
            "model_name": "adjustment",
            "field_name": "member",
            "term": "C00042",
        },
    )
    assert response.status_code == 200
    assert response.json()["results"] == [{"id": str(member.pk), "text": "C00042 Li Wei"}]


def test_the_list_shows_the_customer_number_the_reason_and_the_balance():
    member = MemberFactory(customer_no="C10001")
    fund(member, 1234)
    adjustment_request(
        member=member, points=500, reason="Branch queue complaint", actor=UserFactory()
    )
    page = _client(roles.APPROVER).get(ADJUSTMENTS)
    assert page.status_code == 200
    rows = page.context["cl"].result_list
    text = page.content.decode()
    assert "C10001" in text
    assert "Branch queue complaint" in text
    assert "1234" in text or "1,234" in text
    assert rows[0].member_balance == 1234
    assert str(rows[0]) == "C10001 +500 Pending"  # the customer number, not a database id


def test_the_detail_page_offers_approve_and_reject_only_to_a_permitted_non_maker():
    member = MemberFactory()
    maker_approver = UserFactory(roles=[roles.OPERATIONS, roles.APPROVER])
    adjustment = adjustment_request(
        member=member, points=200, reason="Goodwill", actor=maker_approver
    )
    url = f"{ADJUSTMENTS}{adjustment.pk}/change/"
    approve, reject = (
        f"{ADJUSTMENTS}{adjustment.pk}/approve/",
        f"{ADJUSTMENTS}{adjustment.pk}/reject/",
    )

    checker = _client(roles.APPROVER).get(url).content.decode()
    assert approve in checker
    assert reject in checker
    refused = [_client(roles.OPERATIONS), _client(user=maker_approver)]
    for client in refused:
        page = client.get(url).content.decode()
        assert approve not in page
        assert reject not in page

    before = database_state(ignore=IGNORE)
    for client in refused:
        assert client.get(approve).status_code == 403
        assert client.post(approve, {"note": "ok"}).status_code == 403
        assert client.post(reject, {"note": "no"}).status_code == 403
    assert database_state(ignore=IGNORE) == before
    assert Adjustment.objects.get().status == "pending"


def test_an_approver_approves_from_the_detail_page_with_a_reason_by_post_only():
    member = MemberFactory()
    fund(member, 100)
    adjustment = adjustment_request(
        member=member, points=500, reason="Goodwill", actor=UserFactory()
    )
    checker = _client(roles.APPROVER)
    approve = f"{ADJUSTMENTS}{adjustment.pk}/approve/"
    before = database_state(ignore=IGNORE)
    page = checker.get(approve)  # the question: what it is, the balance, a reason field
    assert page.status_code == 200
    assert b'name="note"' in page.content
    assert "balance 100" in page.content.decode()
    assert checker.put(approve).status_code == 405
    assert database_state(ignore=IGNORE) == before
    response = checker.post(approve, {"note": "Complaint ticket 7781"}, follow=True)
    assert "Adjustment approved." in _messages(response)
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.decided_by, adjustment.decision_note) == (
        "approved",
        checker.user,
        "Complaint ticket 7781",
    )
    assert _balance(member) == 600
    row = AuditLog.objects.get(action="points.adjustment_approve")
    assert row.reason == "Complaint ticket 7781"
    # Decided: no buttons any more, and the URL refuses.
    page = checker.get(f"{ADJUSTMENTS}{adjustment.pk}/change/").content.decode()
    assert approve not in page
    assert checker.post(approve, {"note": "again"}).status_code == 403


def test_an_approver_rejects_from_the_detail_page_and_no_points_move():
    member = MemberFactory()
    adjustment = adjustment_request(
        member=member, points=50, reason="Goodwill", actor=UserFactory()
    )
    checker = _client(roles.APPROVER)
    response = checker.post(
        f"{ADJUSTMENTS}{adjustment.pk}/reject/", {"note": "No evidence"}, follow=True
    )
    assert "Adjustment rejected." in _messages(response)
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.decision_note) == ("rejected", "No evidence")
    assert _balance(member) == 0


def test_approval_checks_the_balance_again():
    member = MemberFactory()
    fund(member, 300)
    adjustment = adjustment_request(
        member=member, points=-300, reason="Reverse bonus", actor=UserFactory()
    )
    points_debit(member=member, points=200, idempotency_key="spent-meanwhile")
    checker = _client(roles.APPROVER)
    before = database_state(ignore=IGNORE)
    response = checker.post(f"{ADJUSTMENTS}{adjustment.pk}/approve/", {"note": ""}, follow=True)
    assert any("The points balance is too low for this." in text for text in _messages(response))
    assert database_state(ignore=IGNORE) == before
    assert Adjustment.objects.get().status == "pending"


def test_the_bulk_decisions_ask_for_confirmation_and_a_reason_first():
    members = [MemberFactory(customer_no=f"C2000{n}") for n in range(2)]
    adjustments = [
        adjustment_request(member=member, points=10, reason=f"Fix {n}", actor=UserFactory())
        for n, member in enumerate(members)
    ]
    checker = _client(roles.APPROVER)
    selection = {"action": "approve", "_selected_action": [str(a.pk) for a in adjustments]}
    before = database_state(ignore=IGNORE)
    page = checker.post(ADJUSTMENTS, selection)
    assert page.status_code == 200
    text = page.content.decode()
    assert "C20000" in text
    assert "C20001" in text
    assert 'name="note"' in text
    assert 'name="confirm" value="yes"' in text
    assert database_state(ignore=IGNORE) == before  # the question alone changes nothing
    response = checker.post(
        ADJUSTMENTS, {**selection, "confirm": "yes", "note": "Batch 12"}, follow=True
    )
    assert "2 adjustments approved." in _messages(response)
    assert set(Adjustment.objects.values_list("status", "decision_note")) == {
        ("approved", "Batch 12")
    }
    # Operations has no decision action at all: the action is refused, nothing changes.
    pending = adjustment_request(member=members[0], points=5, reason="Fix 3", actor=UserFactory())
    operator = _client(roles.OPERATIONS)
    before = database_state(ignore=IGNORE)
    for verb in ("approve", "reject"):
        operator.post(
            ADJUSTMENTS,
            {"action": verb, "_selected_action": [str(pending.pk)], "confirm": "yes"},
        )
    assert database_state(ignore=IGNORE) == before
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_approval_refuses_a_member_closed_since_the_request():
    member = MemberFactory()
    adjustment = adjustment_request(
        member=member, points=40, reason="Goodwill", actor=UserFactory()
    )
    Member.objects.filter(pk=member.pk).update(status=Member.Status.CLOSED)
    checker = _client(roles.APPROVER)
    before = database_state(ignore=IGNORE)
    response = checker.post(f"{ADJUSTMENTS}{adjustment.pk}/approve/", {"note": ""}, follow=True)
    assert any("This member is frozen or closed." in text for text in _messages(response))
    assert database_state(ignore=IGNORE) == before
