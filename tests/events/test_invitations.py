"""Invitations and reminders (events.services.invitations): who is invited, in which language,
and that each member is invited and reminded once however often, and however concurrently, the
jobs run. On PostgreSQL; the concurrent tests run the service in threads of their own (each its
own connection) and make the race happen by holding a lock from the test's connection."""

import datetime as dt
import re
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone, translation
from django_celery_beat.models import PeriodicTask

from events.models import Event, Invitation
from events.services.invitations import (
    INVITATION_BODY_VENUE,
    INVITATION_TITLE,
    REMINDER_BODY_VENUE,
    invitation_reminders_send_due,
    invitations_send_due,
)
from events.tasks import invitations_send_task, reminders_send_task
from members.models import Member, MemberTier, Message
from members.services.segments import segment_create
from tests.events.factories import EventFactory
from tests.factories import MemberFactory, database_state, lock_queue, table_write_locked
from tests.members.tier_helpers import ladder

CODE = re.compile(r"^[A-Za-z0-9_-]{16}$")


def _invited(event: Event) -> set[int]:
    return set(Invitation.objects.filter(event=event).values_list("member_id", flat=True))


def _holding(tier, **kwargs):
    member = MemberFactory(**kwargs)
    MemberTier.objects.create(member=member, tier=tier)
    return member


def _moment(value: dt.datetime) -> str:
    from loyalty.timeutils import business_tz

    return value.astimezone(business_tz()).strftime("%Y-%m-%d %H:%M")


# --- Targeting -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("chunk_size", [100_000, 1, 3])
def test_targets_tiers_consent_and_status(chunk_size):
    """Only active members with marketing consent holding a targeted tier are invited; a member
    without a tier state holds the lowest tier. The same whatever the chunk of ids (1: every
    statement covers one id; 3: chunks that split the members unevenly)."""
    tiers = ladder()
    base = MemberFactory()  # no tier state: STANDARD
    standard = _holding(tiers["STANDARD"])
    gold = _holding(tiers["GOLD"])
    platinum = _holding(tiers["PLATINUM"], preferred_language="en")
    diamond = _holding(tiers["DIAMOND"])
    _holding(tiers["GOLD"], marketing_consent=False)
    _holding(tiers["GOLD"], status=Member.Status.FROZEN)
    _holding(tiers["GOLD"], status=Member.Status.CLOSED)
    MemberFactory(marketing_consent=False)  # STANDARD, no consent
    MemberFactory(status=Member.Status.CLOSED)  # STANDARD, closed
    upper = EventFactory(target_tiers=["GOLD", "PLATINUM"])
    lower = EventFactory(target_tiers=["STANDARD"])
    everyone = EventFactory(target_tiers=[])
    # Tiers and a segment: members in both (the segment refreshed as the invitations go out).
    Member.objects.filter(pk=diamond.pk).update(city="Xiamen")
    xiamen = segment_create(actor=None, name_en="Xiamen", rule={"cities": ["Xiamen"]})
    elsewhere = _holding(tiers["DIAMOND"])  # in the tier, not in the segment
    segmented = EventFactory(target_tiers=["DIAMOND"], target_segment=xiamen)

    result = invitations_send_due(chunk_size=chunk_size)

    assert _invited(upper) == {gold.pk, platinum.pk}
    assert _invited(lower) == {base.pk, standard.pk}
    assert _invited(everyone) == {
        base.pk,
        standard.pk,
        gold.pk,
        platinum.pk,
        diamond.pk,
        elsewhere.pk,
    }
    assert _invited(segmented) == {diamond.pk}
    assert result["events"] == 4
    assert (
        result["invitations"]
        == result["messages"]
        == sum(len(_invited(e)) for e in (upper, lower, everyone, segmented))
    )
    for event in (upper, lower, everyone, segmented):
        event.refresh_from_db()
        assert event.invitations_sent_at is not None
    invitations = list(Invitation.objects.all())
    assert {i.status for i in invitations} == {Invitation.Status.INVITED}
    assert {i.seats for i in invitations} == {1}
    codes = [i.check_in_code for i in invitations]
    assert all(CODE.match(code) for code in codes), codes
    assert len(set(codes)) == len(codes)


