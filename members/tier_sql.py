"""The tier decision as one SQL statement, shared by evaluation runs and the simulator.

Both ask the same question for a range of member ids: given the tiers (as a JSON list, so the
simulator can pass proposed thresholds), the snapshots up to ``as_of`` and each member's current
tier, grace count and override, what tier does the member end up in? Evaluation then writes the
answer (state, history, messages) in the same statement; the simulator only counts it. Sharing
the text is what makes the simulator's counts equal a real run's.

Decision per member (``action``):

- ``skip``: the member's state was already written by an evaluation of this or a later date,
  so re-running an ``as_of`` changes nothing.
- ``override`` / ``hold``: an approved override has not expired: the member is (or stays) in it.
- ``override_expired``: the override in force ran out: straight to the qualified tier.
- ``tier_retired``: the member's tier was deactivated: straight to the qualified tier.
- ``upgrade``: qualified above the current tier: at once.
- ``pass``: qualified for the current tier: the grace count resets.
- ``fail``: qualified below, grace periods not yet used up: keep the tier, count one more.
- ``downgrade``: the grace periods are used up: one step down or to the qualified tier, as the
  current tier's ``downgrade_mode`` says.
"""

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

# Keys of PostgreSQL advisory locks.
# Held (transaction scope) by each evaluation chunk and by an override being applied, so an
# override approved during a run is never overwritten by a chunk that read the state before it.
TIER_STATE_LOCK = 0x7469_6572_7301
# Held (session scope) by the worker processing a run, so a re-delivered task cannot process
# the same run twice at once.
TIER_RUN_LOCK = 0x7469_6572_7302

DECISION_CTES = f"""
tiers AS (
    SELECT * FROM jsonb_to_recordset(%(tiers)s::jsonb) AS t(
        id bigint, code text, rank integer, window_months integer, min_avg_aum numeric,
        min_contribution numeric, rule text, grace_periods integer, downgrade_mode text,
        active boolean
    )
),
active_tiers AS (SELECT * FROM tiers WHERE active),
lowest AS (SELECT id, rank FROM active_tiers ORDER BY rank LIMIT 1),
base AS (
    SELECT COALESCE(
        (SELECT max(rank) FROM active_tiers
          WHERE min_avg_aum IS NULL AND min_contribution IS NULL),
        (SELECT rank FROM lowest)
    ) AS rank
),
step_down AS (
    SELECT t.id, (
        SELECT a.id FROM active_tiers a WHERE a.rank < t.rank ORDER BY a.rank DESC LIMIT 1
    ) AS lower_id
    FROM tiers t
),
windows AS (SELECT DISTINCT window_months FROM active_tiers),
agg AS (
    SELECT s.member_id, w.window_months,
           avg(s.aum) AS avg_aum, sum(s.contribution) AS contribution
    FROM {SNAPSHOT} s
    JOIN windows w
      ON s.as_of >= (date_trunc('month', %(as_of)s::date)
                     - make_interval(months => w.window_months - 1))::date
    WHERE s.as_of <= %(as_of)s::date
      AND s.member_id > %(lo)s AND s.member_id <= %(hi)s
    GROUP BY s.member_id, w.window_months
),
met AS (
    SELECT a.member_id, max(t.rank) AS rank
    FROM agg a
    JOIN active_tiers t ON t.window_months = a.window_months
    WHERE CASE
        WHEN t.rule = 'all' THEN
            (t.min_avg_aum IS NULL OR a.avg_aum >= t.min_avg_aum)
            AND (t.min_contribution IS NULL OR a.contribution >= t.min_contribution)
        ELSE
            (t.min_avg_aum IS NULL AND t.min_contribution IS NULL)
            OR a.avg_aum >= t.min_avg_aum
            OR a.contribution >= t.min_contribution
        END
    GROUP BY a.member_id
),
cur AS (
    SELECT m.id AS member_id, m.customer_no, m.preferred_language,
           st.member_id IS NOT NULL AS has_state,
           COALESCE(st.tier_id, (SELECT id FROM lowest)) AS tier_id,
           COALESCE(st.failing_count, 0) AS failing_count,
           st.last_as_of, st.override_id, st.since,
           ov.tier_id AS override_tier_id,
           GREATEST(COALESCE(met.rank, (SELECT rank FROM base)), (SELECT rank FROM base))
               AS q_rank
    FROM {MEMBER} m
    LEFT JOIN {STATE} st ON st.member_id = m.id
    LEFT JOIN members_tieroverride ov
           ON ov.id = st.override_id AND ov.status = 'approved' AND ov.expires_at > %(now)s
    LEFT JOIN met ON met.member_id = m.id
    WHERE m.id > %(lo)s AND m.id <= %(hi)s AND m.status <> 'closed'
),
judged AS (
    SELECT cur.*, ct.rank AS cur_rank, q.id AS q_tier_id,
        CASE
            WHEN cur.last_as_of IS NOT NULL AND cur.last_as_of >= %(as_of)s::date THEN 'skip'
            WHEN cur.override_tier_id IS NOT NULL THEN
                CASE WHEN cur.override_tier_id <> cur.tier_id THEN 'override' ELSE 'hold' END
            WHEN cur.override_id IS NOT NULL THEN 'override_expired'
            WHEN NOT ct.active THEN 'tier_retired'
            WHEN cur.q_rank > ct.rank THEN 'upgrade'
            WHEN cur.q_rank = ct.rank THEN 'pass'
            WHEN cur.failing_count + 1 >= ct.grace_periods THEN 'downgrade'
            ELSE 'fail'
        END AS action,
        ct.downgrade_mode, sd.lower_id
    FROM cur
    JOIN tiers ct ON ct.id = cur.tier_id
    JOIN active_tiers q ON q.rank = cur.q_rank
    JOIN step_down sd ON sd.id = cur.tier_id
),
decided AS (
    SELECT j.*, nt.rank AS new_rank, nt.code AS new_code, nt.window_months AS new_window
    FROM (
        SELECT judged.*,
            CASE action
                WHEN 'override' THEN override_tier_id
                WHEN 'override_expired' THEN q_tier_id
                WHEN 'tier_retired' THEN q_tier_id
                WHEN 'upgrade' THEN q_tier_id
                WHEN 'downgrade' THEN
                    CASE WHEN downgrade_mode = 'to_qualified' THEN q_tier_id
                         ELSE COALESCE(lower_id, q_tier_id) END
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
    ) j
    JOIN tiers nt ON nt.id = j.new_tier_id
)
"""  # noqa: S608 - only table names (model constants) are interpolated

