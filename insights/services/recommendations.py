"""Recommendations: every active member's top rewards and events, nightly, and their uplift.

:func:`recommendations_refresh` ranks, for every active member, the rewards they may redeem now
and the events they hold an open invitation to, and keeps the best ``top_n`` in the member's one
:class:`~insights.models.Recommendation` row (``items``, best first, each ``{type, id, score,
reason, data}``), with a :class:`~insights.models.RecommendationRun` counting members and items.

What an item scores (each signal a take-up rate in [0, 1] over the last ``window_days``,
weighted by :data:`WEIGHTS` and summed; shown times 100, four places, a decimal string):

* ``popular_in_tier``: the share of the member's tier (active members) who redeemed the reward;
  for an event, the share of its invitees of that tier who accepted it (the
  :data:`POPULAR_CANDIDATES` most popular available rewards of each tier are scored);
* ``popular``: the same over all active members (invitees), at half weight;
* ``popular_in_segment``: the same within one of the member's segments (``SegmentMember``),
  the best of them, where at least :data:`MIN_SUPPORT` members took it and the rate beats the
  overall one (``data``: ``{"segment": id}``);
* ``spending_category``: among the members with processed transactions in a merchant category
  the member spends in, the share who took the item, where at least :data:`MIN_SUPPORT` did and
  that share is above the overall rate (lift over base popularity); the best category is named
  in ``data`` (``{"category": "5812"}``);
* ``history`` (rewards): the member's share of past redemptions in the reward's category
  (gift, coupon...) times the share of that category's redeemers who redeemed this reward.

``reason`` is the signal that contributes most (a tie goes to the more personal one). A holdout
of ``holdout_percent`` of the members (the same members every run: ``mod(hashtext(id::text),
100)`` folded to 0-99) gets the popularity signals only, with ``holdout`` set on their row, so
:mod:`insights.services.kpis` can compare their redemption rates (the uplift KPI).

How it is fast (the nightly job for 1,000,000 members within ten times a plain ``GROUP BY
member, merchant category`` over the same transactions, ``bench/recommend.py``):

* Scored once per profile, not per member. Every signal but history depends only on the
  member's *profile*: tier, holdout flag, the set of merchant categories they spend in (empty
  for the holdout) and the set of their segments. Members sharing a profile share its scored,
  ranked candidate list (``rec_profile_item``, a few hundred profiles times a few dozen items,
  computed once per run). What is the member's own is only what they may take (balance,
  per-member limits, open invitations) and their history: a member's top ``top_n`` is the first
  ``top_n`` eligible items of their profile's list (an index scan that stops there, ``LATERAL
  ... LIMIT``) merged with their history's rewards, which are the only items a member's own
  signal can lift past them, so the result is exactly the full per-member sum's top ``top_n``.
  (Profiles are few because categories are few; with members each spending in a unique set of
  dozens of categories the profile list approaches one per member and the job the cost of
  scoring each member.)
* One row per member instead of one per item, replaced in place: each chunk of member ids is
  one ``INSERT ... ON CONFLICT (member_id) DO UPDATE`` (a tenth of the rows, no ``DELETE`` of
  the previous run's millions), followed by deleting the rows of that id range the run did not
  write (members no longer active, or with nothing left to recommend), in one transaction.

Guarantees:

* Nothing is recommended that the member could not take now: a reward passes the rule of
  :func:`rewards.selectors.rewards_for_member` (active, within its validity window, the
  member's tier, stock and free codes, monthly budget, the per-member limit in its period,
  ``points_price`` within the balance; the cash co-payment is the member's to pay). That rule
  is repeated here in SQL (:data:`REWARD_AVAILABLE_SQL`, :data:`REWARD_TIER_SQL`,
  :data:`REWARD_MEMBER_SQL`, :data:`_BLOCKED_SQL`) because the selector answers one member at a
  time; a test compares the two over constructed members and rewards through
  :func:`reward_eligible_pairs`, which runs those very fragments. An event is one the member
  holds an invitation to in status ``invited``, published, before its RSVP deadline, still
  targeting the member's tier (and segment). :func:`member_recommendations` filters the stored
  items again against the live state with the selector itself, so an item that went out of
  stock since the run is not shown.
* Set-based: run-wide rates, the members' profiles (one small row per active member) and the
  profiles' candidate lists are computed once into temporary tables of this session; members
  are then written one chunk of ids (``chunk_size``) per statement, each chunk its own
  transaction. No member is loaded into Python; a reader sees a member's old row or the new
  one, never none in between. Rows of members no longer active go.
* Repeatable: the same data and ``now`` give the same rows (ties ordered by type, then item
  id); one run at a time (a session advisory lock; a second caller gets ``None`` at once).
"""

