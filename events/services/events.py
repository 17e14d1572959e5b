"""Events as marketing schedules them: each save validated and audited; publishing schedules
the invitations (sent at ``invite_at`` by ``events.services.invitations``); cancelling tells
everyone invited, once each."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from events.errors import RsvpClosed
from events.models import Event, Invitation
from loyalty.models import AuditAction
from loyalty.services import audit_log_record, audited_changes, audited_values
from loyalty.timeutils import business_date
from members.models import Message
from members.services.messages import member_message_send


@transaction.atomic
def event_create(*, actor: Any, fields: dict[str, Any]) -> Event:
    """A new draft event. Raises ``ValidationError`` for invalid values (nothing written)."""
    event = Event(**fields, created_by=actor if getattr(actor, "pk", None) else None)
    event.status = Event.Status.DRAFT
    event.full_clean()
    event.save(force_insert=True)
    audit_log_record(
        actor=actor, action=AuditAction.EVENT_CREATE, target=event, after=audited_values(event)
    )
    return event


@transaction.atomic
def event_update(*, event: Event, actor: Any, changes: dict[str, Any]) -> Event:
    """Apply ``changes`` to the stored event under its row lock. Capacity cannot drop below the
    seats already taken (the database refuses it too)."""
    stored = Event.objects.select_for_update().get(pk=event.pk)
    if stored.status == Event.Status.CANCELLED:
        raise RsvpClosed()
    values = audited_values(stored)
    for name, value in changes.items():
        setattr(stored, name, value)
    stored.full_clean()
    if stored.capacity < stored.seats_taken:
        raise ValidationError(
            {"capacity": _("%(seats)s seats are taken already.") % {"seats": stored.seats_taken}}
        )
    before, after = audited_changes(values, audited_values(stored))
    if after:
        stored.save(update_fields=[*after, "updated_at"])
        audit_log_record(
            actor=actor, action=AuditAction.EVENT_UPDATE, target=stored, before=before, after=after
        )
    return stored


@transaction.atomic
def event_publish(*, event: Event, actor: Any) -> Event:
    """Schedule the invitations: sent at ``invite_at`` (at once if it has passed) by the
    periodic task. Publishing a published event changes nothing."""
    stored = Event.objects.select_for_update().get(pk=event.pk)
    if stored.status == Event.Status.PUBLISHED:
        return stored
    if stored.status == Event.Status.CANCELLED:
        raise RsvpClosed()
    stored.status = Event.Status.PUBLISHED
    stored.save(update_fields=["status", "updated_at"])
    audit_log_record(
        actor=actor,
        action=AuditAction.EVENT_PUBLISH,
        target=stored,
        before={"status": Event.Status.DRAFT},
        after={"status": Event.Status.PUBLISHED, "invite_at": stored.invite_at},
    )
    return stored


def event_cancel(*, event: Event, actor: Any, reason: str = "") -> Event:
    """Cancel the event and tell every invited member (once each, whatever their answer);
    answers are closed from then on. Cancelling a cancelled event changes nothing."""
    with transaction.atomic():
        stored = Event.objects.select_for_update().get(pk=event.pk)
        if stored.status == Event.Status.CANCELLED:
            return stored
        before = stored.status
        stored.status = Event.Status.CANCELLED
        stored.save(update_fields=["status", "updated_at"])
        audit_log_record(
            actor=actor,
            action=AuditAction.EVENT_CANCEL,
            target=stored,
            before={"status": before},
            after={"status": Event.Status.CANCELLED},
            reason=reason,
        )
        invited = Invitation.objects.filter(event=stored).select_related("member")
        for invitation in invited.iterator(chunk_size=1000):
            with translation.override(invitation.member.preferred_language):
                title = stored.title
            member_message_send(
                member=invitation.member,
                kind=Message.Kind.INVITATION,
                title=_("%(event)s is cancelled"),
                body=_("We are sorry: %(event)s on %(date)s will not take place."),
                dedupe_key=f"invitation:{invitation.pk}:cancelled",
                data={
                    "event": title,
                    "date": business_date(stored.starts_at).isoformat(),
                },
            )
    return stored
