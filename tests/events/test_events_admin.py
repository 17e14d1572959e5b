"""The events admin: pages answer, a new event is saved through the service (a draft, audited),
publish and cancel are actions that report refusals without an error page."""

import datetime as dt

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from events.models import Event, Invitation
from loyalty.models import AuditLog
from tests.events.test_rsvp import _event, _invite

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
        "target_tiers": "[]",
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


def test_publish_and_cancel_actions(admin_client):
    event = _event(status=Event.Status.DRAFT)
    _invite(event, 2)
    url = "/admin/events/event/"
    admin_client.post(url, {"action": "publish", ACTION_CHECKBOX_NAME: [str(event.pk)]})
    event.refresh_from_db()
    assert event.status == "published"
    admin_client.post(url, {"action": "cancel", ACTION_CHECKBOX_NAME: [str(event.pk)]})
    event.refresh_from_db()
    assert event.status == "cancelled"
    again = admin_client.post(
        url, {"action": "publish", ACTION_CHECKBOX_NAME: [str(event.pk)]}, follow=True
    )
    assert again.status_code == 200  # refused (rsvp_closed), reported, no error page
    assert Invitation.objects.filter(event=event).count() == 2
