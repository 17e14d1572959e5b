-- The tier decision for the members whose ids are in (lo, hi]: common table expressions
-- ending with ``decided``, which tier_simulate.sql and tier_evaluate.sql put after their WITH.
-- See members/tier_sql.py for what each action means.
--
-- Template convention (the same in every file of members/sql/, read by members.tier_sql):
--
-- * Whole-line comments, like this one, are documentation: they are dropped when the file is
--   loaded and never reach the server. A comment never follows SQL on the same line.
-- * {name} is a hole. members.tier_sql fills every hole from the validated tier ladder (a
--   Ladder of TierRule objects) with fixed SQL text in which the only values are integers
--   (tier ids, ranks, window lengths, grace periods) and the keywords true, false and NULL.
--   There is no other brace in the SQL, every hole must be filled, and a filled statement has
--   no brace left.
-- * %(name)s is a bound parameter: every threshold, every date and the tier list are passed
--   as parameters, never written into the text. The caller adds lo, hi and now.
--
-- The holes, N standing for a window length in months and R for a rank:
--
--   window_figures           per distinct window of the active tiers, one filtered aggregate:
--                            avg(s.aum) AS aum_wN, sum(s.contribution) AS contribution_wN
--                            (with several windows, each only over its own months, from
--                            %(wN_start)s)
--   qualified_rank           per active tier, highest rank first: WHEN <thresholds met> THEN R,
--                            the thresholds compared being %(tR_aum)s and %(tR_contribution)s
--                            against the tier's window (true for a tier without thresholds)
--   window_columns           a.aum_wN, a.contribution_wN per window, carried into cur
--   members_who_can_change   the FROM and WHERE of cur: tier_members_changing.sql, or
--                            tier_members_all.sql when a tier above the lowest has no
--                            thresholds
--   rank_by_tier_id          WHEN <tier id> THEN <its rank>, per tier (inactive ones too);
--   active_by_tier_id        likewise its active flag (true or false),
--   grace_by_tier_id         its grace periods,
--   to_qualified_by_tier_id  whether its downgrade mode is to_qualified (true or false),
--   lower_id_by_tier_id      the id of the highest active tier below it (NULL for none)
--   tier_id_by_rank          WHEN R THEN <tier id>, per active tier
--   avg_aum_by_tier_id       WHEN <tier id> THEN aum_wN for the tier's window, per tier whose
--   contribution_by_tier_id  window is an active tier's (likewise contribution_wN)
--
-- The ladder is small and known before the statement runs, so the thresholds become a CASE
-- over bound parameters (highest rank first) and each distinct window one filtered aggregate:
-- one pass over the chunk's snapshots, no join against the tier list per member.
--
-- Each step from cur on ends with OFFSET 0, which keeps PostgreSQL from folding it into the
-- next: folded, every reference to q_rank or action would repeat the whole CASE it stands for.

-- The ladder (proposals applied) as rows, for the statements' own joins by id.
tiers AS (
    SELECT * FROM jsonb_to_recordset(%(tiers)s::jsonb) AS t(
        id bigint, code text, rank integer, window_months integer, grace_periods integer,
        downgrade_mode text, active boolean, lower_id bigint
    )
),
-- Each member's figures per window and the highest rank they qualify for, in one pass over the
-- chunk's snapshots of the longest window (members without snapshots have no row here).
agg AS (
    SELECT a.*, CASE {qualified_rank} ELSE %(lowest_rank)s END AS q_rank
    FROM (
        SELECT s.member_id, {window_figures}
        FROM members_assetsnapshot s
        WHERE s.member_id > %(lo)s AND s.member_id <= %(hi)s
          AND s.as_of >= %(window_start)s AND s.as_of <= %(as_of)s
        GROUP BY s.member_id
    ) a
),
population AS MATERIALIZED (
    -- Counted once, not once per use; both counts read an index only (the primary key,
    -- member_closed_idx).
    SELECT (SELECT count(*) FROM members_member m WHERE m.id > %(lo)s AND m.id <= %(hi)s)
         - (SELECT count(*) FROM members_member m
            WHERE m.id > %(lo)s AND m.id <= %(hi)s AND m.status = 'closed') AS members
),
-- The members decided one by one, with their current tier (the lowest without state), grace
-- count, override in force and qualified rank (open_rank without snapshots).
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
-- What the ladder says about the current tier and the qualified rank.
facts AS (
    SELECT cur.*,
           CASE tier_id {rank_by_tier_id} END AS cur_rank,
           CASE tier_id {active_by_tier_id} END AS cur_active,
           CASE tier_id {grace_by_tier_id} END AS grace,
           CASE tier_id {to_qualified_by_tier_id} END AS to_qualified,
           CASE tier_id {lower_id_by_tier_id} END AS lower_id,
           CASE q_rank {tier_id_by_rank} END AS q_tier_id
    FROM cur
    OFFSET 0
),
-- The action, in order of precedence.
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
-- Where the action takes the member: tier, grace count, override.
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
-- The decision, with the new tier's rank and the figures over the new tier's own window.
decided AS (
    SELECT member_id, customer_no, preferred_language, has_state,
           tier_id, cur_rank, failing_count, override_id, q_tier_id,
           action, new_tier_id, new_failing, new_override_id,
           CASE new_tier_id {rank_by_tier_id} END AS new_rank,
           CASE new_tier_id {avg_aum_by_tier_id} END AS new_avg_aum,
           CASE new_tier_id {contribution_by_tier_id} END AS new_contribution
    FROM moves
)
