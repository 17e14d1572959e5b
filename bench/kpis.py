"""KPIs at scale: ``python -m bench.kpis [--members N] [--entries N] [--keep]``.

Builds a scratch PostgreSQL database (``<DATABASE_URL's name>_bench_kpis``, dropped and
re-created) with ``--members`` members (default 1,000,000; the demo tier ladder, two in five
holding a tier state, one in a hundred closed) and ``--entries`` ledger entries (default
10,000,000) over 35 months, all with ``INSERT ... SELECT generate_series``: earnings and bonuses
with a lot each (older lots used up, recent ones half left), redemptions and expiries each
drawing from a lot of the member (a consumption row), a processed transaction for every fifth
entry, an asset snapshot per member for each of two month ends, and one event with invitations
and feedback. It then times, in the same process and on the same data:

1. the plain aggregate ``SELECT sum(points) FROM points_entry`` (best of three after a
   warm-up, and again after the KPI runs: the fastest counts),
2. the KPIs of October 2026 through the service (``kpis_compute``: overall, per tier, with the
   liability net of breakage), best of three, and
3. one ``GET /api/v1/kpis/?from=2026-10-01&to=2026-10-31`` through Django's test client as a
   marketing user (no snapshot stored: computed),

and prints the times, the ratio of the KPIs to the aggregate (target within 5x), the time of
each of the KPI statements alone (what a missed target is made of) next to the floor of any
per-tier figure (the same sum with each entry joined to its member's tier) and the peak memory.
The scratch database is dropped at the end unless ``--keep``.
"""

import argparse
import os
import sys
import time

from bench import django_on, peak_memory
from bench.tiers import DEFAULT_URL, _recreate, _scratch_url

# Member i: joined over six and a half years, one in a hundred closed (in 2026), tier state for
# i mod 10 < 4 (GOLD, PLATINUM, DIAMOND); the rest hold the base tier.
MEMBERS_SQL = """
INSERT INTO members_member (customer_no, name, gender, phone, email, occupation, income_band,
    city, branch_code, credit_grade, risk_level, marketing_consent, preferred_language,
    joined_at, status, status_changed_at, created_at, updated_at)
SELECT 'K' || lpad(i::text, 9, '0'), 'Member ' || i, 'unspecified', '', '', '', '',
       'Shanghai', 'SH' || lpad(mod(i, 50)::text, 3, '0'), '', '', mod(i, 3) = 0, 'zh-hans',
       DATE '2020-06-01' + mod(i::bigint * 7919, 2400)::int,
       CASE WHEN mod(i, 100) = 0 THEN 'closed' ELSE 'active' END,
       CASE WHEN mod(i, 100) = 0 THEN TIMESTAMPTZ '2026-01-01' + mod(i, 330) * INTERVAL '1 day'
       END,
       now(), now()
FROM generate_series(1, %(members)s) AS i
ORDER BY i
"""

STATES_SQL = """
INSERT INTO members_membertier (member_id, tier_id, since, failing_count, updated_at)
SELECT m.id, t.id, now(), 0, now()
FROM members_member m
JOIN members_tier t ON t.code = CASE mod(m.id, 10) WHEN 0 THEN 'DIAMOND' WHEN 1 THEN 'PLATINUM'
                                     ELSE 'GOLD' END
WHERE mod(m.id, 10) < 4
ORDER BY m.id
"""

