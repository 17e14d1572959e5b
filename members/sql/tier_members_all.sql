-- The FROM and WHERE of cur in tier_decision.sql (its members_who_can_change hole) when a tier
-- above the lowest has no thresholds: everyone qualifies for it, members without snapshots
-- too, so everyone is decided. No holes.
    FROM members_member m
    LEFT JOIN members_membertier st
           ON st.member_id = m.id AND st.member_id > %(lo)s AND st.member_id <= %(hi)s
    LEFT JOIN agg a ON a.member_id = m.id
    LEFT JOIN members_tieroverride ov
           ON ov.id = st.override_id AND ov.status = 'approved' AND ov.expires_at > %(now)s
    WHERE m.id > %(lo)s AND m.id <= %(hi)s AND m.status <> 'closed'