import dataclasses
import datetime as dt
import logging
import uuid
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from events.models import Event, Invitation
from insights.models import Recommendation, RecommendationRun
from members.models import Member, SegmentMember
from members.selectors import member_tier_get, tier_lowest
from rewards.models import CODE_CATEGORIES, Reward
from rewards.selectors import FREE_CODES_COUNTED, month_of, period_starts, rewards_for_member

logger = logging.getLogger(__name__)

# Members per statement.
RECOMMENDATION_CHUNK = 50_000
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

# The tier's part, for a reward row ``{rw}`` of rec_reward and a tier code ``{tier_code}``
# (checked once per profile).
REWARD_TIER_SQL = (
    "({rw}.eligible_tiers = '[]'::jsonb OR {rw}.eligible_tiers @> jsonb_build_array({tier_code}))"
)
# The member's part, for a reward of price ``{price}`` and id ``{id}`` and a member row ``{m}``
# (balance, and ``blocked``: the limited rewards whose per-member limit the member has reached
# in its current period, from _BLOCKED_SQL): the balance, the per-member limit (every limit is
# at least 1, so a member who redeemed none of it in the period is within it).
REWARD_MEMBER_SQL = "({price} <= {m}.balance AND NOT {id} = ANY({m}.blocked))"
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
_BLOCKED_SQL = f"""
    SELECT u.member_id, array_agg(u.reward_id ORDER BY u.reward_id) AS ids
    FROM ({USED_SQL}) u JOIN rec_reward rw ON rw.id = u.reward_id
    WHERE NOT rw.limit_per_member >= 1 + u.used
    GROUP BY 1
"""  # noqa: S608 - our own fragments, no caller's text

# The active members lo < id <= hi with their tier (their state's, else the lowest active
# tier, as members.selectors says; ``tier_key`` 0 while no tier exists), its code, balance and
# holdout flag.
_MEMBERS_SQL = f"""
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
WITH cm AS MATERIALIZED (
    SELECT k.*, coalesce(b.ids, '{{}}') AS blocked
    FROM ({_MEMBERS_SQL}) k LEFT JOIN ({_BLOCKED_SQL}) b ON b.member_id = k.member_id
)
SELECT cm.member_id, rw.id FROM cm CROSS JOIN rec_reward rw
WHERE {REWARD_TIER_SQL.format(rw="rw", tier_code="cm.tier_code")}
  AND {REWARD_MEMBER_SQL.format(price="rw.points_price", m="cm", id="rw.id")}
"""  # noqa: S608 - our own fragments, no caller's text

# A signal's contribution and its reason packed into one bigint, so that max() over a member's
# signals for an item is the largest contribution, a tie going to the more personal reason
# (the lower place in %(reason_order)s, 1-based); PRIORITY_SQL takes the place back out.
PACK_SQL = "((({s}) * 1e12)::bigint * 16 + (15 - {prio}))"
PRIORITY_SQL = "(15 - mod({best}, 16))::int"
_P_CATEGORY, _P_HISTORY, _P_SEGMENT, _P_TIER, _P_POPULAR = 1, 2, 3, 4, 5