# Entry j: member 1 + j mod members (so entry j - members is the same member's, earlier), kind
# by x = (j + 13 * (j / members)) mod 100 (earn 70, bonus 3, redeem 20, expire 7: a member's
# kinds vary from round to round), over Jan 2024 - Nov 2026.
ENTRIES_SQL = """
INSERT INTO points_entry (public_id, member_id, kind, points, balance_after, description,
    reference, idempotency_key, rules, occurred_at, created_at, earned_on)
SELECT gen_random_uuid(), %(first)s + mod(j, %(members)s), k.kind, k.points, 0, '', '',
       'bench:' || j, '{}',
       TIMESTAMPTZ '2024-01-01 02:00+08' + (j::float8 / %(entries)s) * INTERVAL '1064 days',
       now(), NULL
FROM generate_series(%(lo)s, %(hi)s) AS j
CROSS JOIN LATERAL (SELECT mod(j + 13 * (j / %(members)s), 100) AS x) r
CROSS JOIN LATERAL (SELECT CASE WHEN r.x < 70 THEN 'earn'
                                WHEN r.x < 73 THEN 'bonus'
                                WHEN r.x < 93 THEN 'redeem'
                                ELSE 'expire' END AS kind,
                           CASE WHEN r.x < 73 THEN 20 + mod(j, 181)
                                WHEN r.x < 93 THEN -(10 + mod(j, 41))
                                ELSE -(20 + mod(j, 41)) END AS points) k
ORDER BY j
"""

LOTS_SQL = """
INSERT INTO points_lot (member_id, entry_id, points, remaining, earned_on, expires_on)
SELECT e.member_id, e.id, e.points,
       CASE WHEN e.occurred_at < TIMESTAMPTZ '2025-09-01' THEN 0 ELSE e.points / 2 END,
       (e.occurred_at AT TIME ZONE 'Asia/Shanghai')::date,
       (e.occurred_at AT TIME ZONE 'Asia/Shanghai')::date + 730
FROM points_entry e
WHERE e.kind IN ('earn', 'bonus')
ORDER BY e.id
"""

# Each debit draws from the lot of the member's latest credit among the three entries of theirs
# before it (``members`` entries apart), where there is one (most have).
CONSUMPTIONS_SQL = """
INSERT INTO points_consumption (entry_id, lot_id, member_id, points)
SELECT d.id, l.id, d.member_id, -d.points
FROM points_entry d
CROSS JOIN LATERAL (
    SELECT l.id FROM points_lot l
    WHERE l.entry_id IN (d.id - %(members)s, d.id - 2 * %(members)s, d.id - 3 * %(members)s)
    ORDER BY l.entry_id DESC LIMIT 1
) l
WHERE d.kind IN ('redeem', 'expire')
ORDER BY d.id
"""

TRANSACTIONS_SQL = """
INSERT INTO points_transaction (source, external_id, member_id, type, amount, currency,
    occurred_at, channel, merchant_category, reverses, via, received_at, status, status_reason,
    points, processed_at)
SELECT 'core', 'B' || e.id, e.member_id, 'card_spend', 100 + mod(e.id, 900), 'CNY',
       e.occurred_at, 'pos', '5411', '', 'file', e.occurred_at, 'processed', '', e.points,
       e.occurred_at
FROM points_entry e
WHERE e.kind = 'earn' AND mod(e.id, 5) = 0
ORDER BY e.id
"""

SNAPSHOTS_SQL = """
INSERT INTO members_assetsnapshot (member_id, as_of, deposits, wealth, funds, insurance, loans,
    contribution, currency, created_at, updated_at)
SELECT m.id, d.as_of, 10000 + mod(m.id * 31, 500000), mod(m.id, 7) * 1000, 0, 0, 0,
       mod(m.id, 997), 'CNY', now(), now()
FROM members_member m
CROSS JOIN (VALUES (DATE '2026-09-30'), (DATE '2026-10-31')) AS d(as_of)
ORDER BY m.id, d.as_of
"""

EVENT_SQL = """
INSERT INTO events_event (id, title_en, title_zh_hans, description_en, description_zh_hans,
    kind, venue, starts_at, ends_at, capacity, seats_taken, max_seats, rsvp_deadline,
    invite_at, offer_hold_hours, target_tiers, attendance_points, status, created_at,
    updated_at)
VALUES (gen_random_uuid(), 'Bench salon', '', '', '', 'salon', '',
        TIMESTAMPTZ '2026-10-15 19:00+08', TIMESTAMPTZ '2026-10-15 21:00+08', 1000000, 0, 1,
        TIMESTAMPTZ '2026-10-14 19:00+08',
        TIMESTAMPTZ '2026-10-01 10:00+08', 24, '[]', 0, 'published', now(), now())
RETURNING id
"""

