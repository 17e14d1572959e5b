"""Reading events and invitations."""

from typing import Any

from django.db.models import Avg, Count, DecimalField, Q, QuerySet
from django.db.models.functions import Cast

from events.errors import EventNotFound, InvitationNotFound
from events.models import Event, Feedback, Invitation
from members.models import Member


def event_list() -> QuerySet[Event]:
    return Event.objects.all()


def event_get(*, event_id: Any) -> Event:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        raise EventNotFound()
    return event


def member_invitations(*, member: Member) -> QuerySet[Invitation]:
    """The member's invitations, soonest event first (a draft's never exist)."""
    return (
        Invitation.objects.filter(member=member)
        .select_related("event")
        .order_by("event__starts_at", "id")
    )


def member_invitation_get(*, member: Member, invitation_id: Any) -> Invitation:
    """One of ``member``'s invitations; another member's is not found, like a missing one."""
    invitation = member_invitations(member=member).filter(pk=invitation_id).first()
    if invitation is None:
        raise InvitationNotFound()
    return invitation


def event_invitations(*, event: Event) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(event=event).select_related("member").order_by("invited_at", "id")
    )


def event_figures(*, event: Event) -> dict[str, Any]:
    """Per status how many invitations (``invited`` counts every one sent), and the attendees'
    average rating and NPS, in two queries."""
    statuses = Invitation.Status
    counts = Invitation.objects.filter(event=event).aggregate(
        invited=Count("id"),
        **{
            status.value: Count("id", filter=Q(status=status))
            for status in (
                statuses.ACCEPTED,
                statuses.WAITLISTED,
                statuses.OFFERED,
                statuses.DECLINED,
                statuses.ATTENDED,
                statuses.NO_SHOW,
            )
        },
    )
    # Averages as decimals (two places), like every other figure the API reports.
    average = DecimalField(max_digits=5, decimal_places=2)
    feedback = Feedback.objects.filter(invitation__event=event).aggregate(
        feedback=Count("id"),
        rating_avg=Cast(Avg("rating"), average),
        nps_avg=Cast(Avg("nps"), average),
    )
    return {**counts, **feedback}


def member_invitations_newest(*, member: Member) -> QuerySet[Invitation]:
    """The member's invitations, newest first (the console's customer view)."""
    return Invitation.objects.filter(member=member).select_related("event").order_by("-invited_at")