def _pack(s: str, prio: int | str) -> str:
    return PACK_SQL.format(s=s, prio=prio)


# The reason code of a packed ``{best}``.
_REASON_SQL = "((%(reason_order)s)::text[])[" + PRIORITY_SQL + "]"
# A stored item (``{type, id, score, reason, data}``) of a row ``{t}`` (item_type, item_id, s,
# reason, category, segment) for a member of tier ``{tier_code}``.
_ITEM_JSON_SQL = """jsonb_build_object(
    'type', {t}.item_type,
    'id', {t}.item_id,
    'score', round(({t}.s * 100)::numeric, 4)::text,
    'reason', {t}.reason,
    'data', CASE {t}.reason
        WHEN 'popular_in_tier' THEN jsonb_build_object('tier', {tier_code})
        WHEN 'history' THEN jsonb_build_object('category', (
            SELECT rw.category FROM rec_reward rw WHERE rw.id = {t}.item_id))
        WHEN 'spending_category' THEN jsonb_build_object('category', {t}.category)
        WHEN 'popular_in_segment' THEN jsonb_build_object('segment', {t}.segment)
        ELSE '{{}}'::jsonb END)"""


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
    # The members' spending categories: a row per member and category (every member: a
    # category's size counts all who spend in it).
    """
    CREATE TEMP TABLE rec_member_category AS
    SELECT member_id, merchant_category AS category
    FROM points_transaction
    WHERE status = 'processed' AND merchant_category <> ''
      AND occurred_at >= %(since)s AND occurred_at < %(now)s
    GROUP BY 1, 2
    """,
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
_PROFILES_SQL = [
    # Every active member (lo < id <= hi: all of them) with their profile: tier, holdout,
    # spending categories (none for the holdout: popularity only) and segments, sorted arrays.
    f"""
    CREATE TEMP TABLE rec_member_key AS
    SELECT k.member_id, k.tier_key, k.tier_code, k.balance, k.holdout,
           CASE WHEN k.holdout THEN '{{}}'::text[] ELSE coalesce(c.cats, '{{}}') END AS cats,
           coalesce(s.segs, '{{}}') AS segs
    FROM ({_MEMBERS_SQL}) k
    LEFT JOIN (SELECT member_id, array_agg(category ORDER BY category) AS cats
               FROM rec_member_category GROUP BY 1) c ON c.member_id = k.member_id
    LEFT JOIN (SELECT member_id, array_agg(segment_id ORDER BY segment_id) AS segs
               FROM members_segmentmember GROUP BY 1) s ON s.member_id = k.member_id
    ORDER BY k.member_id
    """,  # noqa: S608 - our own fragments, no caller's text
    "CREATE INDEX ON rec_member_key (member_id)",
    "ANALYZE rec_member_key",
    """
    CREATE TEMP TABLE rec_profile AS
    SELECT row_number() OVER (ORDER BY tier_key, holdout, cats, segs) AS id, *
    FROM (SELECT DISTINCT tier_key, tier_code, holdout, cats, segs FROM rec_member_key) d
    """,
    # Each profile's candidates, scored: every signal but history, summed per item, the reason
    # packed in ``best``, the best segment and category for the reason's text; rewards the
    # profile's tier may redeem, events open to its tier and segments.
    f"""
    CREATE TEMP TABLE rec_profile_item AS
    SELECT sg.profile_id, sg.item_type, sg.item_id, sum(sg.s) AS s, max(sg.best) AS best,
           max(sg.category) AS category, max(sg.segment) AS segment,
           max(rw.points_price) AS points_price
    FROM (
        SELECT p.id AS profile_id, 'reward' AS item_type, b.reward_id AS item_id, b.s, b.best,
               NULL::text AS category, NULL::text AS segment
        FROM rec_profile p JOIN rec_base b ON b.tier_key = p.tier_key
        UNION ALL
        (SELECT DISTINCT ON (p.id, x.reward_id) p.id, 'reward', x.reward_id,
                %(w_segment)s * x.rate, {_pack("%(w_segment)s * x.rate", _P_SEGMENT)},
                NULL, x.segment_id::text
         FROM rec_profile p CROSS JOIN unnest(p.segs) AS ps(segment_id)
         JOIN rec_pop_segment x ON x.segment_id = ps.segment_id
         WHERE NOT p.holdout
         ORDER BY p.id, x.reward_id, x.rate DESC, x.segment_id)
        UNION ALL
        (SELECT DISTINCT ON (p.id, x.reward_id) p.id, 'reward', x.reward_id,
                %(w_category)s * x.rate, {_pack("%(w_category)s * x.rate", _P_CATEGORY)},
                x.category, NULL
         FROM rec_profile p CROSS JOIN unnest(p.cats) AS pc(category)
         JOIN rec_pop_category x ON x.category = pc.category
         ORDER BY p.id, x.reward_id, x.rate DESC, x.category)
        UNION ALL
        SELECT p.id, 'event', b.event_id, b.s, b.best, NULL, NULL
        FROM rec_profile p JOIN rec_ebase b ON b.tier_key = p.tier_key
        UNION ALL
        (SELECT DISTINCT ON (p.id, x.event_id) p.id, 'event', x.event_id,
                %(w_segment)s * x.rate, {_pack("%(w_segment)s * x.rate", _P_SEGMENT)},
                NULL, x.segment_id::text
         FROM rec_profile p CROSS JOIN unnest(p.segs) AS ps(segment_id)
         JOIN rec_epop_segment x ON x.segment_id = ps.segment_id
         WHERE NOT p.holdout
         ORDER BY p.id, x.event_id, x.rate DESC, x.segment_id)
        UNION ALL
        (SELECT DISTINCT ON (p.id, x.event_id) p.id, 'event', x.event_id,
                %(w_category)s * x.rate, {_pack("%(w_category)s * x.rate", _P_CATEGORY)},
                x.category, NULL
         FROM rec_profile p CROSS JOIN unnest(p.cats) AS pc(category)
         JOIN rec_epop_category x ON x.category = pc.category
         ORDER BY p.id, x.event_id, x.rate DESC, x.category)
    ) sg
    JOIN rec_profile p ON p.id = sg.profile_id
    LEFT JOIN rec_reward rw ON sg.item_type = 'reward' AND rw.id = sg.item_id
    LEFT JOIN rec_event e ON sg.item_type = 'event' AND e.id = sg.item_id
    WHERE CASE sg.item_type
        WHEN 'reward' THEN rw.id IS NOT NULL
             AND {REWARD_TIER_SQL.format(rw="rw", tier_code="p.tier_code")}
        ELSE e.id IS NOT NULL
             AND (e.target_tiers = '[]'::jsonb
                  OR e.target_tiers @> jsonb_build_array(p.tier_code))
             AND (e.target_segment IS NULL OR e.target_segment = ANY(p.segs)) END
    GROUP BY 1, 2, 3
    HAVING sum(sg.s) > 0
    -- a profile's candidates together, in score order: its scan reads a page or two
    ORDER BY 1, 4 DESC, 2 DESC, 3
    """,  # noqa: S608 - our own fragments, no caller's text
    "ALTER TABLE rec_profile_item ADD COLUMN reason text, ADD COLUMN item jsonb",
    f"UPDATE rec_profile_item SET reason = {_REASON_SQL.format(best='best')}",  # noqa: S608 - our own fragments
    # The item as a member without history gets it, ready to be listed.
    f"""
    UPDATE rec_profile_item pi
    SET item = {_ITEM_JSON_SQL.format(t="pi", tier_code="p.tier_code")}
    FROM rec_profile p WHERE p.id = pi.profile_id
    """,  # noqa: S608 - our own fragments, no caller's text
    "CREATE INDEX ON rec_profile_item (profile_id, s DESC, item_type DESC, item_id)",
    "ANALYZE rec_profile_item",
    "ANALYZE rec_profile",
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
    "rec_member_key",
    "rec_profile",
    "rec_profile_item",
)

