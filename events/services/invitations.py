"""Invitations and reminders: every targeted member invited once per event, reminded once.

:func:`invitations_send_due` (every minute on the beat schedule) invites the members an event
targets once its ``invite_at`` has come: one invitation each, with an unguessable check-in
code, and one member message each in the member's language. :func:`invitation_reminders_send_due`
(hourly) reminds every accepted invitation once, the day before the event.

Guarantees:

* Exactly once, however often and on however many workers the tasks run. A runner takes a due
  event with ``SELECT ... FOR UPDATE SKIP LOCKED``, so a second runner skips an event being
  sent rather than waiting for it, and marks it sent (``invitations_sent_at``,
  ``reminders_sent_at``) in the transaction that wrote its rows: either the whole event is sent
  and marked or nothing of it is. Beneath that, the database refuses a second invitation per
  event and member (``ON CONFLICT DO NOTHING``), and a message exists once per ``dedupe_key``
  (``invitation:<invitation id>``, ``invitation-reminder:<invitation id>``), and a message is
  written only for an invitation the same statement created.
* Set-based: the members are selected, invited and messaged in SQL, one statement per chunk of
  member ids (``chunk_size``), all in the event's one transaction; no member is loaded into
  Python, so time and memory do not grow with the number of members beyond the statements'.
  The texts are rendered once per language in Python and picked per member in SQL.
* Check-in codes come from ``gen_random_uuid()`` (PostgreSQL's cryptographically strong
  generator, core since PostgreSQL 13): 96 random bits as 16 URL-safe characters, the same form
  as :func:`events.models.check_in_code`.
"""

import datetime as dt
import json
import logging
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from events.models import Event
from loyalty.timeutils import business_tz
from members.models import Member, Tier
from members.segments import IN_SEGMENT_SQL
from members.selectors import tier_lowest
from members.services.segments import segment_refresh

logger = logging.getLogger(__name__)

# Member ids per statement: bounds each statement's working set (its materialized targets,
# the rows its reference check reads back), not the transaction, which is the event's.
INVITATION_CHUNK = 100_000
# Reminders go out for events starting within this long.
REMINDER_AHEAD = dt.timedelta(hours=24)

INVITATION_TITLE = _("Invitation: %(event)s")
INVITATION_BODY = _(
    "You are invited to %(event)s on %(starts_at)s. Please reply by %(rsvp_deadline)s."
)
INVITATION_BODY_VENUE = _(
    "You are invited to %(event)s on %(starts_at)s at %(venue)s. Please reply by %(rsvp_deadline)s."
)
REMINDER_TITLE = _("Reminder: %(event)s starts %(starts_at)s")
REMINDER_BODY = _(
    "We look forward to seeing you at %(event)s on %(starts_at)s. Seats reserved: %(seats)s. "
    "Please show your check-in code when you arrive."
)
REMINDER_BODY_VENUE = _(
    "We look forward to seeing you at %(event)s on %(starts_at)s at %(venue)s. Seats "
    "reserved: %(seats)s. Please show your check-in code when you arrive."
)

# The members an event targets among ids lo < id <= hi, invited and messaged in one statement.
# ``targets`` is materialized (it is read twice, and holds the random bytes each member's code
# is made of, drawn once per row). The message of an invitation is written only for a row the
# INSERT created (RETURNING), so a member already invited gets neither twice.
_INVITE_SQL = """
WITH targets AS MATERIALIZED (
    SELECT m.id AS member_id, m.preferred_language, uuid_send(gen_random_uuid()) AS r
    FROM members_member m
    {tier_join}
    WHERE m.id > %(lo)s AND m.id <= %(hi)s
      AND m.status = 'active' AND m.marketing_consent
      {tier_condition}
),
invited AS (
    INSERT INTO events_invitation (id, event_id, member_id, status, seats, check_in_code,
                                   invited_at)
    SELECT gen_random_uuid(), %(event)s, t.member_id, 'invited', 1,
           -- bytes 1-6 and 11-16 of a v4 UUID are all random (6, 7 and 9 hold its version
           -- and variant bits): 12 random bytes, 16 characters of URL-safe base64
           translate(encode(substring(t.r FROM 1 FOR 6) || substring(t.r FROM 11 FOR 6),
                            'base64'), '+/', '-_'),
           %(now)s
    FROM targets t
    ON CONFLICT (event_id, member_id) DO NOTHING
    RETURNING id, member_id
),
messaged AS (
    INSERT INTO members_message (id, member_id, kind, title, body, data, dedupe_key,
                                 created_at, delivery)
    SELECT gen_random_uuid(), i.member_id, 'invitation',
           CASE t.preferred_language WHEN 'en' THEN %(title_en)s ELSE %(title_zh_hans)s END,
           CASE t.preferred_language WHEN 'en' THEN %(body_en)s ELSE %(body_zh_hans)s END,
           %(data)s::jsonb || jsonb_build_object('invitation', i.id::text),
           'invitation:' || i.id::text, %(now)s, 'pending'
    FROM invited i
    JOIN targets t ON t.member_id = i.member_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM invited), (SELECT count(*) FROM messaged)
"""

