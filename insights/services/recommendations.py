"""Recommendations: every active member's top rewards and events, nightly, and their uplift.

:func:`recommendations_refresh` ranks, for every active member, the rewards they may redeem now
and the events they hold an open invitation to, and keeps the best ``top_n`` in
:class:`~insights.models.Recommendation` (the member's previous rows replaced), with a
:class:`~insights.models.RecommendationRun` counting members and items.

What an item scores (each signal a take-up rate in [0, 1] over the last ``window_days``,
weighted by :data:`WEIGHTS` and summed; shown times 100, four places):

* ``popular_in_tier``: the share of the member's tier (active members) who redeemed the reward;
  for an event, the share of its invitees of that tier who accepted it (the
  :data:`POPULAR_CANDIDATES` most popular available rewards of each tier are scored);
* ``popular``: the same over all active members (invitees), at half weight;
* ``popular_in_segment``: the same within one of the member's segments (``SegmentMember``),
  the best of them, where at least :data:`MIN_SUPPORT` members took it and the rate beats the
  overall one;
* ``spending_category``: among the members with processed transactions in a merchant category
  the member spends in, the share who took the item, where at least :data:`MIN_SUPPORT` did and
  that share is above the overall rate (lift over base popularity); the best category is named
  in ``reason_data`` (``{"category": "5812"}``);
* ``history`` (rewards): the member's share of past redemptions in the reward's category
  (gift, coupon...) times the share of that category's redeemers who redeemed this reward.

``reason`` is the signal that contributes most. A holdout of ``holdout_percent`` of the members
(the same members every run: ``mod(hashtext(id::text), 100)`` folded to 0-99) gets the
popularity signals only, with ``holdout`` set on their rows, so :func:`recommendation_uplift`
can compare redemption rates.

Guarantees:

* Nothing is recommended that the member could not take now: a reward passes the rule of
  :func:`rewards.selectors.rewards_for_member` (active, within its validity window, the
  member's tier, stock and free codes, monthly budget, the per-member limit in its period,
  ``points_price`` within the balance; the cash co-payment is the member's to pay). That rule
  is repeated here in SQL (:data:`REWARD_ELIGIBLE_SQL`, :data:`REWARD_AVAILABLE_SQL`) because
  the selector answers one member at a time; a test compares the two over constructed members
  and rewards. An event is one the member holds an invitation to in status ``invited``,
  published, before its RSVP deadline, still targeting the member's tier (and segment).
  :func:`member_recommendations` filters the stored rows again against the live state with
  the selector itself, so an item that went out of stock since the run is not shown.
* Set-based: run-wide rates are computed once into temporary tables of this session (small,
  except the members' spending categories, one row per member and category); members are
  then scored and written one chunk of ids (``chunk_size``) per ``DELETE`` + ``INSERT ...
  SELECT``, each chunk its own transaction. No member is loaded into Python; a reader sees a
  member's old rows or new ones, never none in between. Rows of members no longer active go.
* Repeatable: the same data and ``now`` give the same rows (ties ordered by item id); one run
  at a time (a session advisory lock; a second caller gets ``None`` at once).
"""

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min, Q, QuerySet
from django.utils import timezone

from events.models import Event, Invitation
from insights.models import Recommendation, RecommendationRun
from members.models import Member, SegmentMember
from members.selectors import member_tier_get, tier_lowest
from rewards.models import CODE_CATEGORIES
from rewards.selectors import FREE_CODES_COUNTED, month_of, period_starts, rewards_for_member

logger = logging.getLogger(__name__)

# Members per statement: a chunk's signals (some tens per member) are summed in memory.
RECOMMENDATION_CHUNK = 25_000
TOP_N = 10
HOLDOUT_PERCENT = 10
WINDOW_DAYS = 90
# Fewest members who took an item for a segment or a spending category to count as a reason.
MIN_SUPPORT = 3
# Most popularity candidates per tier scored per member: the rest cannot reach a member's
# top N unless a personal signal brings them in (which it then does) or more than this many
# more popular ones are out of their reach.
POPULAR_CANDIDATES = 20
WEIGHTS = {
    Recommendation.Reason.POPULAR_IN_TIER: 1.0,
    Recommendation.Reason.POPULAR: 0.5,
    Recommendation.Reason.POPULAR_IN_SEGMENT: 1.0,
    Recommendation.Reason.SPENDING_CATEGORY: 1.0,
    Recommendation.Reason.HISTORY: 0.5,
}
# Which reason a tie goes to: the more personal first.
_REASON_ORDER = [
    Recommendation.Reason.SPENDING_CATEGORY,
    Recommendation.Reason.HISTORY,
    Recommendation.Reason.POPULAR_IN_SEGMENT,
    Recommendation.Reason.POPULAR_IN_TIER,
    Recommendation.Reason.POPULAR,
]
# Invitation statuses of a member who said yes (a seat, a place on the waitlist, an offer).
ACCEPTED_STATUSES = ["accepted", "waitlisted", "offered", "attended", "no_show"]
# The event's segment column (a segment's id).
_EVENT_SEGMENT = Event._meta.get_field("target_segment").column
# pg_try_advisory_lock key: one refresh at a time.
_LOCK_KEY = 0x7EC0_0001

