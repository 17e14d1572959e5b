"""Scheduling events: validated and audited saves, publishing, cancelling that tells everyone
invited once and closes answers."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from events.errors import RsvpClosed
from events.models import Event
from events.services.events import event_cancel, event_create, event_publish, event_update
from events.services.rsvp import invitation_rsvp
from loyalty.models import AuditLog
from members.models import Message
from tests.events.test_rsvp import _event, _invite
from tests.factories import UserFactory, database_state
from tests.members.tier_helpers import ladder

pytestmark = pytest.mark.django_db


def _fields(**overrides):
    now = timezone.now()
    return {
        "title_en": "Tax lecture",
        "title_zh_hans": "个税讲座",
        "kind": "lecture",
        "venue": "Lujiazui branch",
        "starts_at": now + dt.timedelta(days=20),
        "ends_at": now + dt.timedelta(days=20, hours=2),
        "rsvp_deadline": now + dt.timedelta(days=18),
        "invite_at": now + dt.timedelta(days=1),
        "capacity": 30,
        "target_tiers": ["GOLD"],
        **overrides,
    }


def test_a_new_event_is_a_draft_validated_and_audited():
    ladder()
    marketing = UserFactory(roles=["marketing"])
    event = event_create(actor=marketing, fields=_fields())
    assert event.status == "draft"
    assert AuditLog.objects.get(action="event.create").actor == marketing
    before = database_state()
    with pytest.raises(ValidationError):
        event_create(actor=marketing, fields=_fields(target_tiers=["NOPE"]))
    late_deadline = timezone.now() + dt.timedelta(days=30)  # after the event starts
    with pytest.raises(ValidationError):
        event_create(actor=marketing, fields=_fields(rsvp_deadline=late_deadline))
    assert database_state() == before


def test_capacity_cannot_drop_below_the_seats_taken():
    event = _event(capacity=3)
    for invitation in _invite(event, 2):
        invitation_rsvp(invitation=invitation, response="accept")
    staff = UserFactory(roles=["marketing"])
    with pytest.raises(ValidationError):
        event_update(event=event, actor=staff, changes={"capacity": 1})
    assert event_update(event=event, actor=staff, changes={"capacity": 2}).capacity == 2


def test_publish_once_and_cancel_tells_every_invited_member_once_and_closes_answers():
    staff = UserFactory(roles=["marketing"])
    event = _event(status=Event.Status.DRAFT)
    assert event_publish(event=event, actor=staff).status == "published"
    assert event_publish(event=event, actor=staff).status == "published"
    assert AuditLog.objects.filter(action="event.publish").count() == 1
    invitations = _invite(event, 3)
    invitation_rsvp(invitation=invitations[0], response="accept")
    event_cancel(event=event, actor=staff, reason="speaker ill")
    event_cancel(event=event, actor=staff)
    cancelled = Message.objects.filter(dedupe_key__endswith=":cancelled")
    assert cancelled.count() == 3
    with pytest.raises(RsvpClosed):
        invitation_rsvp(invitation=invitations[1], response="accept")
    with pytest.raises(RsvpClosed):
        event_publish(event=event, actor=staff)


def test_an_invitation_to_no_event_or_no_member_is_refused_by_the_database():
    import uuid

    from django.db import IntegrityError, transaction

    from events.models import Invitation
    from tests.factories import MemberFactory

    event = _event()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(event_id=uuid.uuid4(), member=MemberFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(event=event, member_id=10**12)
    assert not Invitation.objects.exists()