# --- One chunk -----------------------------------------------------------------------------
#
# The chunk's members with their profile, balance, the rewards whose limit they have reached
# and their open invitations. A member without history gets the first ``top_n`` items of their
# profile's list they may take (an index scan in score order that stops there), listed as the
# profile stored them. For a member with history, those candidates are merged with the rewards
# their history scores (the history signal added to the profile's score for the same reward, if
# any: the only items that can overtake them), ranked again, and listed. Each member's list is
# written as their row (replacing the previous one in place); the statement answers the
# chunk's active members and the items written. Holdout profiles carry popularity only, and
# holdout members no history.
_CANDIDATES_SQL = f"""
    SELECT pi.item_type, pi.item_id, pi.s, pi.best, pi.category, pi.segment, pi.item
    FROM rec_profile_item pi
    WHERE pi.profile_id = cm.profile_id
      AND CASE pi.item_type
          WHEN 'reward' THEN {
    REWARD_MEMBER_SQL.format(price="pi.points_price", m="cm", id="pi.item_id")
}
          ELSE pi.item_id = ANY(cm.invited) END
    ORDER BY pi.s DESC, pi.item_type DESC, pi.item_id
    LIMIT %(top_n)s
"""  # noqa: S608 - our own fragments, no caller's text

CHUNK_SQL = f"""
WITH cm AS MATERIALIZED (
    SELECT k.member_id, k.tier_code, k.balance, k.holdout, p.id AS profile_id,
           coalesce(b.ids, '{{}}') AS blocked, coalesce(v.ids, '{{}}') AS invited
    FROM rec_member_key k
    JOIN rec_profile p
      ON p.tier_key = k.tier_key AND p.holdout = k.holdout AND p.cats = k.cats
     AND p.segs = k.segs
    LEFT JOIN ({_BLOCKED_SQL}) b ON b.member_id = k.member_id
    LEFT JOIN (
        SELECT i.member_id, array_agg(i.event_id) AS ids
        FROM events_invitation i JOIN rec_event e ON e.id = i.event_id
        WHERE i.member_id > %(lo)s AND i.member_id <= %(hi)s AND i.status = 'invited'
        GROUP BY 1
    ) v ON v.member_id = k.member_id
    WHERE k.member_id > %(lo)s AND k.member_id <= %(hi)s
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
own AS MATERIALIZED (
    SELECT h.member_id, 'reward' AS item_type, rw.id AS item_id,
           %(w_history)s * h.share * ph.rate + coalesce(pi.s, 0) AS s,
           greatest(pi.best, {_pack("%(w_history)s * h.share * ph.rate", _P_HISTORY)}) AS best,
           pi.category, pi.segment
    FROM hist h
    JOIN rec_pop_history ph ON ph.category = h.category
    JOIN rec_reward rw ON rw.id = ph.reward_id
    JOIN cm ON cm.member_id = h.member_id
    LEFT JOIN rec_profile_item pi
      ON pi.profile_id = cm.profile_id AND pi.item_type = 'reward' AND pi.item_id = rw.id
    WHERE {REWARD_TIER_SQL.format(rw="rw", tier_code="cm.tier_code")}
      AND {REWARD_MEMBER_SQL.format(price="rw.points_price", m="cm", id="rw.id")}
),
mixed_members AS MATERIALIZED (SELECT DISTINCT member_id FROM own),
plain AS (
    SELECT cm.member_id, cm.holdout, t.items
    FROM cm CROSS JOIN LATERAL (
        SELECT jsonb_agg(c.item ORDER BY c.s DESC, c.item_type DESC, c.item_id) AS items
        FROM ({_CANDIDATES_SQL}) c
    ) t
    WHERE t.items IS NOT NULL
      AND NOT EXISTS (SELECT FROM mixed_members x WHERE x.member_id = cm.member_id)
),
top AS (
    SELECT cm.member_id, c.item_type, c.item_id, c.s, c.best, c.category, c.segment
    FROM cm JOIN mixed_members x ON x.member_id = cm.member_id
    CROSS JOIN LATERAL ({_CANDIDATES_SQL}) c
),
scored AS (
    SELECT member_id, item_type, item_id, max(s) AS s, max(best) AS best,
           max(category) AS category, max(segment) AS segment
    FROM (SELECT * FROM top UNION ALL SELECT * FROM own) x
    GROUP BY 1, 2, 3
),
ranked AS (
    SELECT k.*, {_REASON_SQL.format(best="k.best")} AS reason,
           row_number() OVER (
               PARTITION BY k.member_id ORDER BY k.s DESC, k.item_type DESC, k.item_id
           ) AS rank
    FROM scored k WHERE k.s > 0
),
mixed AS (
    SELECT cm.member_id, cm.holdout,
           jsonb_agg({_ITEM_JSON_SQL.format(t="r", tier_code="cm.tier_code")} ORDER BY r.rank)
               AS items
    FROM ranked r JOIN cm ON cm.member_id = r.member_id
    WHERE r.rank <= %(top_n)s
    GROUP BY cm.member_id, cm.holdout
),
written AS (
    INSERT INTO insights_recommendation (member_id, run_id, holdout, items, computed_at)
    SELECT member_id, %(run)s, holdout, items, %(now)s
    FROM (SELECT * FROM plain UNION ALL SELECT * FROM mixed) x
    ON CONFLICT (member_id) DO UPDATE
    SET run_id = excluded.run_id, holdout = excluded.holdout, items = excluded.items,
        computed_at = excluded.computed_at
    RETURNING jsonb_array_length(items) AS n
)
SELECT (SELECT count(*) FROM cm), (SELECT coalesce(sum(n), 0) FROM written)
"""  # noqa: S608 - our own fragments, no caller's text

