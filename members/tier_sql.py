"""The tier decision as one SQL statement, shared by evaluation runs and the simulator.

Both ask the same question for a range of member ids: given the tiers (as a JSON list, so the
simulator can pass proposed thresholds), the snapshots up to ``as_of`` and each member's current
tier, grace count and override, what tier does the member end up in? Evaluation then writes the
answer (state, history, messages) in the same statement; the simulator only counts it. Sharing
the text is what makes the simulator's counts equal a real run's.

Only members who can change are decided one by one: those with a state row (placed before,
counting grace or overridden) and those who qualify above the lowest tier. Everyone else has no
state and stays in the lowest tier; they are only counted (``population``). On a first run
that is most members, and the per-member steps below run for the rest only. (When a tier above
the lowest has no thresholds, everyone qualifies for it and everyone is decided.)

Decision per member (``action``):

- ``override`` / ``hold``: an approved override has not expired: the member is (or stays) in it.
- ``override_expired``: the override in force ran out: straight to the qualified tier (also
  when this ``as_of`` was evaluated before: the expiry is new, the grace count is not touched).
- ``skip``: the member's state was already written by an evaluation of this or a later date,
  so re-running an ``as_of`` changes nothing.
- ``tier_retired``: the member's tier was deactivated: straight to the qualified tier.
- ``upgrade``: qualified above the current tier: at once.
- ``pass``: qualified for the current tier: the grace count resets.
- ``fail``: qualified below, grace periods not yet used up: keep the tier, count one more.
- ``downgrade``: the grace periods are used up: one step down or to the qualified tier, as the
  current tier's ``downgrade_mode`` says.
"""

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from loyalty.timeutils import window_start
from members.models import (
    AssetSnapshot,
    Member,
    MemberTier,
    Message,
    TierHistory,
)

MEMBER = Member._meta.db_table
SNAPSHOT = AssetSnapshot._meta.db_table
STATE = MemberTier._meta.db_table
HISTORY = TierHistory._meta.db_table
MESSAGE = Message._meta.db_table

# A PostgreSQL advisory lock (transaction scope): shared by evaluation chunks (they touch
# disjoint members), exclusive for an override being applied, so an override approved during a
# run is never overwritten by a chunk that read the member's state before it.
TIER_STATE_LOCK = 0x7469_6572_7301


