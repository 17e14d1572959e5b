"""The events jobs run by real Celery workers on Redis: the invitation task taken by two
workers at once invites each member once, and beat on a worker runs every events job from the
schedule the migration stores (invitations, reminders, lapsed offers, no-shows) with nothing
called by the test."""

import datetime as dt
import re
import time
from importlib import import_module

import pytest
from django.apps import apps
from django.db.models import Count, F
from django.utils import timezone

from events.models import Event, Invitation
from events.services.rsvp import invitation_rsvp
from events.tasks import invitations_send_task
from members.models import Member, Message
from tests.events.factories import EventFactory
from tests.events.test_rsvp import _event, _invite
from tests.factories import MemberFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 90
PREFORK = ("--pool=prefork", "--concurrency=2")


def _wait_for(condition, *, workers, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    logs = "\n".join(worker.log_tail() for worker in workers)
    pytest.fail(f"timed out after {timeout}s; worker logs:\n{logs}")


def _succeeded(worker, task: str) -> int:
    log = worker.log_path.read_text(errors="replace")
    return len(re.findall(rf"{re.escape(task)}\[[0-9a-f-]+\] succeeded", log))


def _once_each(event: Event) -> set[int]:
    """The members invited to ``event``, after checking that none is invited twice."""
    per_member = Invitation.objects.filter(event=event).values("member").annotate(n=Count("id"))
    assert {row["n"] for row in per_member} <= {1}
    return {row["member"] for row in per_member}


def test_two_workers_taking_the_invitation_task_at_once_invite_each_member_once(
    celery_worker_process,
):
    members = MemberFactory.create_batch(400)
    events = EventFactory.create_batch(3)
    workers = [celery_worker_process(*PREFORK), celery_worker_process(*PREFORK)]

    runs = 8
    for _ in range(runs):
        invitations_send_task.delay()
    name = "events.invitations_send"
    _wait_for(lambda: sum(_succeeded(w, name) for w in workers) == runs, workers=workers)

    expected = {member.pk for member in members}
    for event in events:
        assert _once_each(event) == expected
    assert Invitation.objects.count() == 3 * 400
    assert Message.objects.filter(kind=Message.Kind.INVITATION).count() == 3 * 400
    assert Event.objects.filter(invitations_sent_at__isnull=True).count() == 0


def _schedule_as_migrated(*, last_run: dt.datetime) -> None:
    """The transactional test flushed what migration 0002 stored; store it again, as last run at
    ``last_run`` so that every entry is due when beat starts."""
    from django_celery_beat.models import PeriodicTask

    import_module("events.migrations.0002_periodic_tasks").register(apps, None)
    PeriodicTask.objects.filter(task__startswith="events.").update(last_run_at=last_run)


def test_beat_on_a_worker_runs_every_events_job_from_the_migrated_schedule(
    celery_worker_process,
):
    now = timezone.now()
    _schedule_as_migrated(last_run=now - dt.timedelta(hours=2))

    # Invitations due: an event whose invite time has come, nobody invited yet.
    due = EventFactory()
    MemberFactory.create_batch(5)
    # A reminder due: an accepted seat at an event starting within a day.
    soon = _event(
        starts_at=now + dt.timedelta(hours=20),
        ends_at=now + dt.timedelta(hours=22),
        rsvp_deadline=now + dt.timedelta(hours=10),
    )
    (reminded,) = _invite(soon, 1)
    invitation_rsvp(invitation=reminded, response="accept")
    # A lapsed offer: the seat a decline freed was offered, and the hold has run out.
    full = _event(capacity=1, offer_hold_hours=1)
    holder, offered, next_one = _invite(full, 3)
    for invitation in (holder, offered, next_one):
        invitation_rsvp(invitation=invitation, response="accept")
    invitation_rsvp(invitation=holder, response="decline")
    Invitation.objects.filter(pk=offered.pk).update(offer_expires_at=now - dt.timedelta(minutes=1))
    # No-shows due: an accepted member of an event that has ended.
    ended = _event()
    (absent,) = _invite(ended, 1)
    invitation_rsvp(invitation=absent, response="accept")
    # Those three were invited when their invite time came (by ``_invite`` here).
    Event.objects.filter(pk__in=[soon.pk, full.pk, ended.pk]).update(invitations_sent_at=now)
    shift = dt.timedelta(days=30)
    Event.objects.filter(pk=ended.pk).update(
        invite_at=F("invite_at") - shift,
        rsvp_deadline=F("rsvp_deadline") - shift,
        starts_at=F("starts_at") - shift,
        ends_at=F("ends_at") - shift,
    )

    def status(invitation: Invitation) -> str:
        return Invitation.objects.get(pk=invitation.pk).status

    def done() -> bool:
        return (
            _once_each(due) == everyone
            and Invitation.objects.get(pk=reminded.pk).reminded_at is not None
            and (status(offered), status(next_one)) == ("declined", "offered")
            and status(absent) == "no_show"
        )

    everyone = set(Member.objects.values_list("pk", flat=True))  # the due event targets all
    worker = celery_worker_process("--beat")
    _wait_for(done, workers=[worker], timeout=60)
    for task in ("invitations_send", "reminders_send", "offers_lapse", "no_shows_mark"):
        assert _succeeded(worker, f"events.{task}") >= 1, worker.log_tail(80)
    # The reminder went to the one accepted seat of the event starting soon, once.
    assert Invitation.objects.filter(reminded_at__isnull=False).count() == 1
    reminders = Message.objects.filter(dedupe_key__startswith="invitation-reminder:")
    assert list(reminders.values_list("dedupe_key", flat=True)) == [
        f"invitation-reminder:{reminded.pk}"
    ]
    full.refresh_from_db()
    assert full.seats_taken == 1
