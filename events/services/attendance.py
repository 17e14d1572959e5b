"""Check-in, no-shows and feedback.

:func:`invitation_check_in` finds an accepted invitation by its unguessable code (within the
event: a code of another event is not found), records the attendance once under the
invitation's row lock and credits the event's attendance points once through the ledger (the
entry's idempotency key is the invitation's): checking in twice changes nothing the second time.
After an event ends, :func:`no_shows_mark_due` marks the accepted members who did not come,
once per event. Feedback (rating 1-5, NPS 0-10) comes only from an attendee, once.
"""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from events.errors import CheckInClosed, FeedbackGiven, InvitationNotFound, NotAttended
from events.models import Event, Feedback, Invitation
from members.models import Member
from points.models import Entry
from points.services.ledger import points_credit


def invitation_check_in(*, event: Event, code: str, now: dt.datetime | None = None) -> Invitation:
    """Record that the holder of ``code`` came to ``event``, once, with its attendance points.
    Raises :class:`InvitationNotFound` for a code not of this event, :class:`CheckInClosed`
    for an invitation that is not accepted."""
    now = now or timezone.now()
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("member")
            .filter(event=event, check_in_code=code)
            .first()
        )
        if invitation is None:
            raise InvitationNotFound()
        if invitation.status == Invitation.Status.ATTENDED:
            return invitation
        if invitation.status not in (Invitation.Status.ACCEPTED, Invitation.Status.NO_SHOW):
            raise CheckInClosed()
        invitation.status = Invitation.Status.ATTENDED
        invitation.checked_in_at = now
        invitation.save(update_fields=["status", "checked_in_at"])
        member = invitation.member
        if event.attendance_points and member.status == Member.Status.ACTIVE:
            points_credit(
                member=member,
                points=event.attendance_points,
                kind=Entry.Kind.BONUS,
                idempotency_key=f"event-attendance:{invitation.pk}",
                reference=f"event:{event.pk}",
                description=_("Attended %(event)s") % {"event": event.title_en},
            )
    return invitation


def no_shows_mark_due(*, now: dt.datetime | None = None) -> int:
    """Mark the accepted invitations of every event that has ended as no-shows, once per event
    (the event's ``no_shows_marked_at``). Returns the number marked."""
    now = now or timezone.now()
    marked = 0
    due = Event.objects.filter(
        ends_at__lt=now, no_shows_marked_at__isnull=True, status=Event.Status.PUBLISHED
    ).values_list("pk", flat=True)
    for event_id in list(due):
        with transaction.atomic():
            event = (
                Event.objects.select_for_update(skip_locked=True)
                .filter(pk=event_id, no_shows_marked_at__isnull=True)
                .first()
            )
            if event is None:
                continue
            marked += Invitation.objects.filter(
                event=event, status=Invitation.Status.ACCEPTED
            ).update(status=Invitation.Status.NO_SHOW)
            event.no_shows_marked_at = now
            event.save(update_fields=["no_shows_marked_at"])
    return marked


def feedback_submit(
    *, invitation: Invitation, rating: int, nps: int, comment: Any = ""
) -> Feedback:
    """An attendee's feedback, once: :class:`NotAttended` for anyone else, :class:`FeedbackGiven`
    the second time."""
    if invitation.status != Invitation.Status.ATTENDED:
        raise NotAttended()
    feedback = Feedback(invitation=invitation, rating=rating, nps=nps, comment=str(comment))
    feedback.full_clean(exclude=["invitation"])
    try:
        with transaction.atomic():
            feedback.save(force_insert=True)
    except IntegrityError as error:
        if Feedback.objects.filter(invitation=invitation).exists():
            raise FeedbackGiven() from error
        raise
    return feedback