# Each step ends with OFFSET 0, which keeps PostgreSQL from folding it into the next: folded,
# every reference to ``q_rank`` or ``action`` would repeat the whole CASE it stands for.
def decision_sql(*, tiers: list[dict[str, Any]], as_of: dt.date) -> tuple[str, dict[str, Any]]:
    """The decision CTEs (ending with ``decided``) for ``tiers`` (payload dicts, proposals
    applied) and their parameters; the caller adds ``lo``, ``hi`` and ``now``.

    The tier ladder is small and known before the statement runs, so the thresholds become a
    ``CASE`` over bound parameters (highest rank first) and each distinct window one filtered
    aggregate: one pass over the chunk's snapshots, no join against the tier list per member.
    """
    active = sorted((t for t in tiers if t["active"]), key=lambda t: t["rank"])
    lowest = active[0]
    by_rank = {t["rank"]: t for t in active}
    lookup_rows = [
        {
            **{key: t[key] for key in ("id", "code", "rank", "window_months", "grace_periods")},
            "downgrade_mode": t["downgrade_mode"],
            "active": t["active"],
            "lower_id": next((a["id"] for a in reversed(active) if a["rank"] < t["rank"]), None),
        }
        for t in tiers
    ]
    windows = sorted({t["window_months"] for t in active})
    params: dict[str, Any] = {
        "tiers": json.dumps(lookup_rows),
        "as_of": as_of,
        "lowest_id": lowest["id"],
        "lowest_rank": lowest["rank"],
        "window_start": window_start(as_of, windows[-1]),
    }
    figures = []
    for months in windows:
        params[f"w{months}_start"] = window_start(as_of, months)
        only = "" if len(windows) == 1 else f" FILTER (WHERE s.as_of >= %(w{months}_start)s)"
        figures.append(
            f"avg(s.aum){only} AS aum_w{months}, "
            f"sum(s.contribution){only} AS contribution_w{months}"
        )
    conditions = []
    # The highest tier without thresholds: everyone qualifies for it, snapshots or not.
    open_rank = lowest["rank"]
    for rank in sorted(by_rank, reverse=True):
        tier = by_rank[rank]
        months = tier["window_months"]
        tests = []
        if tier["min_avg_aum"] is not None:
            params[f"t{rank}_aum"] = Decimal(tier["min_avg_aum"])
            tests.append(f"a.aum_w{months} >= %(t{rank}_aum)s")
        if tier["min_contribution"] is not None:
            params[f"t{rank}_contribution"] = Decimal(tier["min_contribution"])
            tests.append(f"a.contribution_w{months} >= %(t{rank}_contribution)s")
        joiner = " AND " if tier["rule"] == "all" else " OR "
        condition = f"COALESCE({joiner.join(tests)}, false)" if tests else "true"
        conditions.append(f"WHEN {condition} THEN {int(rank)}")
        if not tests:
            open_rank = max(open_rank, rank)
    window_columns = ", ".join(f"a.aum_w{m}, a.contribution_w{m}" for m in windows)

    def lookup(expr: str, values: dict[int, Any]) -> str:
        """``CASE expr WHEN id THEN value ... END`` over the (few) tiers: integers, booleans
        and NULL only, so nothing but numbers ever reaches the SQL text."""

        def literal(value: Any) -> str:
            if value is None:
                return "NULL"
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(int(value))

        whens = " ".join(f"WHEN {int(key)} THEN {literal(value)}" for key, value in values.items())
        return f"CASE {expr} {whens} END"

    rank_of = {int(t["id"]): t["rank"] for t in tiers}
    lower_of = {int(row["id"]): row["lower_id"] for row in lookup_rows}
    to_qualified_of = {int(t["id"]): t["downgrade_mode"] == "to_qualified" for t in tiers}
    new_aum = " ".join(
        f"WHEN {int(t['id'])} THEN aum_w{t['window_months']}"
        for t in tiers
        if t["window_months"] in windows
    )
    new_contribution = " ".join(
        f"WHEN {int(t['id'])} THEN contribution_w{t['window_months']}"
        for t in tiers
        if t["window_months"] in windows
    )
    params["open_rank"] = open_rank
    if open_rank == lowest["rank"]:
        # Without state and not qualified above the lowest tier, a member stays where it is:
        # only the others are decided one by one.
        members_who_can_change = f"""
    FROM agg a
    FULL JOIN (
        SELECT * FROM {STATE} WHERE member_id > %(lo)s AND member_id <= %(hi)s
    ) st ON st.member_id = a.member_id
    JOIN {MEMBER} m ON m.id = COALESCE(a.member_id, st.member_id)
    LEFT JOIN members_tieroverride ov
           ON ov.id = st.override_id AND ov.status = 'approved' AND ov.expires_at > %(now)s
    WHERE (a.q_rank > %(lowest_rank)s OR st.member_id IS NOT NULL)
      AND m.id > %(lo)s AND m.id <= %(hi)s AND m.status <> 'closed'"""  # noqa: S608 - names only
    else:
        # A tier above the lowest has no thresholds: everyone qualifies for it, members
        # without snapshots too, so everyone is decided.
        members_who_can_change = f"""
    FROM {MEMBER} m
    LEFT JOIN {STATE} st
           ON st.member_id = m.id AND st.member_id > %(lo)s AND st.member_id <= %(hi)s
    LEFT JOIN agg a ON a.member_id = m.id
    LEFT JOIN members_tieroverride ov
           ON ov.id = st.override_id AND ov.status = 'approved' AND ov.expires_at > %(now)s
    WHERE m.id > %(lo)s AND m.id <= %(hi)s AND m.status <> 'closed'"""
    ctes = f"""
tiers AS (
    SELECT * FROM jsonb_to_recordset(%(tiers)s::jsonb) AS t(
        id bigint, code text, rank integer, window_months integer, grace_periods integer,
        downgrade_mode text, active boolean, lower_id bigint
    )
),
agg AS (
    SELECT a.*, CASE {" ".join(conditions)} ELSE %(lowest_rank)s END AS q_rank
    FROM (
        SELECT s.member_id, {", ".join(figures)}
        FROM {SNAPSHOT} s
        WHERE s.member_id > %(lo)s AND s.member_id <= %(hi)s
          AND s.as_of >= %(window_start)s AND s.as_of <= %(as_of)s
        GROUP BY s.member_id
    ) a
),
population AS MATERIALIZED (
    -- Counted once, not once per use; both counts read an index only (the primary key,
    -- ``member_closed_idx``).
    SELECT (SELECT count(*) FROM {MEMBER} m WHERE m.id > %(lo)s AND m.id <= %(hi)s)
         - (SELECT count(*) FROM {MEMBER} m
            WHERE m.id > %(lo)s AND m.id <= %(hi)s AND m.status = 'closed') AS members
),
cur AS (
    SELECT m.id AS member_id, m.customer_no, m.preferred_language,
           COALESCE(st.tier_id, %(lowest_id)s) AS tier_id,
           COALESCE(st.failing_count, 0) AS failing_count,
           st.last_as_of, st.override_id,
           ov.tier_id AS override_tier_id,
           st.member_id IS NOT NULL AS has_state,
           COALESCE(a.q_rank, %(open_rank)s) AS q_rank,
           {window_columns}
{members_who_can_change}
    OFFSET 0
),
facts AS (
    SELECT cur.*,
           {lookup("tier_id", rank_of)} AS cur_rank,
           {lookup("tier_id", {int(t["id"]): t["active"] for t in tiers})} AS cur_active,
           {lookup("tier_id", {int(t["id"]): t["grace_periods"] for t in tiers})} AS grace,
           {lookup("tier_id", to_qualified_of)}
               AS to_qualified,
           {lookup("tier_id", lower_of)}
               AS lower_id,
           {lookup("q_rank", {t["rank"]: t["id"] for t in active})} AS q_tier_id
    FROM cur
    OFFSET 0
),
judged AS (
    SELECT facts.*,
        CASE
            WHEN override_tier_id IS NOT NULL THEN
                CASE WHEN override_tier_id <> tier_id THEN 'override' ELSE 'hold' END
            WHEN override_id IS NOT NULL THEN 'override_expired'
            WHEN last_as_of IS NOT NULL AND last_as_of >= %(as_of)s::date THEN 'skip'
            WHEN NOT cur_active THEN 'tier_retired'
            WHEN q_rank > cur_rank THEN 'upgrade'
            WHEN q_rank = cur_rank THEN 'pass'
            WHEN failing_count + 1 >= grace THEN 'downgrade'
            ELSE 'fail'
        END AS action
    FROM facts
    OFFSET 0
),
moves AS (
    SELECT judged.*,
        CASE action
            WHEN 'override' THEN override_tier_id
            WHEN 'override_expired' THEN q_tier_id
            WHEN 'tier_retired' THEN q_tier_id
            WHEN 'upgrade' THEN q_tier_id
            WHEN 'downgrade' THEN
                CASE WHEN to_qualified THEN q_tier_id ELSE COALESCE(lower_id, q_tier_id) END
            ELSE tier_id
        END AS new_tier_id,
        CASE action
            WHEN 'skip' THEN failing_count
            WHEN 'fail' THEN failing_count + 1
            ELSE 0
        END AS new_failing,
        CASE WHEN action = 'override_expired' THEN NULL ELSE override_id END
            AS new_override_id
    FROM judged
    OFFSET 0
),
decided AS (
    SELECT member_id, customer_no, preferred_language, has_state,
           tier_id, cur_rank, failing_count, override_id, q_tier_id,
           action, new_tier_id, new_failing, new_override_id,
           {lookup("new_tier_id", rank_of)} AS new_rank,
           CASE new_tier_id {new_aum or "WHEN NULL THEN NULL"} END AS new_avg_aum,
           CASE new_tier_id {new_contribution or "WHEN NULL THEN NULL"} END
               AS new_contribution
    FROM moves
)
"""  # noqa: S608 - only table names and integers are interpolated; values are parameters
    return ctes, params


