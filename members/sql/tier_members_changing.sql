-- The FROM and WHERE of cur in tier_decision.sql (its members_who_can_change hole) when no
-- tier above the lowest is open to everyone: without state and not qualified above the lowest
-- tier, a member stays where it is, so only the others are decided one by one. No holes.
    FROM agg a
    FULL JOIN (
        SELECT * FROM members_membertier WHERE member_id > %(lo)s AND member_id <= %(hi)s
    ) st ON st.member_id = a.member_id
    JOIN members_member m ON m.id = COALESCE(a.member_id, st.member_id)
    LEFT JOIN members_tieroverride ov
           ON ov.id = st.override_id AND ov.status = 'approved' AND ov.expires_at > %(now)s
    WHERE (a.q_rank > %(lowest_rank)s OR st.member_id IS NOT NULL)
      AND m.id > %(lo)s AND m.id <= %(hi)s AND m.status <> 'closed'