# The member's holdout bucket, 0-99 (hashtext is signed: folded into 0-99 evenly).
HOLDOUT_BUCKET_SQL = "mod(mod(hashtext({id}::text), 100) + 100, 100)"


# --- Eligibility: rewards_for_member's rule, in SQL ----------------------------------------
#
# The part of the rule that does not depend on the member, once per run: active, within the
# validity window, stock left (for coupons and vouchers also free unexpired codes, counted as
# the selector counts them), the month's budget not exhausted by one more redemption. Each row
# carries the start of its per-member limit's current period.
REWARD_AVAILABLE_SQL = """
CREATE TEMP TABLE rec_reward AS
SELECT r.id, r.category, r.points_price::bigint AS points_price, r.eligible_tiers,
       r.limit_per_member,
       CASE r.limit_period WHEN 'day' THEN %(day)s WHEN 'month' THEN %(month)s
            WHEN 'year' THEN %(year)s ELSE %(lifetime)s END AS period_start
FROM rewards_reward r
LEFT JOIN rewards_budgetmonth b ON b.reward_id = r.id AND b.month = %(budget_month)s
WHERE r.active
  AND (r.valid_from IS NULL OR r.valid_from <= %(now)s)
  AND (r.valid_to IS NULL OR r.valid_to > %(now)s)
  AND coalesce(CASE WHEN r.category = ANY(%(code_categories)s)
                    THEN least(coalesce(r.stock, 2147483647), (
                        SELECT count(*) FROM (
                            SELECT 1 FROM rewards_couponcode c
                            WHERE c.reward_id = r.id AND c.redemption_id IS NULL
                              AND (c.expires_on IS NULL OR c.expires_on >= %(today)s)
                            LIMIT %(free_codes)s) free))
                    ELSE r.stock END >= 1, TRUE)
  AND (r.monthly_points_budget IS NULL
       OR r.monthly_points_budget >= coalesce(b.points_spent, 0) + r.points_price)
"""

# The member's part, for a row ``rw`` of rec_reward, a member row ``cm`` (tier_code, balance)
# and ``u`` (left-joined from USED_SQL: what the member redeemed of it in its limit's current
# period): the tier, the balance, the per-member limit.
REWARD_ELIGIBLE_SQL = """
    (rw.eligible_tiers = '[]'::jsonb OR rw.eligible_tiers @> jsonb_build_array(cm.tier_code))
    AND rw.points_price <= cm.balance
    AND (rw.limit_per_member IS NULL OR rw.limit_per_member >= 1 + coalesce(u.used, 0))
"""
# Per member of ``cm`` and limited reward: the quantity redeemed (not cancelled) since the
# start of the limit's current period.
USED_SQL = """
    SELECT x.member_id, x.reward_id, sum(x.quantity) AS used
    FROM rewards_redemption x
    JOIN rec_reward rw ON rw.id = x.reward_id AND rw.limit_per_member IS NOT NULL
    WHERE x.member_id > %(lo)s AND x.member_id <= %(hi)s
      AND x.created_at >= rw.period_start AND x.status <> 'cancelled'
    GROUP BY 1, 2
"""

# The active members lo < id <= hi with their tier (their state's, else the lowest active
# tier, as members.selectors says; ``tier_key`` 0 while no tier exists), its code, balance and
# holdout flag.
_CHUNK_MEMBERS_SQL = f"""
    SELECT m.id AS member_id, coalesce(mt.tier_id, %(lowest)s, 0) AS tier_key,
           t.code AS tier_code, coalesce(a.balance, 0) AS balance,
           {HOLDOUT_BUCKET_SQL.format(id="m.id")} < %(holdout)s AS holdout
    FROM members_member m
    LEFT JOIN members_membertier mt
      ON mt.member_id = m.id AND mt.member_id > %(lo)s AND mt.member_id <= %(hi)s
    LEFT JOIN members_tier t ON t.id = coalesce(mt.tier_id, %(lowest)s)
    LEFT JOIN points_account a ON a.member_id = m.id
    WHERE m.id > %(lo)s AND m.id <= %(hi)s AND m.status = 'active'
"""  # noqa: S608 - our own fragments, no caller's text

