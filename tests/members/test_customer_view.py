"""The console's customer view and the member list: one page per member by customer number with
everything the programme knows about them (and nothing about anyone else), contact data masked
for staff without ``members.view_member_contact`` (page, list, change form and export), asset
snapshots read-only, closing and freezing only after a confirmation page, lists that fit."""

import datetime as dt
import time

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Invitation
from loyalty import roles
from members.models import AssetSnapshot, Member, Message, mask_phone
from members.services.members import members_closures_finalise
from points.models import Account, Entry
from points.services.adjustments import adjustment_request
from points.services.ledger import LedgerBatch, accounts_lock, points_credit
from rewards.services.redemptions import redemption_create
from tests.events.factories import EventFactory
from tests.factories import AssetSnapshotFactory, MemberFactory, UserFactory
from tests.members.tier_helpers import evaluate, ladder, snapshots
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db

LIST = "/admin/members/member/"


def page_url(member) -> str:
    return f"/admin/members/member/customer/{member.customer_no}/"


def credits(member, count: int, *, prefix: str) -> None:
    """``count`` bonus entries of 10 points each, written in one batch."""
    with transaction.atomic():
        batch = LedgerBatch(accounts=accounts_lock(member_ids=[member.pk]))
        for number in range(count):
            batch.credit(
                member_id=member.pk,
                points=10,
                kind=Entry.Kind.BONUS,
                idempotency_key=f"{prefix}-{number}",
                description=f"{prefix} bonus {number}",
            )
        batch.flush()


def signed_in(client, *role_names, username=None):
    user = UserFactory(username=username or "-".join(role_names) or "nobody", roles=role_names)
    client.force_login(user)
    return user


@pytest.fixture
def book():
    """Two members with a bit of everything; the second's rows must never show on the first's
    page."""
    ladder()
    alice = MemberFactory(
        customer_no="ALICE01", name="Alice Wang", phone="13812345678", preferred_language="en"
    )
    bob = MemberFactory(
        customer_no="BOB0002", name="Bob Li", phone="13987654321", preferred_language="en"
    )
    for member, aum in ((alice, "150000.00"), (bob, "20000.00")):
        snapshots(member, aum)
    evaluate()
    for member, prefix in ((alice, "alice"), (bob, "bobby")):
        credits(member, 3, prefix=prefix)
    points_credit(member=alice, points=1000, idempotency_key="alice-big", description="Welcome")
    points_credit(member=bob, points=777, idempotency_key="bob-big", description="Bob welcome")
    staff = UserFactory(username="maker")
    adjustment_request(member=alice, points=55, reason="Alice goodwill", actor=staff)
    adjustment_request(member=bob, points=66, reason="Bob goodwill", actor=staff)
    mug = RewardFactory(name_en="Alice mug", points_price=100)
    lamp = RewardFactory(name_en="Bob lamp", points_price=100)
    redemption_create(member=alice, reward_id=mug.pk)
    redemption_create(member=bob, reward_id=lamp.pk)
    Invitation.objects.create(event=EventFactory(title_en="Alice salon"), member=alice)
    Invitation.objects.create(event=EventFactory(title_en="Bob salon"), member=bob)
    return alice, bob


def test_the_page_shows_the_members_balance_ledger_lots_and_the_rest(client, book):
    alice, _bob = book
    signed_in(client, roles.PROGRAMME_ADMIN)
    response = client.get(page_url(alice))
    assert response.status_code == 200
    html = response.content.decode()
    balance = Account.objects.get(member=alice).balance
    assert balance == 3 * 10 + 1000 - 100
    assert 'id="points-balance" class="font-semibold text-2xl' in html
    assert f">{balance}</p>" in html
    for shown in (
        "ALICE01",
        "Alice Wang",
        "13812345678",  # programme admins may see contact data
        "alice bonus 2",  # the ledger
        "Welcome",
        "Alice goodwill",  # adjustments
        "Alice mug",  # redemptions
        "Alice salon",  # invitations
        'id="lots"',
        'id="tier-history"',
        'id="snapshots"',
        'id="messages"',
        "You redeemed",  # a message in the member's inbox
    ):
        assert shown in html, shown
    for hidden in (
        "BOB0002",
        "Bob Li",
        "bobby bonus",
        "Bob welcome",
        "Bob goodwill",
        "Bob lamp",
        "Bob salon",
        "13987654321",
        "777",
    ):
        assert hidden not in html, hidden
    # The full lists are linked by customer number, never by an internal id.
    assert "/admin/points/entry/?member__customer_no=ALICE01" in html
    assert "/admin/rewards/redemption/?member__customer_no=ALICE01" in html
    assert f"/admin/members/member/{alice.pk}/change/" in html  # the edit link, for who may edit


def test_the_list_links_each_customer_number_to_its_page(client, book):
    alice, _bob = book
    signed_in(client, roles.OPERATIONS)
    html = client.get(LIST, {"q": "ALICE01"}).content.decode()
    assert f'href="{page_url(alice)}"' in html
    assert "BOB0002" not in html


