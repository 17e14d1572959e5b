"""RSVP: accept, decline, the waitlist and seat offers, each under the event's capacity row lock.

Every change of seats locks the event's row (``SELECT ... FOR UPDATE``) and moves its
``seats_taken`` in the same transaction: the seats of the accepted invitations and of the offers
that hold a seat. A check constraint refuses ``seats_taken`` above ``capacity`` whatever writes
it, so under any concurrency accepted seats never exceed capacity; nothing is counted first and
inserted after.

Accepting takes the seats if they are free, else waitlists the member. A declined accepted seat
(or a lapsed offer) frees its seats and offers them to the first waitlisted member whose party
fits: highest tier rank first, then fewest no-shows in the last year, then who answered first.
The offer holds the seats for ``offer_hold_hours``; accepting it confirms them, letting it lapse
passes them to the next. After the RSVP deadline, or for a cancelled event, answers are refused
(``rsvp_closed``).
"""

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from events.errors import InvalidSeats, RsvpClosed
from events.models import Event, Invitation
from members.models import MemberTier, Message
from members.services.messages import member_message_send

ACCEPT, DECLINE = "accept", "decline"
# Invitations whose seats count against the event's capacity.
HOLDING = (Invitation.Status.ACCEPTED, Invitation.Status.OFFERED)


def _event_locked(event_id: Any) -> Event:
    return Event.objects.select_for_update().get(pk=event_id)


def _take(event: Event, seats: int) -> None:
    event.seats_taken += seats
    Event.objects.filter(pk=event.pk).update(seats_taken=F("seats_taken") + seats)


def _free(event: Event, seats: int) -> None:
    event.seats_taken -= seats
    Event.objects.filter(pk=event.pk).update(seats_taken=F("seats_taken") - seats)


def invitation_rsvp(
    *, invitation: Invitation, response: str, seats: int = 1, now: dt.datetime | None = None
) -> Invitation:
    """The member's answer to ``invitation``: ``accept`` (with ``seats``: the member and their
    companions) or ``decline``. Accepting an ``offered`` invitation confirms the seats it holds;
    accepting again changes nothing. Returns the invitation as it stands."""
    now = now or timezone.now()
    if response not in (ACCEPT, DECLINE):
        raise ValueError(f"unknown response {response!r}")
    with transaction.atomic():
        event = _event_locked(invitation.event_id)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if event.status == Event.Status.CANCELLED or now > event.rsvp_deadline:
            raise RsvpClosed()
        if invitation.status in (Invitation.Status.ATTENDED, Invitation.Status.NO_SHOW):
            raise RsvpClosed()
        if response == DECLINE:
            return _decline(event, invitation, now=now)
        if invitation.status == Invitation.Status.ACCEPTED:
            return invitation
        if invitation.status == Invitation.Status.OFFERED:
            invitation.status = Invitation.Status.ACCEPTED
            invitation.offer_expires_at = None
            invitation.answered_at = now
            invitation.save(update_fields=["status", "offer_expires_at", "answered_at"])
            _tell(invitation, event="accepted", title=_("Your seat at %(event)s is confirmed"))
            return invitation
        if not 1 <= seats <= event.max_seats:
            raise InvalidSeats()
        invitation.seats = seats
        invitation.answered_at = now
        if event.capacity - event.seats_taken >= seats:
            _take(event, seats)
            invitation.status = Invitation.Status.ACCEPTED
            _tell(invitation, event="accepted", title=_("Your seat at %(event)s is confirmed"))
        else:
            invitation.status = Invitation.Status.WAITLISTED
            _tell(
                invitation,
                event="waitlisted",
                title=_("%(event)s is full: you are on the waitlist"),
            )
        invitation.save(update_fields=["status", "seats", "answered_at"])
        return invitation


def _decline(event: Event, invitation: Invitation, *, now: dt.datetime) -> Invitation:
    held = invitation.status in HOLDING
    invitation.status = Invitation.Status.DECLINED
    invitation.offer_expires_at = None
    invitation.answered_at = now
    invitation.save(update_fields=["status", "offer_expires_at", "answered_at"])
    if held:
        _free(event, invitation.seats)
        offers_make(event=event, now=now)
    return invitation