ELIGIBLE_PAIRS_SQL = f"""
WITH cm AS MATERIALIZED ({_CHUNK_MEMBERS_SQL}),
used AS ({USED_SQL})
SELECT cm.member_id, rw.id FROM cm CROSS JOIN rec_reward rw
LEFT JOIN used u ON u.member_id = cm.member_id AND u.reward_id = rw.id
WHERE {REWARD_ELIGIBLE_SQL}
"""  # noqa: S608 - our own fragments, no caller's text

# A signal's contribution and its reason packed into one bigint, so that max() over a member's
# signals for an item is the largest contribution, a tie going to the more personal reason
# (the lower place in %(reason_order)s, 1-based); PRIORITY_SQL takes the place back out.
PACK_SQL = "((({s}) * 1e12)::bigint * 16 + (15 - {prio}))"
PRIORITY_SQL = "(15 - mod({best}, 16))::int"
_P_CATEGORY, _P_HISTORY, _P_SEGMENT, _P_TIER, _P_POPULAR = 1, 2, 3, 4, 5


def _pack(s: str, prio: int | str) -> str:
    return PACK_SQL.format(s=s, prio=prio)


# --- Run-wide rates ------------------------------------------------------------------------

_RATES_SQL = [
    REWARD_AVAILABLE_SQL,
    # Active members per tier.
    """
    CREATE TEMP TABLE rec_tier_size AS
    SELECT coalesce(mt.tier_id, %(lowest)s, 0) AS tier_key, count(*)::float8 AS n
    FROM members_member m LEFT JOIN members_membertier mt ON mt.member_id = m.id
    WHERE m.status = 'active' GROUP BY 1
    """,
    # Who redeemed what in the window (active members, cancelled redemptions left out).
    """
    CREATE TEMP TABLE rec_redeemer AS
    SELECT DISTINCT r.member_id, r.reward_id, coalesce(mt.tier_id, %(lowest)s, 0) AS tier_key
    FROM rewards_redemption r
    JOIN members_member m ON m.id = r.member_id
    LEFT JOIN members_membertier mt ON mt.member_id = r.member_id
    WHERE m.status = 'active' AND r.status <> 'cancelled'
      AND r.created_at >= %(since)s AND r.created_at < %(now)s
    """,
    """
    CREATE TEMP TABLE rec_pop AS
    SELECT reward_id, count(*) / (SELECT sum(n) FROM rec_tier_size) AS rate
    FROM rec_redeemer GROUP BY 1
    """,
    """
    CREATE TEMP TABLE rec_pop_tier AS
    SELECT r.tier_key, r.reward_id, count(*) / max(t.n) AS rate
    FROM rec_redeemer r JOIN rec_tier_size t ON t.tier_key = r.tier_key
    GROUP BY 1, 2
    """,
    # Popularity per tier, both signals in one row per tier and available reward: the most
    # popular POPULAR_CANDIDATES of each tier.
    f"""
    CREATE TEMP TABLE rec_base AS
    SELECT tier_key, reward_id, s, best FROM (
        SELECT t.tier_key, rw.id AS reward_id,
               %(w_tier)s * coalesce(pt.rate, 0) + %(w_popular)s * coalesce(p.rate, 0) AS s,
               greatest({_pack("%(w_tier)s * coalesce(pt.rate, 0)", _P_TIER)},
                        {_pack("%(w_popular)s * coalesce(p.rate, 0)", _P_POPULAR)}) AS best,
               row_number() OVER (
                   PARTITION BY t.tier_key
                   ORDER BY %(w_tier)s * coalesce(pt.rate, 0)
                            + %(w_popular)s * coalesce(p.rate, 0) DESC, rw.id) AS n
        FROM rec_tier_size t
        CROSS JOIN rec_reward rw
        -- no tier configured (key 0): no tier to be popular in
        LEFT JOIN rec_pop_tier pt
          ON pt.tier_key = t.tier_key AND pt.reward_id = rw.id AND t.tier_key <> 0
        LEFT JOIN rec_pop p ON p.reward_id = rw.id
        WHERE p.rate IS NOT NULL
    ) ranked
    WHERE n <= %(candidates)s
    """,  # noqa: S608 - our own fragments, no caller's text
    """
    CREATE TEMP TABLE rec_segment_size AS
    SELECT sm.segment_id, count(*)::float8 AS n
    FROM members_segmentmember sm JOIN members_member m ON m.id = sm.member_id
    WHERE m.status = 'active' GROUP BY 1
    """,
    """
    CREATE TEMP TABLE rec_pop_segment AS
    SELECT sm.segment_id, r.reward_id, count(*) / max(s.n) AS rate
    FROM rec_redeemer r
    JOIN members_segmentmember sm ON sm.member_id = r.member_id
    JOIN rec_segment_size s ON s.segment_id = sm.segment_id
    JOIN rec_pop p ON p.reward_id = r.reward_id
    GROUP BY 1, 2
    HAVING count(*) >= %(min_support)s AND count(*) / max(s.n) > max(p.rate)
    """,
    # The members' spending categories: the one large table of the run (a row per member and
    # category), in member order and indexed for the chunks.
    """
    CREATE TEMP TABLE rec_member_category AS
    SELECT member_id, merchant_category AS category
    FROM points_transaction
    WHERE status = 'processed' AND merchant_category <> ''
      AND occurred_at >= %(since)s AND occurred_at < %(now)s
    GROUP BY 1, 2
    ORDER BY 1
    """,
    "CREATE INDEX ON rec_member_category (member_id)",
    "ANALYZE rec_member_category",
    """
    CREATE TEMP TABLE rec_category_size AS
    SELECT category, count(*)::float8 AS n FROM rec_member_category GROUP BY 1
    """,
    """
    CREATE TEMP TABLE rec_pop_category AS
    SELECT mc.category, r.reward_id, count(*) / max(cs.n) AS rate
    FROM rec_redeemer r
    JOIN rec_member_category mc ON mc.member_id = r.member_id
    JOIN rec_category_size cs ON cs.category = mc.category
    JOIN rec_pop p ON p.reward_id = r.reward_id
    GROUP BY 1, 2
    HAVING count(*) >= %(min_support)s AND count(*) / max(cs.n) > max(p.rate)
    """,
    # P(reward | redeemed a reward of its category).
    """
    CREATE TEMP TABLE rec_pop_history AS
    SELECT rw.category, r.reward_id, count(*) / max(k.n) AS rate
    FROM rec_redeemer r
    JOIN rewards_reward rw ON rw.id = r.reward_id
    JOIN (SELECT rw2.category, count(DISTINCT r2.member_id)::float8 AS n
          FROM rec_redeemer r2 JOIN rewards_reward rw2 ON rw2.id = r2.reward_id
          GROUP BY 1) k ON k.category = rw.category
    GROUP BY 1, 2
    """,
    # Events open for answers, and who was invited to them (active members) and said yes.
    f"""
    CREATE TEMP TABLE rec_event AS
    SELECT e.id, e.target_tiers, e.{_EVENT_SEGMENT} AS target_segment FROM events_event e
    WHERE e.status = 'published' AND e.rsvp_deadline > %(now)s
    """,  # noqa: S608 - our own fragments, no caller's text
    """
    CREATE TEMP TABLE rec_invitee AS
    SELECT i.event_id, i.member_id, coalesce(mt.tier_id, %(lowest)s, 0) AS tier_key,
           i.status = ANY(%(accepted)s) AS took
    FROM events_invitation i
    JOIN rec_event e ON e.id = i.event_id
    JOIN members_member m ON m.id = i.member_id
    LEFT JOIN members_membertier mt ON mt.member_id = i.member_id
    WHERE m.status = 'active'
    """,
    """
    CREATE TEMP TABLE rec_epop AS
    SELECT event_id, avg(took::int)::float8 AS rate FROM rec_invitee GROUP BY 1
    """,
    f"""
    CREATE TEMP TABLE rec_ebase AS
    SELECT t.event_id, t.tier_key,
           %(w_tier)s * t.rate + %(w_popular)s * p.rate AS s,
           greatest({_pack("%(w_tier)s * t.rate", _P_TIER)},
                    {_pack("%(w_popular)s * p.rate", _P_POPULAR)}) AS best
    FROM (SELECT event_id, tier_key,
                 CASE WHEN tier_key <> 0 THEN avg(took::int)::float8 ELSE 0 END AS rate
          FROM rec_invitee GROUP BY 1, 2) t
    JOIN rec_epop p ON p.event_id = t.event_id
    """,  # noqa: S608 - our own fragments, no caller's text
    """
    CREATE TEMP TABLE rec_epop_segment AS
    SELECT i.event_id, sm.segment_id, avg(i.took::int)::float8 AS rate
    FROM rec_invitee i
    JOIN members_segmentmember sm ON sm.member_id = i.member_id
    JOIN rec_epop p ON p.event_id = i.event_id
    GROUP BY 1, 2
    HAVING count(*) FILTER (WHERE i.took) >= %(min_support)s
       AND avg(i.took::int) > max(p.rate)
    """,
    """
    CREATE TEMP TABLE rec_epop_category AS
    SELECT i.event_id, mc.category, avg(i.took::int)::float8 AS rate
    FROM rec_invitee i
    JOIN rec_member_category mc ON mc.member_id = i.member_id
    JOIN rec_epop p ON p.event_id = i.event_id
    GROUP BY 1, 2
    HAVING count(*) FILTER (WHERE i.took) >= %(min_support)s
       AND avg(i.took::int) > max(p.rate)
    """,
]
_TEMP_TABLES = (
    "rec_reward",
    "rec_tier_size",
    "rec_redeemer",
    "rec_pop",
    "rec_pop_tier",
    "rec_base",
    "rec_segment_size",
    "rec_pop_segment",
    "rec_member_category",
    "rec_category_size",
    "rec_pop_category",
    "rec_pop_history",
    "rec_event",
    "rec_invitee",
    "rec_epop",
    "rec_ebase",
    "rec_epop_segment",
    "rec_epop_category",
)