INVITATIONS_SQL = """
INSERT INTO events_invitation (id, event_id, member_id, status, seats, check_in_code,
    invited_at)
SELECT gen_random_uuid(), %(event)s, m.id,
       CASE mod(m.id, 4) WHEN 0 THEN 'attended' WHEN 1 THEN 'accepted' WHEN 2 THEN 'declined'
            ELSE 'invited' END,
       1, md5(m.id::text), TIMESTAMPTZ '2026-10-01 10:00+08'
FROM members_member m WHERE mod(m.id, 20) = 0
ORDER BY m.id
"""

FEEDBACK_SQL = """
INSERT INTO events_feedback (invitation_id, rating, nps, comment, created_at)
SELECT i.id, 1 + mod(i.member_id, 5), mod(i.member_id, 11), '', TIMESTAMPTZ '2026-10-16 10:00+08'
FROM events_invitation i WHERE i.status = 'attended'
"""

AGGREGATE_SQL = "SELECT sum(points) FROM points_entry"
# The floor of every per-tier ledger figure: the same sum with each entry given its member's tier
# (one hash join per entry), as the KPI statements must.
TIER_FLOOR_SQL = """
SELECT coalesce(mt.tier_id, %(lowest)s), sum(e.points)
FROM points_entry e LEFT JOIN members_membertier mt ON mt.member_id = e.member_id
GROUP BY 1
"""


def _timed(label: str, func):
    started = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - started
    print(f"  {label}: {elapsed:.2f} s", flush=True)
    return elapsed, result


def _load(args) -> None:
    from django.db import connection

    from members.demo_tiers import seed_tiers

    seed_tiers()
    print("load", flush=True)
    chunk = 2_000_000
    with connection.cursor() as cursor:
        _timed("members", lambda: cursor.execute(MEMBERS_SQL, {"members": args.members}))
        _timed("tier states", lambda: cursor.execute(STATES_SQL))
        cursor.execute("SELECT min(id) FROM members_member")
        first = cursor.fetchone()[0]

        def entries() -> None:
            for lo in range(1, args.entries + 1, chunk):
                params = {
                    "first": first,
                    "members": args.members,
                    "entries": args.entries,
                    "lo": lo,
                    "hi": min(lo + chunk - 1, args.entries),
                }
                cursor.execute(ENTRIES_SQL, params)

        _timed(f"{args.entries:,} entries", entries)
        _timed("lots", lambda: cursor.execute(LOTS_SQL))
        _timed("consumptions", lambda: cursor.execute(CONSUMPTIONS_SQL, {"members": args.members}))
        _timed("transactions", lambda: cursor.execute(TRANSACTIONS_SQL))
        _timed("snapshots", lambda: cursor.execute(SNAPSHOTS_SQL))
        cursor.execute(EVENT_SQL)
        event = cursor.fetchone()[0]
        cursor.execute(INVITATIONS_SQL, {"event": event})
        cursor.execute(FEEDBACK_SQL)
        _timed("vacuum analyze", lambda: cursor.execute("VACUUM ANALYZE"))