def _waitlist_order(event: Event, *, now: dt.datetime):
    """The waitlist in the order seats are offered: tier rank (highest first; a member without
    a tier state ranks lowest), no-shows in the last year (fewest first), time of answer."""
    rank = Subquery(
        MemberTier.objects.filter(member=OuterRef("member_id")).values("tier__rank")[:1],
        output_field=IntegerField(),
    )
    no_shows = Subquery(
        Invitation.objects.filter(
            member=OuterRef("member_id"),
            status=Invitation.Status.NO_SHOW,
            event__starts_at__gte=now - dt.timedelta(days=365),
        )
        .order_by()
        .values("member")
        .annotate(count=Count("id"))
        .values("count"),
        output_field=IntegerField(),
    )
    return (
        Invitation.objects.filter(event=event, status=Invitation.Status.WAITLISTED)
        .annotate(rank=Coalesce(rank, Value(0)), no_shows=Coalesce(no_shows, Value(0)))
        .order_by(F("rank").desc(), "no_shows", "answered_at", "id")
    )


def offers_make(*, event: Event, now: dt.datetime) -> list[Invitation]:
    """Offer the event's free seats (its row locked by the caller) to the waitlist, in order,
    each to the first member whose party fits; the seats are held until the offer lapses."""
    offered = []
    expires = now + dt.timedelta(hours=event.offer_hold_hours)
    for invitation in _waitlist_order(event, now=now).select_for_update(of=("self",)):
        free = event.capacity - event.seats_taken
        if free <= 0:
            break
        if invitation.seats > free:
            continue
        _take(event, invitation.seats)
        invitation.status = Invitation.Status.OFFERED
        invitation.offer_expires_at = expires
        invitation.save(update_fields=["status", "offer_expires_at"])
        _tell(
            invitation,
            event=f"offered:{expires.isoformat()}",
            title=_("A seat at %(event)s is free for you"),
            body=_("Confirm it before %(until)s, or it goes to the next member on the waitlist."),
            until=expires,
        )
        offered.append(invitation)
    return offered


def offers_lapse_due(*, now: dt.datetime | None = None) -> int:
    """Offers not confirmed in time lapse (the invitation counts as declined) and their seats go
    to the next on the waitlist. Returns the number lapsed."""
    now = now or timezone.now()
    lapsed = 0
    due = (
        Invitation.objects.filter(status=Invitation.Status.OFFERED, offer_expires_at__lt=now)
        .values_list("event_id", flat=True)
        .distinct()
    )
    for event_id in list(due):
        with transaction.atomic():
            event = _event_locked(event_id)
            expired = list(
                Invitation.objects.select_for_update()
                .filter(event=event, status=Invitation.Status.OFFERED, offer_expires_at__lt=now)
                .order_by("id")
            )
            for invitation in expired:
                invitation.status = Invitation.Status.DECLINED
                invitation.offer_expires_at = None
                invitation.save(update_fields=["status", "offer_expires_at"])
                _free(event, invitation.seats)
                lapsed += 1
            if expired and now <= event.rsvp_deadline and event.status != Event.Status.CANCELLED:
                offers_make(event=event, now=now)
    return lapsed


def _tell(
    invitation: Invitation, *, event: str, title: Any, body: Any = "", until: Any = None
) -> None:
    occasion = Event.objects.only("title_en", "title_zh_hans").get(pk=invitation.event_id)
    member = invitation.member
    with translation.override(member.preferred_language):
        name = occasion.title
    member_message_send(
        member=member,
        kind=Message.Kind.INVITATION,
        title=title,
        body=body or title,
        dedupe_key=f"invitation:{invitation.pk}:{event}",
        data={
            "event": name,
            "invitation_id": str(invitation.pk),
            "until": until.isoformat() if until else None,
        },
    )


def seats_taken_recount(*, event: Event) -> int:
    """The seats the event's accepted and offered invitations take: what ``seats_taken`` must
    equal."""
    held = Invitation.objects.filter(event=event, status__in=HOLDING)
    return held.aggregate(seats=Coalesce(Sum("seats"), 0))["seats"]