# --- One chunk -----------------------------------------------------------------------------
#
# Signals (member, item, contribution, packed contribution and reason) from every source: the
# popularity of the member's tier in one row per item, the best segment and the best spending
# category per item, the history; summed per member and item, the reason the largest
# contribution. Holdout members get the popularity rows only. Rewards are kept where the
# member may redeem them; events come from the member's open invitations only. What fills
# ``reason_data`` is looked up for the kept rows alone.
CHUNK_SQL = f"""
WITH cm AS MATERIALIZED ({_CHUNK_MEMBERS_SQL}),
ev AS MATERIALIZED (
    SELECT cm.member_id, cm.tier_key, cm.holdout, i.event_id
    FROM cm
    JOIN events_invitation i ON i.member_id = cm.member_id
    JOIN rec_event e ON e.id = i.event_id
    WHERE i.member_id > %(lo)s AND i.member_id <= %(hi)s AND i.status = 'invited'
      AND (e.target_tiers = '[]'::jsonb OR e.target_tiers @> jsonb_build_array(cm.tier_code))
      AND (e.target_segment IS NULL OR EXISTS (
          SELECT 1 FROM members_segmentmember s
          WHERE s.segment_id = e.target_segment AND s.member_id = cm.member_id))
),
hist AS (
    SELECT x.member_id, rw.category,
           count(*)::float8 / sum(count(*)) OVER (PARTITION BY x.member_id) AS share
    FROM rewards_redemption x
    JOIN cm ON cm.member_id = x.member_id AND NOT cm.holdout
    JOIN rewards_reward rw ON rw.id = x.reward_id
    WHERE x.member_id > %(lo)s AND x.member_id <= %(hi)s AND x.status <> 'cancelled'
    GROUP BY 1, 2
),
personal AS (
    SELECT member_id, item_type, item_id, prio, max(s) AS s FROM (
        SELECT cm.member_id, 'reward' AS item_type, p.reward_id AS item_id,
               {_P_SEGMENT} AS prio, %(w_segment)s * p.rate AS s
        FROM cm
        JOIN members_segmentmember sm
          ON sm.member_id = cm.member_id AND sm.member_id > %(lo)s AND sm.member_id <= %(hi)s
        JOIN rec_pop_segment p ON p.segment_id = sm.segment_id
        WHERE NOT cm.holdout
        UNION ALL
        SELECT cm.member_id, 'reward', p.reward_id, {_P_CATEGORY}, %(w_category)s * p.rate
        FROM cm
        JOIN rec_member_category mc
          ON mc.member_id = cm.member_id AND mc.member_id > %(lo)s AND mc.member_id <= %(hi)s
        JOIN rec_pop_category p ON p.category = mc.category
        WHERE NOT cm.holdout
        UNION ALL
        SELECT ev.member_id, 'event', ev.event_id, {_P_SEGMENT}, %(w_segment)s * p.rate
        FROM ev
        JOIN members_segmentmember sm
          ON sm.member_id = ev.member_id AND sm.member_id > %(lo)s AND sm.member_id <= %(hi)s
        JOIN rec_epop_segment p ON p.event_id = ev.event_id AND p.segment_id = sm.segment_id
        WHERE NOT ev.holdout
        UNION ALL
        SELECT ev.member_id, 'event', ev.event_id, {_P_CATEGORY}, %(w_category)s * p.rate
        FROM ev
        JOIN rec_member_category mc
          ON mc.member_id = ev.member_id AND mc.member_id > %(lo)s AND mc.member_id <= %(hi)s
        JOIN rec_epop_category p ON p.event_id = ev.event_id AND p.category = mc.category
        WHERE NOT ev.holdout
    ) x
    GROUP BY 1, 2, 3, 4
),
signals AS (
    SELECT cm.member_id, 'reward' AS item_type, b.reward_id AS item_id, b.s, b.best
    FROM cm JOIN rec_base b ON b.tier_key = cm.tier_key
    UNION ALL
    SELECT ev.member_id, 'event', ev.event_id, b.s, b.best
    FROM ev JOIN rec_ebase b ON b.event_id = ev.event_id AND b.tier_key = ev.tier_key
    UNION ALL
    SELECT member_id, item_type, item_id, s, {_pack("s", "prio")} FROM personal
    UNION ALL
    SELECT h.member_id, 'reward', p.reward_id, %(w_history)s * h.share * p.rate,
           {_pack("%(w_history)s * h.share * p.rate", _P_HISTORY)}
    FROM hist h JOIN rec_pop_history p ON p.category = h.category
),
used AS ({USED_SQL}),
kept AS (
    SELECT sg.* FROM signals sg
    JOIN cm ON cm.member_id = sg.member_id
    JOIN rec_reward rw ON rw.id = sg.item_id
    LEFT JOIN used u ON u.member_id = sg.member_id AND u.reward_id = sg.item_id
    WHERE sg.item_type = 'reward' AND {REWARD_ELIGIBLE_SQL}
    UNION ALL
    SELECT sg.* FROM signals sg WHERE sg.item_type = 'event'
),
scored AS (
    SELECT member_id, item_type, item_id, sum(s) AS score, max(best) AS best
    FROM kept GROUP BY 1, 2, 3
),
ranked AS (
    SELECT k.*, ((%(reason_order)s)::text[])[{PRIORITY_SQL.format(best="k.best")}] AS reason,
           row_number() OVER (
               PARTITION BY k.member_id ORDER BY k.score DESC, k.item_type DESC, k.item_id
           ) AS rank
    FROM scored k WHERE k.score > 0
)
INSERT INTO insights_recommendation (member_id, rank, item_type, reward_id, event_id, score,
                                     reason, reason_data, holdout, run_id, computed_at)
SELECT r.member_id, r.rank, r.item_type,
       CASE WHEN r.item_type = 'reward' THEN r.item_id END,
       CASE WHEN r.item_type = 'event' THEN r.item_id END,
       round((r.score * 100)::numeric, 4), r.reason,
       CASE r.reason
           WHEN 'popular_in_tier' THEN jsonb_build_object('tier', cm.tier_code)
           WHEN 'history' THEN jsonb_build_object(
               'category', (SELECT rw.category FROM rec_reward rw WHERE rw.id = r.item_id))
           WHEN 'spending_category' THEN jsonb_build_object('category', CASE r.item_type
               WHEN 'reward' THEN (
                   SELECT p.category FROM rec_member_category mc
                   JOIN rec_pop_category p ON p.category = mc.category
                   WHERE mc.member_id = r.member_id AND p.reward_id = r.item_id
                   ORDER BY p.rate DESC, p.category LIMIT 1)
               ELSE (
                   SELECT p.category FROM rec_member_category mc
                   JOIN rec_epop_category p ON p.category = mc.category
                   WHERE mc.member_id = r.member_id AND p.event_id = r.item_id
                   ORDER BY p.rate DESC, p.category LIMIT 1) END)
           WHEN 'popular_in_segment' THEN jsonb_build_object('segment', CASE r.item_type
               WHEN 'reward' THEN (
                   SELECT p.segment_id::text FROM members_segmentmember sm
                   JOIN rec_pop_segment p ON p.segment_id = sm.segment_id
                   WHERE sm.member_id = r.member_id AND p.reward_id = r.item_id
                   ORDER BY p.rate DESC, p.segment_id LIMIT 1)
               ELSE (
                   SELECT p.segment_id::text FROM members_segmentmember sm
                   JOIN rec_epop_segment p ON p.segment_id = sm.segment_id
                   WHERE sm.member_id = r.member_id AND p.event_id = r.item_id
                   ORDER BY p.rate DESC, p.segment_id LIMIT 1) END)
           ELSE '{{}}'::jsonb END,
       cm.holdout, %(run)s, %(now)s
FROM ranked r JOIN cm ON cm.member_id = r.member_id
WHERE r.rank <= %(top_n)s
"""  # noqa: S608 - our own fragments, no caller's text