def test_an_unknown_customer_number_is_not_found_and_the_page_needs_the_view_permission(
    client, book
):
    alice, _bob = book
    signed_in(client, roles.OPERATIONS)
    assert client.get("/admin/members/member/customer/NOBODY/").status_code == 404
    client.force_login(UserFactory(username="marketer", roles=[roles.MARKETING]))
    assert client.get(page_url(alice)).status_code == 403


def test_sections_follow_the_viewers_permissions(client, book):
    alice, _bob = book
    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="members", codename__in=["view_member"])
    )
    client.force_login(viewer)
    html = client.get(page_url(alice)).content.decode()
    assert "Alice Wang" in html
    assert 'id="messages"' in html  # the inbox is part of the member
    for hidden in (
        "alice bonus",
        "Alice goodwill",
        "Alice salon",
        "points-balance",
        'id="ledger"',
        'id="lots"',
        'id="redemptions"',
        'id="tier-history"',
    ):
        assert hidden not in html, hidden


@pytest.fixture
def masked_viewer(client):
    """Staff who may view members (and their points) but not their contact data."""
    user = UserFactory(username="masked")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["members", "points"], codename__startswith="view_"
        ).exclude(codename="view_member_contact")
    )
    client.force_login(user)
    return user


def test_contact_data_are_masked_on_the_page_the_list_and_the_form(client, book, masked_viewer):
    alice, _bob = book
    pages = [
        client.get(page_url(alice)).content.decode(),
        client.get(LIST).content.decode(),
        client.get(f"/admin/members/member/{alice.pk}/change/").content.decode(),
    ]
    for html in pages:
        assert "13812345678" not in html
        assert alice.email not in html
        assert mask_phone("13812345678") in html  # 138****5678
    assert "a******@example.com" in pages[0]
    # Searching by contact data would reveal them: it finds nobody.
    assert "ALICE01" not in client.get(LIST, {"q": "13812345678"}).content.decode()


def test_roles_that_serve_customers_see_contact_data(client, book):
    alice, _bob = book
    signed_in(client, roles.OPERATIONS)
    assert "13812345678" in client.get(page_url(alice)).content.decode()
    assert "ALICE01" in client.get(LIST, {"q": "13812345678"}).content.decode()


def _export(client) -> str:
    response = client.post(
        "/admin/members/member/export/",
        {"format": "0", "resource": "0"},  # CSV, every column
    )
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


def test_an_export_masks_contact_data_without_the_permission(client, book, masked_viewer):
    alice, _bob = book
    text = _export(client)
    assert "ALICE01" in text
    assert "138****5678" in text
    assert "13812345678" not in text
    assert alice.email not in text
    assert str(alice.pk) + "," not in text.splitlines()[1]


def test_an_export_carries_contact_data_with_the_permission(client, book):
    alice, _bob = book
    signed_in(client, roles.PROGRAMME_ADMIN)
    text = _export(client)
    assert "13812345678" in text
    assert alice.email in text