def simulate_sql(*, tiers: list[dict[str, Any]], as_of: dt.date) -> tuple[str, dict[str, Any]]:
    ctes, params = decision_sql(tiers=tiers, as_of=as_of)
    return SIMULATE_SQL.replace("__DECISION__", ctes), params


def evaluate_sql(*, tiers: list[dict[str, Any]], as_of: dt.date) -> tuple[str, dict[str, Any]]:
    ctes, params = decision_sql(tiers=tiers, as_of=as_of)
    return EVALUATE_SQL.replace("__DECISION__", ctes), params


SIMULATE_SQL = """
WITH __DECISION__,
rest AS (
    -- Members left out of ``decided``: no state, qualified for the lowest tier only.
    SELECT (SELECT members FROM population) - (SELECT count(*) FROM decided) AS members
),
after AS (
    SELECT new_tier_id, count(*) AS members,
           count(*) FILTER (WHERE new_rank > cur_rank) AS up,
           count(*) FILTER (WHERE new_rank < cur_rank) AS down,
           count(*) FILTER (WHERE new_rank = cur_rank) AS same
    FROM decided
    GROUP BY new_tier_id
    UNION ALL
    SELECT %(lowest_id)s, members, 0, 0, members FROM rest WHERE members > 0
),
qualified AS (
    SELECT q_tier_id, count(*) AS members FROM decided GROUP BY q_tier_id
    UNION ALL
    SELECT %(lowest_id)s, members FROM rest WHERE members > 0
)
SELECT 'after' AS kind, t.code, sum(a.members)::bigint, sum(a.up)::bigint,
       sum(a.down)::bigint, sum(a.same)::bigint
FROM after a JOIN tiers t ON t.id = a.new_tier_id
GROUP BY t.code
UNION ALL
SELECT 'qualified', t.code, sum(q.members)::bigint, 0, 0, 0
FROM qualified q JOIN tiers t ON t.id = q.q_tier_id
GROUP BY t.code
"""

