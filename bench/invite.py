"""Invitations at scale: ``python -m bench.invite [--members N] [--keep]``.

Builds a scratch PostgreSQL database (``<DATABASE_URL's name>_bench_invite``, dropped and
re-created) with ``BENCH_INVITE_MEMBERS`` members (default 1,000,000; ``--members`` wins), two in
five holding GOLD or PLATINUM and half of those with marketing consent, so that a fifth
(200,000 of a million) are the targets of an event for GOLD and PLATINUM. It then times, in the
same process and on the same data:

1. ``invitations_send_due`` sending that event as the beat task does: one invitation (with its
   check-in code) and one message in the member's language per target, and the event marked
   sent; then a second such event, on a database that already holds the first one's rows;
2. the floor: the same targeting ``INSERT ... SELECT`` of the same rows (ids and codes drawn
   the same way) into a copy of the invitation table (``LIKE events_invitation INCLUDING
   ALL``: the same columns and indexes, no foreign keys, no messages), best of three; and, for
   reference, that plus a plain copy of the first event's messages into a copy of the message
   table (the writes alone of both tables),

and prints each time, the ratio of the service to the floor (target: within 3x) and the peak
memory. The scratch database is dropped at the end unless ``--keep``.
"""

import argparse
import os
import sys
import time
from typing import Any

from bench import django_on, peak_memory
from bench.tiers import DEFAULT_URL, _recreate, _scratch_url

# Member i: tier by i mod 10 (0-1 GOLD, 2-3 PLATINUM, 4-5 DIAMOND, 6-9 no state: the base
# tier), consent in every other block of ten, a quarter reading English.
MEMBERS_SQL = """
INSERT INTO members_member (customer_no, name, gender, phone, email, occupation, income_band,
    city, branch_code, credit_grade, risk_level, marketing_consent, preferred_language,
    joined_at, status, created_at, updated_at)
SELECT 'E' || lpad(i::text, 9, '0'), 'Member ' || i, 'unspecified', '', '', '', '',
       'Shanghai', 'SH' || lpad(mod(i, 50)::text, 3, '0'), '', '', mod(i / 10, 2) = 0,
       CASE WHEN mod(i, 4) = 0 THEN 'en' ELSE 'zh-hans' END,
       DATE '2020-01-01' + mod(i, 2000), 'active', now(), now()
FROM generate_series(1, %(members)s) AS i
ORDER BY i
"""

STATES_SQL = """
INSERT INTO members_membertier (member_id, tier_id, since, failing_count, updated_at)
SELECT m.id, t.id, now(), 0, now()
FROM members_member m
JOIN members_tier t ON t.code = CASE
    WHEN mod(substr(m.customer_no, 2)::int, 10) < 2 THEN 'GOLD'
    WHEN mod(substr(m.customer_no, 2)::int, 10) < 4 THEN 'PLATINUM'
    ELSE 'DIAMOND' END
WHERE mod(substr(m.customer_no, 2)::int, 10) < 6
ORDER BY m.id
"""

FLOOR_TABLE_SQL = "CREATE TABLE bench_floor_invitation (LIKE events_invitation INCLUDING ALL)"
FLOOR_MESSAGE_TABLE_SQL = "CREATE TABLE bench_floor_message (LIKE members_message INCLUDING ALL)"

# The service's targeting and generated columns, into the copy: no foreign keys, no conflict
# arbiter, no messages, one statement.
FLOOR_SQL = """
INSERT INTO bench_floor_invitation (id, event_id, member_id, status, seats, check_in_code,
                                    invited_at)
SELECT gen_random_uuid(), %(event)s, t.member_id, 'invited', 1,
       translate(encode(substring(t.r FROM 1 FOR 6) || substring(t.r FROM 11 FOR 6),
                        'base64'), '+/', '-_'),
       now()
FROM (
    SELECT m.id AS member_id, uuid_send(gen_random_uuid()) AS r
    FROM members_member m
    LEFT JOIN members_membertier mt ON mt.member_id = m.id
    WHERE m.status = 'active' AND m.marketing_consent
      AND coalesce(mt.tier_id, %(lowest)s) = ANY(%(tiers)s)
) t
"""

FLOOR_MESSAGES_SQL = """
INSERT INTO bench_floor_message SELECT * FROM members_message WHERE data ->> 'event' = %(event)s
"""