DELETE_CHUNK_SQL = (
    "DELETE FROM insights_recommendation WHERE member_id > %(lo)s AND member_id <= %(hi)s"
)


def _params(
    *, now: dt.datetime, window_days: int, min_support: int = MIN_SUPPORT
) -> dict[str, Any]:
    starts = period_starts(now)
    lowest = tier_lowest()
    return {
        "now": now,
        "since": now - dt.timedelta(days=window_days),
        "today": timezone.localdate(now, timezone=starts["day"].tzinfo),
        "lowest": lowest.pk if lowest else None,
        "day": starts["day"],
        "month": starts["month"],
        "year": starts["year"],
        "lifetime": starts["lifetime"],
        "budget_month": month_of(now),
        "code_categories": [str(category) for category in CODE_CATEGORIES],
        "free_codes": FREE_CODES_COUNTED,
        "accepted": ACCEPTED_STATUSES,
        "min_support": min_support,
        "candidates": POPULAR_CANDIDATES,
        "reason_order": [str(reason) for reason in _REASON_ORDER],
        "w_tier": WEIGHTS[Recommendation.Reason.POPULAR_IN_TIER],
        "w_popular": WEIGHTS[Recommendation.Reason.POPULAR],
        "w_segment": WEIGHTS[Recommendation.Reason.POPULAR_IN_SEGMENT],
        "w_category": WEIGHTS[Recommendation.Reason.SPENDING_CATEGORY],
        "w_history": WEIGHTS[Recommendation.Reason.HISTORY],
    }


