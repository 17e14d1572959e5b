"""The events admin: pages answer, a new event is saved through the service (a draft, audited),
publish and cancel are actions that report refusals without an error page."""

import datetime as dt

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from events.models import Event, Invitation
from loyalty import roles
from loyalty.models import AuditLog
from members.models import Tier
from tests.events.test_rsvp import _event, _invite
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_events_page_answers(admin_client):
    event = _event()
    invitation = _invite(event, 1)[0]
    for url in (
        "/admin/events/event/",
        "/admin/events/event/add/",
        f"/admin/events/event/{event.pk}/change/",
        "/admin/events/invitation/",
        f"/admin/events/invitation/{invitation.pk}/change/",
        "/admin/events/feedback/",
    ):
        assert admin_client.get(url).status_code == 200, url


def test_a_new_event_from_the_admin_is_a_draft_saved_through_the_service(admin_client):
    now = timezone.localtime()
    fmt = "%Y-%m-%d"
    when = {
        "starts_at": now + dt.timedelta(days=10),
        "ends_at": now + dt.timedelta(days=10, hours=2),
        "rsvp_deadline": now + dt.timedelta(days=8),
        "invite_at": now + dt.timedelta(days=1),
    }
    data = {
        "title_en": "Health lecture",
        "title_zh_hans": "健康讲座",
        "kind": "lecture",
        "capacity": "30",
        "max_seats": "2",
        "offer_hold_hours": "24",
        "attendance_points": "100",
        "invitations-TOTAL_FORMS": "0",
        "invitations-INITIAL_FORMS": "0",
    }
    for name, moment in when.items():
        data[f"{name}_0"] = moment.strftime(fmt)
        data[f"{name}_1"] = moment.strftime("%H:%M:%S")
    response = admin_client.post("/admin/events/event/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = Event.objects.get(title_en="Health lecture")
    assert event.status == "draft"
    assert AuditLog.objects.filter(action="event.create", target_id=str(event.pk)).exists()


def test_new_event_targets_tiers_chosen_from_a_list(admin_client):
    for code, rank in (("GOLD", 20), ("PLATINUM", 30)):
        Tier.objects.create(code=code, name_en=code.title(), rank=rank, min_avg_aum=rank * 10_000)
    page = admin_client.get("/admin/events/event/add/").content.decode()
    for code in ("GOLD", "PLATINUM"):
        assert f'name="target_tiers" value="{code}"' in page


def test_publish_and_cancel_actions_ask_first(admin_client):
    event = _event(status=Event.Status.DRAFT)
    _invite(event, 2)
    url = "/admin/events/event/"
    selected = {ACTION_CHECKBOX_NAME: [str(event.pk)]}
    asked = admin_client.post(url, {"action": "publish", **selected})
    assert 'name="action" value="publish"' in asked.content.decode()
    assert 'name="confirm" value="yes"' in asked.content.decode()
    event.refresh_from_db()
    assert event.status == "draft"  # nothing until confirmed
    admin_client.post(url, {"action": "publish", "confirm": "yes", **selected})
    event.refresh_from_db()
    assert event.status == "published"
    no_reason = admin_client.post(url, {"action": "cancel", "confirm": "yes", **selected})
    assert "This field is required." in no_reason.content.decode()
    event.refresh_from_db()
    assert event.status == "published"
    admin_client.post(
        url, {"action": "cancel", "confirm": "yes", "reason": "Venue flooded", **selected}
    )
    event.refresh_from_db()
    assert event.status == "cancelled"
    assert AuditLog.objects.get(action="event.cancel", target_id=str(event.pk)).reason == (
        "Venue flooded"
    )
    again = admin_client.post(url, {"action": "publish", "confirm": "yes", **selected}, follow=True)
    assert again.status_code == 200  # refused (rsvp_closed), reported, no error page
    assert Invitation.objects.filter(event=event).count() == 2


def test_publish_and_cancel_from_the_event_page(admin_client):
    event = _event(status=Event.Status.DRAFT)
    page = f"/admin/events/event/{event.pk}/change/"
    assert f"/admin/events/event/{event.pk}/publish/" in admin_client.get(page).content.decode()
    admin_client.get(f"/admin/events/event/{event.pk}/publish/")  # the dialog only
    event.refresh_from_db()
    assert event.status == "draft"
    response = admin_client.post(
        f"/admin/events/event/{event.pk}/publish/", {"_form_submitted": "on"}
    )
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.status == "published"
    body = admin_client.get(page).content.decode()
    assert f"/admin/events/event/{event.pk}/publish/" not in body  # published: no second time
    admin_client.post(
        f"/admin/events/event/{event.pk}/cancel/", {"_form_submitted": "on", "reason": "Storm"}
    )
    event.refresh_from_db()
    assert event.status == "cancelled"
    assert admin_client.get(page).status_code == 200  # a cancelled event can still be read


def test_a_role_that_may_only_look_cannot_publish(client):
    client.force_login(UserFactory(roles=[roles.OPERATIONS]))
    event = _event(status=Event.Status.DRAFT)
    response = client.post(f"/admin/events/event/{event.pk}/publish/", {"_form_submitted": "on"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.status == "draft"


def test_the_event_page_costs_the_same_with_many_invitations(
    admin_client, django_assert_max_num_queries
):
    event = _event(status=Event.Status.PUBLISHED)
    _invite(event, 40)
    with django_assert_max_num_queries(30):
        page = admin_client.get(f"/admin/events/event/{event.pk}/change/")
    assert f"/admin/events/invitation/?event__id__exact={event.pk}" in page.content.decode()
    listed = admin_client.get(f"/admin/events/invitation/?event__id__exact={event.pk}")
    assert "40 " in listed.content.decode()  # the invitations' own list, filtered to the event