@pytest.mark.django_db
def test_lowest_tier_is_the_lowest_active_one():
    """With the base tier retired, members without a tier state hold the next one up."""
    tiers = ladder()
    tiers["STANDARD"].active = False
    tiers["STANDARD"].save()
    base = MemberFactory()
    gold = _holding(tiers["GOLD"])
    standard_event = EventFactory(target_tiers=["STANDARD"])
    gold_event = EventFactory(target_tiers=["GOLD"])

    invitations_send_due()

    assert _invited(standard_event) == set()
    assert _invited(gold_event) == {base.pk, gold.pk}


@pytest.mark.django_db
def test_targeted_tiers_without_any_tier_configured_invite_nobody():
    """Without any tier, members without a state hold none: a tier-targeted event invites
    nobody (and is still marked sent), an untargeted one everyone."""
    member = MemberFactory()
    targeted = EventFactory(target_tiers=["GOLD"])
    everyone = EventFactory()

    assert invitations_send_due() == {"events": 2, "invitations": 1, "messages": 1}
    assert _invited(targeted) == set()
    assert _invited(everyone) == {member.pk}
    targeted.refresh_from_db()
    assert targeted.invitations_sent_at is not None


# --- Messages ------------------------------------------------------------------------------


def _expected(template, event: Event, language: str) -> str:
    with translation.override(language):
        return str(template) % {
            "event": event.title,
            "starts_at": _moment(event.starts_at),
            "rsvp_deadline": _moment(event.rsvp_deadline),
            "venue": event.venue,
        }


@pytest.mark.django_db
def test_one_message_per_invitation_in_the_members_language():
    zh = MemberFactory(preferred_language="zh-hans")
    en = MemberFactory(preferred_language="en")
    event = EventFactory(title_en="Retirement planning", title_zh_hans="退休规划讲座")
    english_only = EventFactory(title_en="Tax talk", title_zh_hans="")

    invitations_send_due()

    for member, language in ((zh, "zh-hans"), (en, "en")):
        invitation = Invitation.objects.get(event=event, member=member)
        message = Message.objects.get(member=member, dedupe_key=f"invitation:{invitation.pk}")
        assert message.kind == Message.Kind.INVITATION
        assert message.delivery == Message.Delivery.PENDING
        assert message.title == _expected(INVITATION_TITLE, event, language)
        assert message.body == _expected(INVITATION_BODY_VENUE, event, language)
        assert message.data == {
            "event": str(event.pk),
            "invitation": str(invitation.pk),
            "starts_at": event.starts_at.isoformat(),
        }
    assert "退休规划讲座" in Message.objects.get(member=zh, data__event=str(event.pk)).title
    assert "Retirement planning" in Message.objects.get(member=en, data__event=str(event.pk)).title
    # No Chinese title: the Chinese reader gets the English one, in the Chinese template.
    zh_tax = Message.objects.get(member=zh, data__event=str(english_only.pk))
    assert "Tax talk" in zh_tax.title
    assert zh_tax.title == _expected(INVITATION_TITLE, english_only, "zh-hans")
    assert Message.objects.count() == Invitation.objects.count() == 4


# --- Exactly once --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_task_run_twice_invites_each_member_once():
    members = MemberFactory.create_batch(5)
    event = EventFactory()

    first = invitations_send_task.apply().get()
    state = database_state()
    second = invitations_send_task.apply().get()

    assert first == {"events": 1, "invitations": 5, "messages": 5}
    assert second == {"events": 0, "invitations": 0, "messages": 0}
    assert database_state() == state  # the second run wrote nothing at all
    assert _invited(event) == {m.pk for m in members}

    # Even if the event were taken again (its mark lost), the database invites no one twice
    # and writes no second message.
    Event.objects.filter(pk=event.pk).update(invitations_sent_at=None)
    assert invitations_send_due() == {"events": 1, "invitations": 0, "messages": 0}
    assert Invitation.objects.count() == Message.objects.count() == 5


