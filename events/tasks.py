"""Celery tasks of the events app: thin wrappers that call services, on the beat schedule
(migration 0002): invitations every minute, reminders hourly, lapsed offers every five minutes,
no-shows hourly.

Each service does its work once however often, and on however many workers, it runs, so a task
that fails for a transient database reason (``OperationalError``, ``InterfaceError``) is retried
with backoff: what its transaction wrote rolled back.
"""

from celery import shared_task

from events.services.attendance import no_shows_mark_due
from events.services.invitations import invitation_reminders_send_due, invitations_send_due
from events.services.rsvp import offers_lapse_due
from loyalty.tasks import transient_retry

_TRANSIENT_RETRY = transient_retry(max_retries=5)


@shared_task(name="events.invitations_send", **_TRANSIENT_RETRY)
def invitations_send_task() -> dict[str, int]:
    """Every minute: send the invitations of the events whose ``invite_at`` has come."""
    return invitations_send_due()


@shared_task(name="events.reminders_send", **_TRANSIENT_RETRY)
def reminders_send_task() -> dict[str, int]:
    """Hourly: remind the accepted invitations of the events starting within 24 hours."""
    return invitation_reminders_send_due()


@shared_task(name="events.offers_lapse", **_TRANSIENT_RETRY)
def offers_lapse_task() -> int:
    """Every five minutes: offers not confirmed in time pass to the next on the waitlist."""
    return offers_lapse_due()


@shared_task(name="events.no_shows_mark", **_TRANSIENT_RETRY)
def no_shows_mark_task() -> int:
    """Hourly: accepted members of ended events who did not check in are no-shows."""
    return no_shows_mark_due()