SIMULATE_SQL = f"""
WITH {DECISION_CTES}
SELECT 'after' AS kind, new_code AS tier, count(*) AS members,
       count(*) FILTER (WHERE new_rank > cur_rank) AS up,
       count(*) FILTER (WHERE new_rank < cur_rank) AS down,
       count(*) FILTER (WHERE new_rank = cur_rank) AS same
FROM decided
GROUP BY new_code
UNION ALL
SELECT 'qualified', q.code, count(*), 0, 0, 0
FROM decided d JOIN tiers q ON q.id = d.q_tier_id
GROUP BY q.code
"""  # noqa: S608 - only table names (model constants) are interpolated

EVALUATE_SQL = f"""
WITH {DECISION_CTES},
changes AS (
    SELECT * FROM decided
    WHERE action <> 'skip' AND (
        new_tier_id <> tier_id
        OR new_failing <> failing_count
        OR new_override_id IS DISTINCT FROM override_id
    )
),
state_written AS (
    INSERT INTO {STATE} (member_id, tier_id, since, failing_count, qualified_tier_id,
                         last_as_of, override_id, updated_at)
    SELECT member_id, new_tier_id,
           CASE WHEN new_tier_id <> tier_id THEN %(now)s ELSE COALESCE(since, %(now)s) END,
           new_failing, q_tier_id, %(as_of)s::date, new_override_id, %(now)s
    FROM changes
    ON CONFLICT (member_id) DO UPDATE SET
        tier_id = EXCLUDED.tier_id,
        since = EXCLUDED.since,
        failing_count = EXCLUDED.failing_count,
        qualified_tier_id = EXCLUDED.qualified_tier_id,
        last_as_of = EXCLUDED.last_as_of,
        override_id = EXCLUDED.override_id,
        updated_at = EXCLUDED.updated_at
    RETURNING 1
),
moved AS (
    SELECT c.*, a.avg_aum, a.contribution
    FROM changes c
    LEFT JOIN agg a ON a.member_id = c.member_id AND a.window_months = c.new_window
    WHERE c.new_tier_id <> c.tier_id
),
history_written AS (
    INSERT INTO {HISTORY} (member_id, from_tier_id, to_tier_id, reason, run_id, override_id,
                           as_of, avg_aum, contribution, occurred_at)
    SELECT member_id, tier_id, new_tier_id,
           CASE WHEN action IN ('override', 'override_expired', 'tier_retired') THEN action
                WHEN new_rank > cur_rank THEN 'upgrade' ELSE 'downgrade' END,
           %(run_pk)s, CASE WHEN action = 'override' THEN override_id END,
           %(as_of)s::date, round(avg_aum, 2), contribution, %(now)s
    FROM moved
    RETURNING 1
),
templates AS (
    SELECT * FROM jsonb_to_recordset(%(templates)s::jsonb) AS x(
        language text, from_id bigint, to_id bigint, title text, body text
    )
),
messages_written AS (
    INSERT INTO {MESSAGE} (id, member_id, kind, title, body, data, dedupe_key, created_at,
                           delivery)
    SELECT gen_random_uuid(), mv.member_id, 'tier_change', x.title, x.body,
           jsonb_build_object(
               'tier', mv.new_code, 'previous', ft.code, 'as_of', %(as_of)s::text,
               'run_id', %(run_id)s::text, 'direction',
               CASE WHEN mv.new_rank > mv.cur_rank THEN 'up' ELSE 'down' END
           ),
           'tier-change:' || %(run_id)s::text || ':' || mv.customer_no,
           %(now)s, 'pending'
    FROM moved mv
    JOIN tiers ft ON ft.id = mv.tier_id
    JOIN templates x
      ON x.language = mv.preferred_language AND x.from_id = mv.tier_id
     AND x.to_id = mv.new_tier_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT count(*) AS processed,
       count(*) FILTER (WHERE new_rank > cur_rank) AS upgraded,
       count(*) FILTER (WHERE new_rank < cur_rank) AS downgraded,
       count(*) FILTER (WHERE new_rank = cur_rank) AS unchanged,
       (SELECT count(*) FROM state_written) AS states,
       (SELECT count(*) FROM history_written) AS history,
       (SELECT count(*) FROM messages_written) AS messages
FROM decided
"""  # noqa: S608 - only table names (model constants) are interpolated