EVALUATE_SQL = f"""
WITH __DECISION__,
changes AS (
    SELECT * FROM decided
    WHERE action <> 'skip' AND (
        new_tier_id <> tier_id
        OR new_failing <> failing_count
        OR new_override_id IS DISTINCT FROM override_id
    )
),
-- Plain INSERT for members placed for the first time, UPDATE for the others: no member's state
-- row can appear meanwhile (chunks hold the state lock shared, overrides exclusive).
state_inserted AS (
    INSERT INTO {STATE} (member_id, tier_id, since, failing_count, qualified_tier_id,
                         last_as_of, override_id, updated_at)
    SELECT member_id, new_tier_id, %(now)s, new_failing, q_tier_id, %(as_of)s::date,
           new_override_id, %(now)s
    FROM changes
    WHERE NOT has_state
    RETURNING 1
),
state_updated AS (
    UPDATE {STATE} st SET
        tier_id = c.new_tier_id,
        since = CASE WHEN c.new_tier_id <> c.tier_id THEN %(now)s ELSE st.since END,
        failing_count = c.new_failing,
        qualified_tier_id = c.q_tier_id,
        last_as_of = %(as_of)s::date,
        override_id = c.new_override_id,
        updated_at = %(now)s
    FROM changes c
    WHERE c.has_state AND st.member_id = c.member_id
    RETURNING 1
),
moved AS (
    SELECT * FROM changes WHERE new_tier_id <> tier_id
),
history_written AS (
    INSERT INTO {HISTORY} (member_id, from_tier_id, to_tier_id, reason, run_id, override_id,
                           as_of, avg_aum, contribution, occurred_at)
    SELECT member_id, tier_id, new_tier_id,
           CASE WHEN action IN ('override', 'override_expired', 'tier_retired') THEN action
                WHEN new_rank > cur_rank THEN 'upgrade' ELSE 'downgrade' END,
           %(run_pk)s, CASE WHEN action LIKE 'override%%' THEN override_id END,
           %(as_of)s::date, round(new_avg_aum, 2), new_contribution, %(now)s
    FROM moved
    RETURNING 1
),
templates AS MATERIALIZED (
    -- One row per language and pair of tiers, its message data built once here.
    SELECT x.language, x.from_id, x.to_id, x.title, x.body,
           jsonb_build_object(
               'tier', x.tier, 'previous', x.previous, 'as_of', %(as_of)s::text,
               'run_id', %(run_id)s::text, 'direction', x.direction
           ) AS data
    FROM jsonb_to_recordset(%(templates)s::jsonb) AS x(
        language text, from_id bigint, to_id bigint, title text, body text, tier text,
        previous text, direction text
    )
),
messages_written AS (
    INSERT INTO {MESSAGE} (id, member_id, kind, title, body, data, dedupe_key, created_at,
                           delivery)
    SELECT gen_random_uuid(), mv.member_id, 'tier_change', x.title, x.body, x.data,
           'tier-change:' || %(run_id)s::text || ':' || mv.customer_no,
           %(now)s, 'pending'
    FROM moved mv
    JOIN templates x
      ON x.language = mv.preferred_language AND x.from_id = mv.tier_id
     AND x.to_id = mv.new_tier_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT p.members AS processed, d.upgraded, d.downgraded,
       p.members - d.upgraded - d.downgraded AS unchanged,
       (SELECT count(*) FROM state_inserted) + (SELECT count(*) FROM state_updated) AS states,
       (SELECT count(*) FROM history_written) AS history,
       (SELECT count(*) FROM messages_written) AS messages
FROM population p, (
    SELECT count(*) FILTER (WHERE new_rank > cur_rank) AS upgraded,
           count(*) FILTER (WHERE new_rank < cur_rank) AS downgraded
    FROM decided
) d
"""  # noqa: S608 - only table names (model constants) are interpolated