def _timed(label: str, func):
    started = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - started
    print(f"  {label}: {elapsed:.2f} s", flush=True)
    return elapsed, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--members", type=int, default=int(os.environ.get("BENCH_INVITE_MEMBERS", "1000000"))
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    scratch_url, maintenance_url, name = _scratch_url(
        os.environ.get("DATABASE_URL", DEFAULT_URL), suffix="_bench_invite"
    )
    print(f"scratch database {name}: {args.members:,} members", flush=True)
    _recreate(maintenance_url, name)
    django_on(scratch_url)
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    try:
        call_command("migrate", verbosity=0)
        import datetime as dt

        from events.models import Event, EventKind, Invitation
        from events.services.invitations import invitations_send_due
        from members.demo_tiers import seed_tiers
        from members.models import Message, Tier
        from members.selectors import tier_lowest

        seed_tiers()
        print("load", flush=True)
        with connection.cursor() as cursor:
            _timed("members", lambda: cursor.execute(MEMBERS_SQL, {"members": args.members}))
            _timed("tier states", lambda: cursor.execute(STATES_SQL))
            _timed("vacuum analyze", lambda: cursor.execute("VACUUM ANALYZE"))

        targets = ["GOLD", "PLATINUM"]
        tier_ids = list(Tier.objects.filter(code__in=targets).values_list("pk", flat=True))
        lowest = tier_lowest()

        def event(n: int) -> Event:
            now = timezone.now()
            return Event.objects.create(
                title_en=f"Wealth salon {n}",
                title_zh_hans=f"财富沙龙 {n}",
                kind=EventKind.SALON,
                venue="Bund Centre, Shanghai",
                capacity=200,
                status=Event.Status.PUBLISHED,
                invite_at=now - dt.timedelta(minutes=1),
                rsvp_deadline=now + dt.timedelta(days=6),
                starts_at=now + dt.timedelta(days=7),
                ends_at=now + dt.timedelta(days=7, hours=2),
                target_tiers=targets,
            )

        print("measure", flush=True)
        first = event(1)
        send_seconds, sent = _timed("invitations_send_due, first event", invitations_send_due)
        second = event(2)
        again_seconds, sent_again = _timed(
            "invitations_send_due, second event (the first one's rows in place)",
            invitations_send_due,
        )
        for result in (sent, sent_again):
            assert result["events"] == 1, result
            assert result["invitations"] == result["messages"], result
        targeted = sent["invitations"]
        assert sent_again["invitations"] == targeted
        for each in (first, second):
            assert Invitation.objects.filter(event=each).count() == targeted
        assert Message.objects.filter(kind=Message.Kind.INVITATION).count() == 2 * targeted
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(DISTINCT check_in_code) FROM events_invitation")
            assert cursor.fetchone()[0] == 2 * targeted
            cursor.execute("VACUUM ANALYZE")
            cursor.execute(FLOOR_TABLE_SQL)
            cursor.execute(FLOOR_MESSAGE_TABLE_SQL)

        params: dict[str, Any] = {
            "event": first.pk,
            "tiers": tier_ids,
            "lowest": lowest.pk if lowest else None,
        }

        def floor() -> float:
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE bench_floor_invitation")
                started = time.perf_counter()
                cursor.execute(FLOOR_SQL, params)
                elapsed = time.perf_counter() - started
                assert cursor.rowcount == targeted, cursor.rowcount
            print(f"  floor, INSERT ... SELECT into a copy of the invitations: {elapsed:.2f} s")
            return elapsed

        def floor_with_messages() -> float:
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE bench_floor_invitation, bench_floor_message")
                started = time.perf_counter()
                cursor.execute(FLOOR_SQL, params)
                cursor.execute(FLOOR_MESSAGES_SQL, {"event": str(first.pk)})
                elapsed = time.perf_counter() - started
                assert cursor.rowcount == targeted, cursor.rowcount
            print(f"  floor plus a plain copy of its messages: {elapsed:.2f} s")
            return elapsed

        floor_seconds = min(floor() for _ in range(3))
        both_seconds = min(floor_with_messages() for _ in range(3))
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_floor_invitation, bench_floor_message")

        print("result")
        print(f"  {args.members:,} members, {targeted:,} targeted (GOLD or PLATINUM, consent)")
        print(f"  floor (invitations only, copy) {floor_seconds:8.2f} s")
        print(
            f"  invitations_send_due, 1st     {send_seconds:8.2f} s  "
            f"{send_seconds / floor_seconds:6.2f} x (target <= 3)"
        )
        print(
            f"  invitations_send_due, 2nd     {again_seconds:8.2f} s  "
            f"{again_seconds / floor_seconds:6.2f} x"
        )
        print(
            f"  floor + messages copy         {both_seconds:8.2f} s  "
            f"(service 1st / this: {send_seconds / both_seconds:.2f} x)"
        )
        print(f"  {peak_memory()}")
    finally:
        connection.close()
        if not args.keep:
            _recreate(maintenance_url, name, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