# Members whose current tier is one of %(tiers)s; a member without a tier state holds the
# lowest active tier (%(lowest)s, NULL while none is active), as members.selectors says. The
# range repeated on the tier state lets its primary key bound that side of the join too.
_TIER_JOIN = """
    LEFT JOIN members_membertier mt
      ON mt.member_id = m.id AND mt.member_id > %(lo)s AND mt.member_id <= %(hi)s
"""
_TIER_CONDITION = "AND coalesce(mt.tier_id, %(lowest)s) = ANY(%(tiers)s)"


def _invite_sql(*, tiers: bool, segment: bool) -> str:
    """The invitation statement for an event targeting some tiers, a segment, both or all."""
    return _INVITE_SQL.format(
        tier_join=_TIER_JOIN if tiers else "",
        tier_condition=(_TIER_CONDITION if tiers else "") + (IN_SEGMENT_SQL if segment else ""),
    )


# An event's accepted invitations, each reminded once: stamped and messaged in one statement.
# A member whose membership is closed is not reminded.
REMIND_SQL = """
WITH due AS MATERIALIZED (
    SELECT i.id, i.member_id, i.seats, m.preferred_language
    FROM events_invitation i
    JOIN members_member m ON m.id = i.member_id
    WHERE i.event_id = %(event)s AND i.status = 'accepted' AND i.reminded_at IS NULL
      AND m.status <> 'closed'
),
stamped AS (
    UPDATE events_invitation i SET reminded_at = %(now)s
    FROM due d WHERE i.id = d.id
    RETURNING i.id
),
messaged AS (
    INSERT INTO members_message (id, member_id, kind, title, body, data, dedupe_key,
                                 created_at, delivery)
    SELECT gen_random_uuid(), d.member_id, 'invitation',
           CASE d.preferred_language WHEN 'en' THEN %(title_en)s ELSE %(title_zh_hans)s END,
           replace(CASE d.preferred_language WHEN 'en' THEN %(body_en)s
                   ELSE %(body_zh_hans)s END, %(seats_hole)s, d.seats::text),
           %(data)s::jsonb || jsonb_build_object('invitation', d.id::text, 'seats', d.seats),
           'invitation-reminder:' || d.id::text, %(now)s, 'pending'
    FROM due d
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM stamped), (SELECT count(*) FROM messaged)
"""

# Stands in for an invitation's seats in a reminder's text until SQL puts in each one's number
# (it fills the template's placeholder, so no translation can contain it by accident).
_SEATS_HOLE = "@@seats@@"


def _moment(value: dt.datetime) -> str:
    """A time as members read it: the bank's calendar, to the minute."""
    return value.astimezone(business_tz()).strftime("%Y-%m-%d %H:%M")


