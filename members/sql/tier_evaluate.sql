-- An evaluation chunk's statement: the decision for members in (lo, hi], written. Changed
-- members get their state row (inserted or updated), a history row and a message when their
-- tier moves; the one row returned counts what was processed and written. Same conventions as
-- tier_decision.sql; the one hole, decision, is tier_decision.sql filled. Besides the
-- decision's parameters it binds run_pk, run_id and templates (every possible tier-change
-- message of the run, per language and pair of tiers).
WITH {decision},
-- Members whose state changes (a re-run's skipped ones never do).
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
    INSERT INTO members_membertier (member_id, tier_id, since, failing_count, qualified_tier_id,
                                    last_as_of, override_id, updated_at)
    SELECT member_id, new_tier_id, %(now)s, new_failing, q_tier_id, %(as_of)s::date,
           new_override_id, %(now)s
    FROM changes
    WHERE NOT has_state
    RETURNING 1
),
state_updated AS (
    UPDATE members_membertier st SET
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
    INSERT INTO members_tierhistory (member_id, from_tier_id, to_tier_id, reason, run_id,
                                     override_id, as_of, avg_aum, contribution, occurred_at)
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
    INSERT INTO members_message (id, member_id, kind, title, body, data, dedupe_key, created_at,
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