def _temp_tables_drop(cursor) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {', '.join(_TEMP_TABLES)}")


def _rewards_available(cursor, params: dict[str, Any]) -> None:
    cursor.execute("DROP TABLE IF EXISTS rec_reward")
    cursor.execute(REWARD_AVAILABLE_SQL, params)


def _rates_compute(cursor, params: dict[str, Any]) -> None:
    _temp_tables_drop(cursor)
    for sql in _RATES_SQL:
        cursor.execute(sql, params)
    for table in ("rec_reward", "rec_base", "rec_ebase", "rec_event"):
        cursor.execute(f"ANALYZE {table}")


def reward_eligible_pairs(
    *, member_ids: list[int], now: dt.datetime | None = None
) -> set[tuple[int, Any]]:
    """``(member id, reward id)`` for every reward each of ``member_ids`` may redeem at ``now``,
    by the job's SQL (:data:`REWARD_AVAILABLE_SQL` and :data:`REWARD_ELIGIBLE_SQL`, the very
    text the chunks use): what the test holds against ``rewards_for_member``."""
    now = now or timezone.now()
    params = _params(now=now, window_days=WINDOW_DAYS)
    pairs: set[tuple[int, Any]] = set()
    with connection.cursor() as cursor:
        _rewards_available(cursor, params)
        try:
            for member_id in member_ids:
                cursor.execute(
                    ELIGIBLE_PAIRS_SQL,
                    {**params, "lo": member_id - 1, "hi": member_id, "holdout": 0},
                )
                pairs.update((row[0], row[1]) for row in cursor.fetchall())
        finally:
            cursor.execute("DROP TABLE IF EXISTS rec_reward")
    return pairs


