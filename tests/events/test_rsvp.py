"""RSVP on PostgreSQL: capacity under concurrency (each answer in its own thread and
connection, all seen queued on the event's row together), the waitlist, offers of freed seats
in order, lapsed offers, closed answers."""

import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from events.errors import InvalidSeats, RsvpClosed
from events.models import Event, Invitation
from events.services.rsvp import invitation_rsvp, offers_lapse_due, seats_taken_recount
from members.models import MemberTier
from tests.factories import MemberFactory, database_state, lock_queue
from tests.members.tier_helpers import ladder


def _event(**fields) -> Event:
    now = timezone.now()
    values = {
        "title_en": "Wealth planning salon",
        "title_zh_hans": "财富规划沙龙",
        "kind": "salon",
        "starts_at": now + dt.timedelta(days=10),
        "ends_at": now + dt.timedelta(days=10, hours=2),
        "rsvp_deadline": now + dt.timedelta(days=8),
        "invite_at": now - dt.timedelta(days=1),
        "capacity": 20,
        "max_seats": 3,
        "status": Event.Status.PUBLISHED,
        **fields,
    }
    return Event.objects.create(**values)


def _invite(event, count):
    return [Invitation.objects.create(event=event, member=MemberFactory()) for _ in range(count)]


# At most this many answers in flight at once: each holds a connection while it waits.
IN_FLIGHT = 40


def _race(invitations, seats_of) -> tuple[list[BaseException], set[int]]:
    """Every accept on a pool of IN_FLIGHT threads, each with its own connection, while this
    connection holds the event's row; the backends seen waiting for it (directly or queued
    behind the first waiter) before letting them go."""
    errors: list[BaseException] = []

    def accept(invitation):
        try:
            invitation_rsvp(invitation=invitation, response="accept", seats=seats_of(invitation))
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        with transaction.atomic():
            Event.objects.select_for_update().get(pk=invitations[0].event_id)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                holder = cursor.fetchone()[0]
            futures = [pool.submit(accept, invitation) for invitation in invitations]
            front, behind = lock_queue(
                holder=holder, waiters=min(IN_FLIGHT, len(invitations)), timeout=60
            )
        for future in futures:
            future.result(timeout=120)
    return errors, front | behind


@pytest.mark.django_db(transaction=True)
def test_100_accepts_at_once_for_20_seats_give_20_accepted_and_80_waitlisted():
    event = _event(capacity=20)
    invitations = _invite(event, 100)
    errors, queued = _race(invitations, lambda invitation: 1)
    assert errors == []
    assert len(queued) == IN_FLIGHT  # the first wave all waited on the event's row at once
    counts = dict(
        Invitation.objects.filter(event=event).values_list("status").annotate(n=Count("id"))
    )
    assert counts == {"accepted": 20, "waitlisted": 80}
    event.refresh_from_db()
    assert event.seats_taken == 20 == seats_taken_recount(event=event)


@pytest.mark.django_db(transaction=True)
def test_with_companions_the_seats_taken_never_pass_capacity():
    event = _event(capacity=20, max_seats=3)
    invitations = _invite(event, 40)
    parties = {
        invitation.pk: random.Random(invitation.pk.int).randint(1, 3) for invitation in invitations
    }
    errors, _queued = _race(invitations, lambda invitation: parties[invitation.pk])
    assert errors == []
    event.refresh_from_db()
    assert event.seats_taken == seats_taken_recount(event=event)
    assert event.seats_taken <= 20
    # Every waitlisted party is larger than the seats left when it answered: none would fit now.
    waitlisted = Invitation.objects.filter(event=event, status="waitlisted")
    assert all(i.seats > 20 - event.seats_taken for i in waitlisted)


@pytest.mark.django_db
def test_a_declined_seat_is_offered_to_exactly_one_waitlisted_member_in_order():
    tiers = ladder()
    event = _event(capacity=2, max_seats=2)
    first, second = _invite(event, 2)
    for invitation in (first, second):
        invitation_rsvp(invitation=invitation, response="accept", seats=1)
    low, high, late_high = _invite(event, 3)
    MemberTier.objects.create(member=high.member, tier=tiers["DIAMOND"], since=timezone.now())
    MemberTier.objects.create(member=late_high.member, tier=tiers["DIAMOND"], since=timezone.now())
    for invitation in (low, high, late_high):
        assert invitation_rsvp(invitation=invitation, response="accept").status == "waitlisted"

    invitation_rsvp(invitation=first, response="decline")

    statuses = dict(Invitation.objects.filter(event=event).values_list("pk", "status"))
    assert statuses[first.pk] == "declined"
    assert [pk for pk, status in statuses.items() if status == "offered"] == [high.pk]
    event.refresh_from_db()
    assert event.seats_taken == 2 == seats_taken_recount(event=event)
    # Confirming the offer keeps the held seat; nothing else moves.
    assert invitation_rsvp(invitation=high, response="accept").status == "accepted"
    event.refresh_from_db()
    assert event.seats_taken == 2


@pytest.mark.django_db
def test_a_lapsed_offer_passes_the_seat_to_the_next():
    event = _event(capacity=1, offer_hold_hours=1)
    holder, next_one, last = _invite(event, 3)
    invitation_rsvp(invitation=holder, response="accept")
    invitation_rsvp(invitation=next_one, response="accept")
    invitation_rsvp(invitation=last, response="accept")
    invitation_rsvp(invitation=holder, response="decline")
    next_one.refresh_from_db()
    assert next_one.status == "offered"
    assert offers_lapse_due(now=timezone.now() + dt.timedelta(hours=2)) == 1
    next_one.refresh_from_db()
    last.refresh_from_db()
    assert (next_one.status, last.status) == ("declined", "offered")
    event.refresh_from_db()
    assert event.seats_taken == 1 == seats_taken_recount(event=event)


@pytest.mark.django_db
def test_answers_after_the_deadline_or_for_a_cancelled_event_are_refused_and_change_nothing():
    late = _event()
    (invitation,) = _invite(late, 1)
    cancelled = _event(status=Event.Status.CANCELLED)
    (other,) = _invite(cancelled, 1)
    before = database_state()
    with pytest.raises(RsvpClosed):
        invitation_rsvp(
            invitation=invitation, response="accept", now=late.rsvp_deadline + dt.timedelta(1)
        )
    with pytest.raises(RsvpClosed):
        invitation_rsvp(invitation=other, response="accept")
    with pytest.raises(InvalidSeats):
        invitation_rsvp(invitation=invitation, response="accept", seats=4)
    assert database_state() == before


@pytest.mark.django_db
def test_between_equal_tiers_the_member_with_fewer_no_shows_gets_the_seat_first():
    event = _event(capacity=1)
    (holder,) = _invite(event, 1)
    invitation_rsvp(invitation=holder, response="accept")
    absentee, reliable = _invite(event, 2)
    past = _event(
        starts_at=timezone.now() - dt.timedelta(days=60),
        ends_at=timezone.now() - dt.timedelta(days=60) + dt.timedelta(hours=2),
        rsvp_deadline=timezone.now() - dt.timedelta(days=61),
        invite_at=timezone.now() - dt.timedelta(days=70),
    )
    Invitation.objects.create(event=past, member=absentee.member, status="no_show")
    invitation_rsvp(invitation=absentee, response="accept")  # answered first
    invitation_rsvp(invitation=reliable, response="accept")
    invitation_rsvp(invitation=holder, response="decline")
    absentee.refresh_from_db()
    reliable.refresh_from_db()
    assert (reliable.status, absentee.status) == ("offered", "waitlisted")