def _in_thread(target, results: dict, key: str) -> threading.Thread:
    def run() -> None:
        try:
            results[key] = target()
        except BaseException as exc:  # surfaced by the test's assertions
            results[key] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_second_runner_skips_the_event_the_first_is_sending():
    """The first runner holds the event (its INSERT waits on the test's lock of the invitation
    table, inside the event's transaction); a second runner meanwhile finds no event to send
    and returns at once; released, the first invites everyone, once."""
    members = MemberFactory.create_batch(5)
    event = EventFactory()
    results: dict = {}

    with table_write_locked(Invitation) as holder:
        first = _in_thread(invitations_send_due, results, "first")
        front, _behind = lock_queue(holder=holder, waiters=1)
        assert len(front) == 1  # the first runner waits, inside its transaction
        second = _in_thread(invitations_send_due, results, "second")
        second.join(timeout=20)
        assert not second.is_alive()  # skipped, did not wait
        assert results["second"] == {"events": 0, "invitations": 0, "messages": 0}
        assert first.is_alive()
    first.join(timeout=30)

    assert results["first"] == {"events": 1, "invitations": 5, "messages": 5}
    assert _invited(event) == {m.pk for m in members}
    assert Message.objects.filter(kind=Message.Kind.INVITATION).count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_runner_skips_an_event_whose_row_is_held():
    """While another connection holds the event's row, a runner does not wait for it: it
    returns at once having sent nothing; once the row is free the next run sends it."""
    MemberFactory.create_batch(3)
    event = EventFactory()
    results: dict = {}

    with transaction.atomic():
        Event.objects.select_for_update().get(pk=event.pk)
        started = time.monotonic()
        runner = _in_thread(invitations_send_due, results, "held")
        runner.join(timeout=20)
        assert not runner.is_alive()
        assert time.monotonic() - started < 10
    assert results["held"] == {"events": 0, "invitations": 0, "messages": 0}
    assert not Invitation.objects.exists()

    assert invitations_send_due() == {"events": 1, "invitations": 3, "messages": 3}


@pytest.mark.django_db(transaction=True)
def test_two_runners_at_the_same_moment_invite_each_member_once():
    members = MemberFactory.create_batch(20)
    events = EventFactory.create_batch(3)
    barrier = threading.Barrier(2)
    results: dict = {}

    def run():
        barrier.wait(timeout=10)
        return invitations_send_due(chunk_size=7)

    threads = [_in_thread(run, results, key) for key in ("a", "b")]
    for thread in threads:
        thread.join(timeout=60)

    totals = [results["a"], results["b"]]
    assert not any(isinstance(t, BaseException) for t in totals), totals
    assert sum(t["events"] for t in totals) == 3
    assert sum(t["invitations"] for t in totals) == 60
    for event in events:
        assert _invited(event) == {m.pk for m in members}
    assert Message.objects.count() == Invitation.objects.count() == 60


# --- Not due -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_events_not_due_are_not_sent():
    now = timezone.now()
    MemberFactory()
    later = EventFactory(at=now + dt.timedelta(hours=1))  # invite_at in 59 minutes
    draft = EventFactory(status=Event.Status.DRAFT)
    cancelled = EventFactory(status=Event.Status.CANCELLED)
    closed = EventFactory(  # answers closed already: nobody could reply
        invite_at=now - dt.timedelta(days=3),
        rsvp_deadline=now - dt.timedelta(minutes=1),
        starts_at=now + dt.timedelta(days=1),
    )

    assert invitations_send_due(now=now) == {"events": 0, "invitations": 0, "messages": 0}
    assert not Invitation.objects.exists()
    for event in (later, draft, cancelled, closed):
        event.refresh_from_db()
        assert event.invitations_sent_at is None

    # At its invite time the later event goes out; the others still do not.
    assert invitations_send_due(now=later.invite_at)["events"] == 1
    assert set(Invitation.objects.values_list("event_id", flat=True)) == {later.pk}


# --- Reminders -----------------------------------------------------------------------------


def _answered(event, answer, seats=1, **member):
    return Invitation.objects.create(
        event=event, member=MemberFactory(**member), status=answer, seats=seats
    )