def _texts(
    *, event: Event, title: Any, body: Any, body_venue: Any, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """``title_<language>`` and ``body_<language>`` for each language members read, rendered
    once (the event's own title in that language, English when it has no Chinese one)."""
    texts: dict[str, str] = {}
    for language in Member.Language.values:
        with translation.override(language):
            names = {
                "event": event.title,
                "starts_at": _moment(event.starts_at),
                "rsvp_deadline": _moment(event.rsvp_deadline),
                "venue": event.venue,
                **(extra or {}),
            }
            key = language.replace("-", "_")
            texts[f"title_{key}"] = (str(title) % names)[:200]
            texts[f"body_{key}"] = str(body_venue if event.venue else body) % names
    return texts


def _message_data(event: Event) -> str:
    return json.dumps({"event": str(event.pk), "starts_at": event.starts_at.isoformat()})


def _target_tiers(event: Event) -> tuple[list[int], int | None] | None:
    """The ids of the tiers ``event`` targets and the lowest active tier's id; ``None`` when it
    targets every tier. A code that names no tier (the admin refuses one) matches nobody."""
    if not event.target_tiers:
        return None
    tiers = list(Tier.objects.filter(code__in=event.target_tiers).values_list("pk", flat=True))
    lowest = tier_lowest()
    return tiers, lowest.pk if lowest else None


def _event_invite(*, event: Event, now: dt.datetime, chunk_size: int) -> tuple[int, int]:
    """Invite ``event``'s targets (inside the caller's transaction, which holds the event's
    row); ``(invitations, messages)`` written."""
    target = _target_tiers(event)
    params: dict[str, Any] = {
        "event": event.pk,
        "now": now,
        "data": _message_data(event),
        **_texts(
            event=event,
            title=INVITATION_TITLE,
            body=INVITATION_BODY,
            body_venue=INVITATION_BODY_VENUE,
        ),
    }
    if target is not None:
        params["tiers"], params["lowest"] = target
        if not params["tiers"]:
            return 0, 0
    segment = event.target_segment
    if segment is not None:
        segment_refresh(segment=segment)
        params["segment"] = segment.pk
    sql = _invite_sql(tiers=target is not None, segment=segment is not None)
    bounds = Member.objects.aggregate(first=Min("pk"), last=Max("pk"))
    if bounds["first"] is None:
        return 0, 0
    invitations = messages = 0
    with connection.cursor() as cursor:
        # The statement's targets and its reference check's rows stay in memory.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        for lo in range(bounds["first"] - 1, bounds["last"], chunk_size):
            cursor.execute(sql, {**params, "lo": lo, "hi": min(lo + chunk_size, bounds["last"])})
            invited, messaged = cursor.fetchone()
            invitations += invited
            messages += messaged
    return invitations, messages


def invitations_send_due(
    *, now: dt.datetime | None = None, chunk_size: int = INVITATION_CHUNK
) -> dict[str, int]:
    """Send the invitations of every published event whose ``invite_at`` has come (and whose
    RSVP deadline has not passed: an invitation nobody can answer is not sent), one event per
    transaction. Returns ``{"events", "invitations", "messages"}`` this call wrote.

    An event invites every member who is active, has given marketing consent and currently
    holds one of its ``target_tiers`` (all tiers when empty; a member without a tier state
    holds the lowest active tier) and, when it names a ``target_segment``, is in that segment:
    the segment is refreshed first, in the event's transaction, so its members are those its
    rule selects as the invitations go out. An event another runner is sending is
    skipped, not waited for; that runner marks it sent. Members who join or become eligible
    after an event was sent are not invited to it.
    """
    now = now or timezone.now()
    totals = {"events": 0, "invitations": 0, "messages": 0}
    while True:
        with transaction.atomic():
            event = (
                Event.objects.select_for_update(skip_locked=True)
                .filter(
                    status=Event.Status.PUBLISHED,
                    invite_at__lte=now,
                    invitations_sent_at__isnull=True,
                    rsvp_deadline__gt=now,
                )
                .order_by("invite_at", "pk")
                .first()
            )
            if event is None:
                break
            invitations, messages = _event_invite(event=event, now=now, chunk_size=chunk_size)
            event.invitations_sent_at = now
            event.save(update_fields=["invitations_sent_at", "updated_at"])
        logger.info("event %s: %s members invited", event.pk, invitations)
        totals["events"] += 1
        totals["invitations"] += invitations
        totals["messages"] += messages
    return totals


def invitation_reminders_send_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Remind every accepted invitation of each published event that starts within the next
    24 hours (and has sent its invitations), once per event, one event per transaction.
    Returns ``{"events", "reminders"}`` this call wrote.

    The event's row is held while its reminders are written, so an RSVP (which takes the same
    row) lands before or after them; an invitation accepted after its event's reminders went out
    gets none (its acceptance is its confirmation). Members whose membership is closed are not
    reminded. An event another runner is reminding is skipped, not waited for.
    """
    now = now or timezone.now()
    totals = {"events": 0, "reminders": 0}
    while True:
        with transaction.atomic():
            event = (
                Event.objects.select_for_update(skip_locked=True)
                .filter(
                    status=Event.Status.PUBLISHED,
                    starts_at__gt=now,
                    starts_at__lte=now + REMINDER_AHEAD,
                    invitations_sent_at__isnull=False,
                    reminders_sent_at__isnull=True,
                )
                .order_by("starts_at", "pk")
                .first()
            )
            if event is None:
                break
            params: dict[str, Any] = {
                "event": event.pk,
                "now": now,
                "data": _message_data(event),
                "seats_hole": _SEATS_HOLE,
                **_texts(
                    event=event,
                    title=REMINDER_TITLE,
                    body=REMINDER_BODY,
                    body_venue=REMINDER_BODY_VENUE,
                    extra={"seats": _SEATS_HOLE},
                ),
            }
            with connection.cursor() as cursor:
                cursor.execute(REMIND_SQL, params)
                _stamped, reminders = cursor.fetchone()
            event.reminders_sent_at = now
            event.save(update_fields=["reminders_sent_at", "updated_at"])
        totals["events"] += 1
        totals["reminders"] += reminders
    return totals