# The rows of the chunk's id range the run did not write: members no longer active, or with
# nothing left to recommend.
STALE_CHUNK_SQL = """
DELETE FROM insights_recommendation
WHERE member_id > %(lo)s AND member_id <= %(hi)s AND run_id <> %(run)s
"""


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
    """The run-wide rates (:data:`_RATES_SQL`) into this session's temporary tables."""
    _temp_tables_drop(cursor)
    for sql in _RATES_SQL:
        cursor.execute(sql, params)
    for table in ("rec_reward", "rec_base", "rec_ebase", "rec_event"):
        cursor.execute(f"ANALYZE {table}")


def _profiles_compute(cursor, params: dict[str, Any]) -> None:
    """The active members' profiles and the profiles' scored candidates
    (:data:`_PROFILES_SQL`); ``params`` with ``lo`` and ``hi`` bounding every member id."""
    for sql in _PROFILES_SQL:
        cursor.execute(sql, params)


def reward_eligible_pairs(
    *, member_ids: list[int], now: dt.datetime | None = None
) -> set[tuple[int, Any]]:
    """``(member id, reward id)`` for every reward each of ``member_ids`` may redeem at ``now``,
    by the job's SQL (:data:`REWARD_AVAILABLE_SQL`, :data:`REWARD_TIER_SQL`,
    :data:`REWARD_MEMBER_SQL` and :data:`_BLOCKED_SQL`, the very text the run uses): what the
    test holds against ``rewards_for_member``."""
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
    lock. A member who is no longer active keeps no row."""
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
        bounds = Member.objects.aggregate(first=Min("pk"), last=Max("pk"))
        with connection.cursor() as cursor:
            # Sorts and hashes of a chunk stay in memory.
            cursor.execute("SET work_mem = '64MB'")
            # Plans of small temporary tables: compiling them costs more than it saves.
            cursor.execute("SET jit = off")
            if bounds["first"] is not None:
                everyone = {**params, "lo": bounds["first"] - 1, "hi": bounds["last"]}
                _rates_compute(cursor, everyone)
                _profiles_compute(cursor, everyone)
                for lo in range(bounds["first"] - 1, bounds["last"], chunk_size):
                    chunk = {**params, "lo": lo, "hi": min(lo + chunk_size, bounds["last"])}
                    with transaction.atomic():
                        cursor.execute(CHUNK_SQL, chunk)
                        chunk_members, chunk_items = cursor.fetchone()
                        cursor.execute(STALE_CHUNK_SQL, chunk)
                    members += chunk_members
                    items += chunk_items
            _temp_tables_drop(cursor)
            cursor.execute("RESET work_mem")
            cursor.execute("RESET jit")
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


@dataclasses.dataclass(frozen=True)
class RecommendedItem:
    """One item of a member's stored recommendations, as the API shows it: ``rank`` from 1,
    ``score`` a Decimal; ``reward`` or ``event`` loaded by :func:`member_recommendations`."""

    rank: int
    item_type: str
    reward_id: uuid.UUID | None
    event_id: uuid.UUID | None
    score: Decimal
    reason: str
    reason_data: dict[str, Any]
    holdout: bool
    reward: Reward | None = None
    event: Event | None = None


def recommendation_items(recommendation: Recommendation) -> list[RecommendedItem]:
    """``recommendation``'s stored items, best first (the reward or event not loaded)."""
    found = []
    for rank, item in enumerate(recommendation.items or [], start=1):
        item_id = uuid.UUID(item["id"])
        reward = item["type"] == Recommendation.ItemType.REWARD
        found.append(
            RecommendedItem(
                rank=rank,
                item_type=item["type"],
                reward_id=item_id if reward else None,
                event_id=None if reward else item_id,
                score=Decimal(item["score"]),
                reason=item["reason"],
                reason_data=item.get("data") or {},
                holdout=recommendation.holdout,
            )
        )
    return found


