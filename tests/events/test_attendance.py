"""Check-in, no-shows and feedback on PostgreSQL: attendance and its points once, codes scoped
to their event, feedback only from attendees, once."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from events.errors import CheckInClosed, FeedbackGiven, InvitationNotFound, NotAttended
from events.models import Invitation
from events.services.attendance import feedback_submit, invitation_check_in, no_shows_mark_due
from events.services.rsvp import invitation_rsvp
from points.models import Account, Entry
from tests.events.test_rsvp import _event, _invite
from tests.factories import database_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def accepted():
    event = _event(attendance_points=200)
    (invitation,) = _invite(event, 1)
    return event, invitation_rsvp(invitation=invitation, response="accept")


def test_checking_in_twice_records_attendance_and_awards_points_once(accepted):
    event, invitation = accepted
    first = invitation_check_in(event=event, code=invitation.check_in_code)
    again = invitation_check_in(event=event, code=invitation.check_in_code)
    assert first.status == again.status == "attended"
    entries = Entry.objects.filter(member=invitation.member)
    assert [(e.kind, e.points) for e in entries] == [("bonus", 200)]
    assert Account.objects.get(member=invitation.member).balance == 200


def test_a_wrong_code_or_another_events_code_is_not_found_and_changes_nothing(accepted):
    event, _invitation = accepted
    other = _event()
    (stranger,) = _invite(other, 1)
    before = database_state()
    with pytest.raises(InvitationNotFound):
        invitation_check_in(event=event, code="not-a-code")
    with pytest.raises(InvitationNotFound):
        invitation_check_in(event=event, code=stranger.check_in_code)
    assert database_state() == before


def test_only_an_accepted_invitation_checks_in(accepted):
    event, _invitation = accepted
    (declined,) = _invite(event, 1)
    invitation_rsvp(invitation=declined, response="decline")
    with pytest.raises(CheckInClosed):
        invitation_check_in(event=event, code=declined.check_in_code)


def test_accepted_members_who_did_not_come_are_no_shows_once(accepted):
    event, invitation = accepted
    (came,) = _invite(event, 1)
    invitation_rsvp(invitation=came, response="accept")
    invitation_check_in(event=event, code=came.check_in_code)
    after = event.ends_at + dt.timedelta(minutes=1)
    assert no_shows_mark_due(now=after) == 1
    assert no_shows_mark_due(now=after) == 0
    statuses = dict(Invitation.objects.filter(event=event).values_list("pk", "status"))
    assert statuses == {invitation.pk: "no_show", came.pk: "attended"}


def test_feedback_only_from_attendees_once_and_in_range(accepted):
    event, invitation = accepted
    before = database_state()
    with pytest.raises(NotAttended):
        feedback_submit(invitation=invitation, rating=5, nps=10)
    assert database_state() == before
    attended = invitation_check_in(event=event, code=invitation.check_in_code)
    with pytest.raises(ValidationError):
        feedback_submit(invitation=attended, rating=6, nps=10)
    feedback = feedback_submit(invitation=attended, rating=4, nps=9, comment="很有收获")
    assert (feedback.rating, feedback.nps) == (4, 9)
    with pytest.raises(FeedbackGiven):
        feedback_submit(invitation=attended, rating=1, nps=0)