def recommendations_refresh(
    *,
    now: dt.datetime | None = None,
    top_n: int = TOP_N,
    holdout_percent: int = HOLDOUT_PERCENT,
    window_days: int = WINDOW_DAYS,
    min_support: int = MIN_SUPPORT,
    chunk_size: int = RECOMMENDATION_CHUNK,
) -> RecommendationRun | None:
    """Rank and store every active member's top ``top_n`` rewards and events as of ``now``
    (see the module's docstring); the finished run, or ``None`` when another run holds the
    lock. A member who is no longer active keeps no rows."""
    if not 0 <= holdout_percent <= 100:
        raise ValueError("holdout_percent must be 0 to 100")
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        if not cursor.fetchone()[0]:
            logger.info("recommendations: another run holds the lock")
            return None
    run = RecommendationRun.objects.create(started_at=now, holdout_percent=holdout_percent)
    try:
        params = {
            **_params(now=now, window_days=window_days, min_support=min_support),
            "holdout": holdout_percent,
            "top_n": top_n,
            "run": run.pk,
        }
        members = items = 0
        with connection.cursor() as cursor:
            # Sorts and hashes of a chunk stay in memory.
            cursor.execute("SET work_mem = '64MB'")
            _rates_compute(cursor, params)
            bounds = Member.objects.aggregate(first=Min("pk"), last=Max("pk"))
            if bounds["first"] is not None:
                for lo in range(bounds["first"] - 1, bounds["last"], chunk_size):
                    hi = min(lo + chunk_size, bounds["last"])
                    with transaction.atomic():
                        cursor.execute(DELETE_CHUNK_SQL, {"lo": lo, "hi": hi})
                        cursor.execute(CHUNK_SQL, {**params, "lo": lo, "hi": hi})
                        items += cursor.rowcount
                    members += Member.objects.filter(
                        pk__gt=lo, pk__lte=hi, status=Member.Status.ACTIVE
                    ).count()
            _temp_tables_drop(cursor)
            cursor.execute("RESET work_mem")
        run.members, run.items = members, items
        run.status = RecommendationRun.Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["members", "items", "status", "finished_at"])
        logger.info("recommendations: %s items for %s members", items, members)
        return run
    except Exception:
        RecommendationRun.objects.filter(pk=run.pk).update(
            status=RecommendationRun.Status.FAILED, finished_at=timezone.now()
        )
        raise
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