def member_recommendations(
    *, member: Member, now: dt.datetime | None = None
) -> list[RecommendedItem]:
    """``member``'s stored recommendations, best first, that still hold now: rewards the
    catalogue's own rule (``rewards_for_member``) says they may redeem, events they hold an open
    invitation to (published, before the RSVP deadline, still targeting their tier and
    segment). With the reward and event loaded."""
    now = now or timezone.now()
    if member.status != Member.Status.ACTIVE:
        return []
    stored = Recommendation.objects.filter(member=member).first()
    if stored is None or not stored.items:
        return []
    found = recommendation_items(stored)
    # Evaluated, not nested: the selector's free-code count names the reward table, which a
    # subquery would alias. One query over the catalogue, the rule as the catalogue shows it.
    eligible = {
        reward.pk: reward
        for reward in rewards_for_member(member=member, now=now, include_ended=False).filter(
            ineligible_reason__isnull=True,  # type: ignore[misc]  # an annotation
            pk__in=[item.reward_id for item in found if item.reward_id],
        )
    }
    tier = member_tier_get(member=member)
    targeted = Q(event__target_tiers=[])
    if tier is not None:
        targeted |= Q(event__target_tiers__contains=[tier.code])
    in_segment = SegmentMember.objects.filter(member=member).values("segment_id")
    open_events = {
        invitation.event_id: invitation.event
        for invitation in Invitation.objects.filter(
            member=member,
            status=Invitation.Status.INVITED,
            event__status="published",
            event__rsvp_deadline__gt=now,
            event_id__in=[item.event_id for item in found if item.event_id],
        )
        .filter(targeted)
        .filter(Q(event__target_segment__isnull=True) | Q(event__target_segment__in=in_segment))
        .select_related("event")
    }
    shown = []
    for item in found:
        if item.reward_id in eligible:
            shown.append(dataclasses.replace(item, reward=eligible[item.reward_id]))
        elif item.event_id in open_events:
            shown.append(dataclasses.replace(item, event=open_events[item.event_id]))
    return shown
