"""The events API as the banking apps and marketing call it: a member answers only their own
invitations (404 for another's), gets the calendar file and QR image of an accepted one, gives
feedback once after attending; marketing creates, publishes, sees figures, checks in at the
door, cancels; members get 403 on every staff endpoint."""

import datetime as dt

import pytest
from django.utils import timezone

from events.models import Event, Invitation
from loyalty import roles
from points.models import Account
from tests.events.factories import EventFactory
from tests.events.test_rsvp import _event
from tests.factories import database_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def invited(member_client):
    client = member_client()
    event = _event(capacity=1, attendance_points=150, venue="Bund branch, 5F")
    invitation = Invitation.objects.create(event=event, member=client.member)
    return client, event, invitation


def test_a_member_answers_their_invitation_and_gets_its_code_calendar_and_qr(invited):
    client, _event, invitation = invited
    listed = client.get("/api/v1/me/invitations/").json()["results"]
    assert [item["id"] for item in listed] == [str(invitation.pk)]
    assert listed[0]["check_in_code"] is None
    assert listed[0]["event"]["venue"] == "Bund branch, 5F"
    url = f"/api/v1/me/invitations/{invitation.pk}"
    assert client.get(f"{url}/calendar.ics").status_code == 409  # not accepted yet
    answered = client.post(f"{url}/rsvp/", {"response": "accept", "seats": 1}, format="json")
    assert answered.status_code == 200, answered.content
    assert answered.json()["status"] == "accepted"
    assert answered.json()["check_in_code"] == invitation.check_in_code
    calendar = client.get(f"{url}/calendar.ics")
    assert calendar["Content-Type"].startswith("text/calendar")
    assert b"BEGIN:VEVENT" in calendar.content
    assert b"SUMMARY:Wealth planning salon" in calendar.content
    qr = client.get(f"{url}/qr/").json()
    assert qr["check_in_code"] == invitation.check_in_code
    assert qr["qr_svg"].startswith("<svg")


def test_another_members_invitation_is_not_found_and_untouched(invited, member_client):
    _client, _event, invitation = invited
    stranger = member_client()
    url = f"/api/v1/me/invitations/{invitation.pk}"
    before = database_state()
    for response in (
        stranger.post(f"{url}/rsvp/", {"response": "accept"}, format="json"),
        stranger.get(f"{url}/calendar.ics"),
        stranger.get(f"{url}/qr/"),
        stranger.post(f"{url}/feedback/", {"rating": 5, "nps": 10}, format="json"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert stranger.get("/api/v1/me/invitations/").json()["results"] == []
    assert database_state() == before


def test_a_full_event_waitlists_and_a_closed_one_answers_rsvp_closed(invited, member_client):
    client, event, invitation = invited
    client.post(
        f"/api/v1/me/invitations/{invitation.pk}/rsvp/", {"response": "accept"}, format="json"
    )
    other = member_client()
    second = Invitation.objects.create(event=event, member=other.member)
    waitlisted = other.post(
        f"/api/v1/me/invitations/{second.pk}/rsvp/", {"response": "accept"}, format="json"
    )
    assert waitlisted.json()["status"] == "waitlisted"
    Event.objects.filter(pk=event.pk).update(rsvp_deadline=timezone.now() - dt.timedelta(hours=1))
    late = other.post(
        f"/api/v1/me/invitations/{second.pk}/rsvp/", {"response": "decline"}, format="json"
    )
    assert (late.status_code, late.json()["code"]) == (409, "rsvp_closed")


def test_check_in_at_the_door_once_then_feedback_once(invited, staff_client):
    client, event, invitation = invited
    url = f"/api/v1/me/invitations/{invitation.pk}"
    client.post(f"{url}/rsvp/", {"response": "accept"}, format="json")
    early = client.post(f"{url}/feedback/", {"rating": 5, "nps": 9}, format="json")
    assert (early.status_code, early.json()["code"]) == (409, "not_attended")
    door = staff_client(roles.MARKETING)
    check_in = f"/api/v1/events/{event.pk}/check-in/"
    first = door.post(check_in, {"code": invitation.check_in_code}, format="json")
    again = door.post(check_in, {"code": invitation.check_in_code}, format="json")
    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == "attended"
    assert Account.objects.get(member=invitation.member).balance == 150
    wrong = door.post(check_in, {"code": "nope"}, format="json")
    assert (wrong.status_code, wrong.json()["code"]) == (404, "not_found")
    given = client.post(f"{url}/feedback/", {"rating": 4, "nps": 9, "comment": "好"}, format="json")
    assert given.status_code == 201, given.content
    twice = client.post(f"{url}/feedback/", {"rating": 1, "nps": 0}, format="json")
    assert (twice.status_code, twice.json()["code"]) == (409, "feedback_given")
    figures = door.get(f"/api/v1/events/{event.pk}/").json()["figures"]
    assert (figures["invited"], figures["attended"], figures["feedback"]) == (1, 1, 1)
    assert (figures["rating_avg"], figures["nps_avg"]) == ("4.00", "9.00")


def test_marketing_creates_publishes_and_cancels_and_members_get_403(staff_client, member_client):
    marketing = staff_client(roles.MARKETING)
    now = timezone.now()
    created = marketing.post(
        "/api/v1/events/",
        {
            "title": "Children's education lecture",
            "title_zh_hans": "子女教育讲座",
            "kind": "lecture",
            "starts_at": (now + dt.timedelta(days=14)).isoformat(),
            "ends_at": (now + dt.timedelta(days=14, hours=2)).isoformat(),
            "rsvp_deadline": (now + dt.timedelta(days=12)).isoformat(),
            "invite_at": (now + dt.timedelta(days=1)).isoformat(),
            "capacity": 40,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    event_id = created.json()["id"]
    assert created.json()["status"] == "draft"
    published = marketing.post(f"/api/v1/events/{event_id}/publish/")
    assert published.json()["status"] == "published"
    listed = marketing.get(f"/api/v1/events/{event_id}/invitations/")
    assert listed.json()["results"] == []
    member = member_client()
    before = database_state()
    assert member.post("/api/v1/events/", {}, format="json").status_code == 403
    assert member.get(f"/api/v1/events/{event_id}/").status_code == 403
    assert member.post(f"/api/v1/events/{event_id}/check-in/", {"code": "x"}).status_code == 403
    assert database_state() == before
    cancelled = marketing.post(
        f"/api/v1/events/{event_id}/cancel/", {"reason": "venue closed"}, format="json"
    )
    assert cancelled.json()["status"] == "cancelled"


def test_an_event_targets_a_segment_by_id_and_an_unknown_one_is_refused(staff_client):
    from members.services.segments import segment_create

    marketing = staff_client(roles.MARKETING)
    segment = segment_create(actor=None, name_en="Retirees", rule={"age_min": 60})
    event = EventFactory(status=Event.Status.DRAFT)
    url = f"/api/v1/events/{event.pk}/"
    answer = marketing.patch(url, {"target_segment": str(segment.pk)}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["target_segment"] == str(segment.pk)
    before = database_state()
    unknown = marketing.patch(
        url, {"target_segment": "00000000-0000-4000-8000-000000000000"}, format="json"
    )
    assert unknown.status_code == 400
    assert [e["field"] for e in unknown.json()["errors"]] == ["target_segment"]
    assert database_state() == before
