-- The simulator's statement: the decision for members in (lo, hi], counted, nothing written.
-- Per active tier: how many members it would hold after the run (and how many of them moved
-- up, down or stayed), and how many qualify for it on the thresholds alone. Same conventions
-- as tier_decision.sql; the one hole, decision, is tier_decision.sql filled.
WITH {decision},
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