# --- Reading -------------------------------------------------------------------------------


def member_recommendations(*, member: Member, now: dt.datetime | None = None) -> QuerySet:
    """``member``'s stored recommendations, best first, that still hold now: rewards the
    catalogue's own rule (``rewards_for_member``) says they may redeem, events they hold an open
    invitation to (published, before the RSVP deadline, still targeting their tier and
    segment). With the reward and event loaded."""
    now = now or timezone.now()
    if member.status != Member.Status.ACTIVE:
        return Recommendation.objects.none()
    # Evaluated, not nested: the selector's free-code count names the reward table, which a
    # subquery would alias. One query over the catalogue, the rule as the catalogue shows it.
    eligible = list(
        rewards_for_member(member=member, now=now, include_ended=False)
        .filter(ineligible_reason__isnull=True)  # type: ignore[misc]  # an annotation
        .values_list("pk", flat=True)
    )
    tier = member_tier_get(member=member)
    targeted = Q(event__target_tiers=[])
    if tier is not None:
        targeted |= Q(event__target_tiers__contains=[tier.code])
    in_segment = SegmentMember.objects.filter(member=member).values("segment_id")
    open_events = (
        Invitation.objects.filter(
            member=member,
            status=Invitation.Status.INVITED,
            event__status="published",
            event__rsvp_deadline__gt=now,
        )
        .filter(targeted)
        .filter(Q(event__target_segment__isnull=True) | Q(event__target_segment__in=in_segment))
        .values("event_id")
    )
    return (
        Recommendation.objects.filter(member=member)
        .filter(
            Q(item_type=Recommendation.ItemType.REWARD, reward__in=eligible)
            | Q(item_type=Recommendation.ItemType.EVENT, event__in=open_events)
        )
        .select_related("reward", "event")
        .order_by("rank")
    )


# --- Uplift --------------------------------------------------------------------------------

_UPLIFT_SQL = """
WITH recommended AS (
    SELECT DISTINCT member_id, reward_id, holdout FROM insights_recommendation
    WHERE item_type = 'reward'
),
held AS (
    SELECT DISTINCT member_id, holdout FROM insights_recommendation
),
took AS (
    SELECT c.holdout, count(DISTINCT r.id) AS redemptions
    FROM recommended c
    JOIN rewards_redemption r ON r.member_id = c.member_id AND r.reward_id = c.reward_id
    WHERE r.status <> 'cancelled' AND r.created_at >= %(start)s AND r.created_at < %(end)s
    GROUP BY 1
)
SELECT m.holdout, count(*) AS members, coalesce(max(t.redemptions), 0) AS redemptions
FROM held m LEFT JOIN took t ON t.holdout = m.holdout
GROUP BY 1
"""

_RATE_PLACES = Decimal("0.0001")


def _rate(numerator: int, denominator: int) -> Decimal:
    if not denominator:
        return Decimal("0.0000")
    return (Decimal(numerator) / Decimal(denominator)).quantize(_RATE_PLACES)


def recommendation_uplift(*, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Redemptions of recommended rewards per member, treated against holdout, between
    ``start`` (inclusive) and ``end`` (exclusive), over the members holding recommendations
    now (the latest run's rows): ``{treated_members, treated_redemptions, treated_rate,
    holdout_members, holdout_redemptions, holdout_rate, uplift}``. Rates are Decimals with four
    places; ``uplift`` is ``treated_rate - holdout_rate`` (absolute, redemptions per member).
    A holdout member's "recommended" rewards are the popularity-only ones they were shown, so
    the difference is what personalisation adds."""
    with connection.cursor() as cursor:
        cursor.execute(_UPLIFT_SQL, {"start": start, "end": end})
        rows = {holdout: (members, redemptions) for holdout, members, redemptions in cursor}
    treated = rows.get(False, (0, 0))
    holdout = rows.get(True, (0, 0))
    treated_rate = _rate(treated[1], treated[0])
    holdout_rate = _rate(holdout[1], holdout[0])
    return {
        "treated_members": treated[0],
        "treated_redemptions": treated[1],
        "treated_rate": treated_rate,
        "holdout_members": holdout[0],
        "holdout_redemptions": holdout[1],
        "holdout_rate": holdout_rate,
        "uplift": treated_rate - holdout_rate,
    }