def _statement_times(day_from, day_to) -> list[tuple[str, float]]:
    """Each statement of one KPI call, alone (with the call's work_mem)."""
    from django.db import connection, transaction

    from insights.services import kpis, liability
    from members.selectors import tier_lowest

    start, end = kpis.period_bounds(day_from, day_to)
    lowest = tier_lowest()
    params = {
        "from": day_from,
        "to": day_to,
        "start": start,
        "end": end,
        "lowest": lowest.pk if lowest else None,
        "as_of": day_to,
    }
    statements = {
        "floor: sum by tier": TIER_FLOOR_SQL,
        "members": kpis.MEMBERS_SQL,
        "ledger": kpis.LEDGER_SQL,
        "active": kpis.ACTIVE_SQL,
        "assets": kpis.ASSETS_SQL,
        "invitations": kpis.INVITATIONS_SQL,
        "scores": kpis.SCORES_SQL,
        "recommendations": kpis.RECOMMENDATIONS_SQL,
        "lots": liability.LOTS_SQL,
        "lot debits": liability.DEBITS_SQL,
    }
    times = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [kpis.KPI_WORK_MEM])
        for name, sql in statements.items():
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            times.append((name, time.perf_counter() - started))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    scratch_url, maintenance_url, name = _scratch_url(
        os.environ.get("DATABASE_URL", DEFAULT_URL), suffix="_bench_kpis"
    )
    print(
        f"scratch database {name}: {args.members:,} members, {args.entries:,} entries", flush=True
    )
    _recreate(maintenance_url, name)
    django_on(scratch_url)
    import datetime as dt

    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        _load(args)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM points_entry")
            entries = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM points_lot")
            lots = cursor.fetchone()[0]
        print(f"measure ({entries:,} entries, {lots:,} lots)", flush=True)

        def aggregate():
            with connection.cursor() as cursor:
                cursor.execute(AGGREGATE_SQL)
                return cursor.fetchone()

        aggregate()  # warm-up
        aggregate_seconds = min(
            _timed("SELECT sum(points) FROM points_entry", aggregate)[0] for _ in range(3)
        )

        from insights.services.kpis import kpis_compute

        day_from, day_to = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
        kpis_compute(day_from=day_from, day_to=day_to)  # warm-up
        kpi_seconds, figures = min(
            (
                _timed(
                    "KPIs of October 2026 (service)",
                    lambda: kpis_compute(day_from=day_from, day_to=day_to),
                )
                for _ in range(3)
            ),
            key=lambda timed: timed[0],
        )

        from django.contrib.auth.models import Group, User
        from django.test import Client
        from rest_framework_simplejwt.tokens import RefreshToken

        from loyalty import roles

        user = User.objects.create_user("bench-marketing", password="x", is_staff=True)
        user.groups.add(Group.objects.get(name=roles.MARKETING))
        token = str(RefreshToken.for_user(user).access_token)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="localhost")
        request_seconds, response = _timed(
            "GET /api/v1/kpis/?from=2026-10-01&to=2026-10-31",
            lambda: client.get("/api/v1/kpis/", {"from": "2026-10-01", "to": "2026-10-31"}),
        )
        assert response.status_code == 200, response.content[:500]
        after = min(_timed("sum(points), after the KPI runs", aggregate)[0] for _ in range(3))
        aggregate_seconds = min(aggregate_seconds, after)
        statements = _statement_times(day_from, day_to)

        print("result")
        print(
            f"  October 2026: members {figures['members_total']:,}, active "
            f"{figures['members_active']:,}, issued {figures['points_issued']:,}, redeemed "
            f"{figures['points_redeemed']:,}, outstanding {figures['points_outstanding']:,}, "
            f"liability {figures['points_liability']} (net {figures['points_liability_net']}, "
            f"breakage {figures['breakage_rate']}), tiers {len(figures['by_tier'])}"
        )
        print(f"  sum(points) over {entries:,} entries  {aggregate_seconds:8.2f} s")
        print(
            f"  KPIs, service                       {kpi_seconds:8.2f} s  "
            f"{kpi_seconds / aggregate_seconds:6.2f} x (target <= 5)"
        )
        print(
            f"  KPIs, one request                   {request_seconds:8.2f} s  "
            f"{request_seconds / aggregate_seconds:6.2f} x"
        )
        print("  the KPI statements alone:")
        for label, seconds in statements:
            print(f"    {label:<20} {seconds:8.2f} s  {seconds / aggregate_seconds:6.2f} x")
        print(f"  {peak_memory()}")
    finally:
        connection.close()
        if not args.keep:
            _recreate(maintenance_url, name, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