@pytest.mark.django_db
def test_reminders_go_to_accepted_invitations_once_the_day_before():
    now = timezone.now()
    event = EventFactory(
        starts_at=now + dt.timedelta(hours=30),
        rsvp_deadline=now + dt.timedelta(hours=20),
        invite_at=now - dt.timedelta(days=5),
        invitations_sent_at=now - dt.timedelta(days=5),
        title_en="Art salon",
        title_zh_hans="艺术沙龙",
    )
    zh = _answered(event, Invitation.Status.ACCEPTED, seats=3, preferred_language="zh-hans")
    en = _answered(event, Invitation.Status.ACCEPTED, seats=1, preferred_language="en")
    others = [
        _answered(event, status)
        for status in (
            Invitation.Status.INVITED,
            Invitation.Status.DECLINED,
            Invitation.Status.WAITLISTED,
        )
    ]
    closed = _answered(event, Invitation.Status.ACCEPTED, status=Member.Status.CLOSED)

    # 30 hours before: not yet.
    assert invitation_reminders_send_due(now=now) == {"events": 0, "reminders": 0}

    at = now + dt.timedelta(hours=7)  # 23 hours before
    assert invitation_reminders_send_due(now=at) == {"events": 1, "reminders": 2}
    assert invitation_reminders_send_due(now=at + dt.timedelta(hours=1)) == {
        "events": 0,
        "reminders": 0,
    }
    assert reminders_send_task.apply().get() == {"events": 0, "reminders": 0}

    event.refresh_from_db()
    assert event.reminders_sent_at == at
    for invitation, language, seats in ((zh, "zh-hans", 3), (en, "en", 1)):
        invitation.refresh_from_db()
        assert invitation.reminded_at == at
        message = Message.objects.get(dedupe_key=f"invitation-reminder:{invitation.pk}")
        assert message.member_id == invitation.member_id
        assert message.kind == Message.Kind.INVITATION
        with translation.override(language):
            expected = str(REMINDER_BODY_VENUE) % {
                "event": event.title,
                "starts_at": _moment(event.starts_at),
                "venue": event.venue,
                "seats": seats,
            }
        assert message.body == expected
        assert message.data["seats"] == seats
    assert "艺术沙龙" in Message.objects.get(member_id=zh.member_id).title
    assert "Art salon" in Message.objects.get(member_id=en.member_id).title
    for invitation in [*others, closed]:
        invitation.refresh_from_db()
        assert invitation.reminded_at is None
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_no_reminders_for_events_not_sent_cancelled_or_started():
    now = timezone.now()
    window = {
        "starts_at": now + dt.timedelta(hours=5),
        "rsvp_deadline": now + dt.timedelta(hours=1),
        "invite_at": now - dt.timedelta(days=5),
    }
    unsent = EventFactory(**window)  # its invitations never went out
    cancelled = EventFactory(
        **window, status=Event.Status.CANCELLED, invitations_sent_at=now - dt.timedelta(days=5)
    )
    started = EventFactory(
        starts_at=now - dt.timedelta(minutes=5),
        rsvp_deadline=now - dt.timedelta(hours=5),
        invite_at=now - dt.timedelta(days=5),
        invitations_sent_at=now - dt.timedelta(days=5),
    )
    for event in (unsent, cancelled, started):
        _answered(event, Invitation.Status.ACCEPTED)

    assert invitation_reminders_send_due(now=now) == {"events": 0, "reminders": 0}
    assert not Message.objects.exists()


# --- Schedule ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_jobs_are_on_the_beat_schedule():
    invitations = PeriodicTask.objects.get(task="events.invitations_send")
    reminders = PeriodicTask.objects.get(task="events.reminders_send")
    assert invitations.enabled
    assert reminders.enabled
    assert (invitations.crontab.minute, invitations.crontab.hour) == ("*", "*")
    assert (reminders.crontab.minute, reminders.crontab.hour) == ("15", "*")
    offers = PeriodicTask.objects.get(task="events.offers_lapse")
    no_shows = PeriodicTask.objects.get(task="events.no_shows_mark")
    assert (offers.crontab.minute, no_shows.crontab.minute) == ("*/5", "40")
    assert offers.enabled
    assert no_shows.enabled


@pytest.mark.django_db
def test_a_segment_target_reads_the_rule_as_the_invitations_go_out():
    """The segment's stored membership is refreshed just before sending: a member who came
    into its rule after it was last refreshed is invited, one who left it is not."""
    stays = MemberFactory(city="Lhasa")
    leaves = MemberFactory(city="Lhasa")
    lhasa = segment_create(actor=None, name_en="Lhasa", rule={"cities": ["Lhasa"]})
    arrives = MemberFactory(city="Lhasa")
    Member.objects.filter(pk=leaves.pk).update(city="Kunming")
    MemberFactory(city="Kunming")
    event = EventFactory(target_segment=lhasa)

    assert invitations_send_due() == {"events": 1, "invitations": 2, "messages": 2}
    assert _invited(event) == {stays.pk, arrives.pk}
    lhasa.refresh_from_db()
    assert lhasa.member_count == 2