def test_snapshots_cannot_be_changed_or_deleted(client, book):
    alice, _bob = book
    signed_in(client, roles.PROGRAMME_ADMIN)
    snapshot = AssetSnapshot.objects.filter(member=alice).order_by("-as_of").first()
    url = f"/admin/members/assetsnapshot/{snapshot.pk}/change/"
    before = list(AssetSnapshot.objects.order_by("pk").values())
    response = client.post(url, {"as_of": "2026-01-31", "deposits": "1", "member": alice.pk})
    assert response.status_code == 403
    delete = client.post(f"/admin/members/assetsnapshot/{snapshot.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert client.get("/admin/members/assetsnapshot/add/").status_code == 403
    # Its own page is a view, titled by customer number and date, not by database ids.
    view = client.get(url).content.decode()
    assert f"ALICE01 {snapshot.as_of}" in view
    assert 'name="_save"' not in view
    # Nor inline on the member's form: the form offers none of the snapshot fields.
    html = client.get(f"/admin/members/member/{alice.pk}/change/").content.decode()
    assert 'name="snapshots-0-deposits"' not in html
    assert 'name="snapshots-0-DELETE"' not in html
    assert list(AssetSnapshot.objects.order_by("pk").values()) == before


def _close(client, member, **extra):
    return client.post(LIST, {"action": "close", ACTION_CHECKBOX_NAME: [str(member.pk)], **extra})


def test_closing_asks_to_confirm_with_the_balances_to_forfeit(client, book):
    alice, bob = book
    signed_in(client, roles.PROGRAMME_ADMIN)
    balance = Account.objects.get(member=alice).balance
    response = client.post(
        LIST,
        {"action": "close", "index": "0", ACTION_CHECKBOX_NAME: [str(alice.pk), str(bob.pk)]},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "ALICE01" in html
    assert "BOB0002" in html
    assert (
        f'<td class="border-b border-base-200 px-4 py-1.5 dark:border-base-800">{balance}</td>'
        in html
    )
    total = balance + Account.objects.get(member=bob).balance
    assert f"{total} in all" in html
    assert Member.objects.filter(status=Member.Status.CLOSED).count() == 0
    # Confirming without a reason is refused, and still nothing changes.
    refused = _close(client, alice, confirm="yes", reason="  ")
    assert refused.status_code == 200
    assert "Give the reason for this change." in refused.content.decode() or (
        "This field is required." in refused.content.decode()
    )
    alice.refresh_from_db()
    assert alice.status == Member.Status.ACTIVE


def test_a_confirmed_closure_closes_and_forfeits_after_the_notice(client, book):
    alice, bob = book
    signed_in(client, roles.PROGRAMME_ADMIN)
    balance = Account.objects.get(member=alice).balance
    response = _close(client, alice, confirm="yes", reason="Customer asked to leave")
    assert response.status_code == 302
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.status, bob.status) == (Member.Status.CLOSED, Member.Status.ACTIVE)
    assert Message.objects.filter(member=alice, title="Your membership is closed").exists()
    from loyalty.models import AuditLog

    assert AuditLog.objects.filter(reason="Customer asked to leave").exists()
    # The notice period passes: the balance shown on the confirmation page is forfeited.
    Member.objects.filter(pk=alice.pk).update(
        status_changed_at=timezone.now() - dt.timedelta(days=31)
    )
    assert members_closures_finalise() == 1
    forfeit = Entry.objects.get(member=alice, kind=Entry.Kind.FORFEIT)
    assert forfeit.points == -balance
    assert Account.objects.get(member=bob).balance > 0


def test_freezing_asks_to_confirm_too(client, book):
    alice, _bob = book
    signed_in(client, roles.PROGRAMME_ADMIN)
    first = client.post(LIST, {"action": "freeze", "index": "0", ACTION_CHECKBOX_NAME: [alice.pk]})
    assert first.status_code == 200
    alice.refresh_from_db()
    assert alice.status == Member.Status.ACTIVE
    client.post(
        LIST,
        {
            "action": "freeze",
            ACTION_CHECKBOX_NAME: [alice.pk],
            "confirm": "yes",
            "reason": "Fraud check",
        },
    )
    alice.refresh_from_db()
    assert alice.status == Member.Status.FROZEN


def test_operations_cannot_close_members(client, book):
    alice, _bob = book
    signed_in(client, roles.OPERATIONS)
    _close(client, alice, confirm="yes", reason="not allowed")
    alice.refresh_from_db()
    assert alice.status == Member.Status.ACTIVE


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    for query in captured:  # every read of a member's rows is bounded
        if 'FROM "points_entry"' in query["sql"] or 'FROM "points_lot"' in query["sql"]:
            assert "LIMIT" in query["sql"], query["sql"]
    return len(captured)


def test_the_page_costs_the_same_queries_with_thousands_of_entries(client, book):
    alice, _bob = book
    signed_in(client, roles.PROGRAMME_ADMIN)
    client.get(page_url(alice))  # warm the session and permission caches
    few = _queries(client, page_url(alice))
    credits(alice, 3000, prefix="many")
    for month in range(1, 10):
        AssetSnapshotFactory(member=alice, as_of=dt.date(2025, month, 28))
    started = time.monotonic()
    many = _queries(client, page_url(alice))
    assert time.monotonic() - started < 1.0
    assert many == few
    assert many <= 30
    html = client.get(page_url(alice)).content.decode()
    # The newest rows only, with the way to the rest.
    assert "many bonus 2999" in html
    assert "many bonus 2000" not in html
    assert "The newest 20 rows are shown." in html


def test_the_member_form_saves_through_the_service_with_an_audit_row(client):
    from loyalty.models import AuditAction, AuditLog

    user = signed_in(client, roles.PROGRAMME_ADMIN)
    response = client.post(
        "/admin/members/member/add/",
        {
            "customer_no": "FORM001",
            "name": "Form Member",
            "gender": "unspecified",
            "phone": "13811112222",
            "email": "form@example.com",
            "preferred_language": "en",
            "joined_at": "2026-01-02",
            "snapshots-TOTAL_FORMS": "0",
            "snapshots-INITIAL_FORMS": "0",
            "tier_history-TOTAL_FORMS": "0",
            "tier_history-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    member = Member.objects.get(customer_no="FORM001")
    assert member.phone == "13811112222"
    assert AuditLog.objects.filter(
        actor=user, action=AuditAction.MEMBER_CREATE, target_id="FORM001"
    ).exists()


def test_the_linked_full_list_holds_only_that_members_rows(admin_client, book):
    page = admin_client.get("/admin/points/entry/?member__customer_no=ALICE01")
    assert page.status_code == 200  # an allowed lookup, not the admin's "?e=1" refusal
    html = page.content.decode()
    assert "Welcome" in html
    assert "Bob welcome" not in html
