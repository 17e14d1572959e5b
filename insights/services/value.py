"""Customer value and churn risk: one ``members.MemberValue`` row per member, refreshed with the
KPIs.

:func:`member_values_refresh` guarantees:

* Every member not closed who joined by ``as_of`` has exactly one row as of ``as_of``
  afterwards (``INSERT ... ON CONFLICT (member_id) DO UPDATE``, so a re-run rewrites the same
  rows); rows of closed members are removed. It runs in one transaction: readers see the old
  values or the new ones, never a mix.
* Set-based and chunked: the measures of every member are computed in one statement into a
  temporary table (ranks need the whole population, so a chunk's scores do not depend on which
  chunk it is), then written one statement per ``chunk_size`` member ids. Nothing per member
  reaches Python.
* The measures, as of ``as_of``: ``contribution`` and AUM of the latest snapshot on or before
  it; ``aum_trend`` = (AUM at the last month end - AUM three month ends earlier) / the latter
  (a month end's AUM is the latest snapshot within that month; null when one is missing or
  the earlier one is 0); over the 90 days ending ``as_of``, ``frequency`` = processed
  transactions (``points.Transaction``) + redemptions, ``monetary`` = the transactions'
  amounts; ``recency_days`` = days since the last of either (null: never).
* Scores, 0-100 with 2 places, from percentile ranks over the members refreshed
  (``(rank - 1) / (n - 1)``, ties sharing the lowest rank, in exact numeric arithmetic):
  ``contribution_score`` = 100 x rank of contribution; ``aum_score`` = 100 x (0.7 x rank of
  AUM + 0.3 x rank of trend, a missing trend ranked as 0); ``activity_score`` = 100 x the mean
  of the ranks of recency (more recent is higher, never active lowest), frequency and
  monetary; ``score`` = 0.4 contribution + 0.3 AUM + 0.3 activity.
* Churn risk, with its reasons (codes of ``MemberValue.ChurnReason``):
  ``aum_down_3_months`` when the AUM of each of the last three month ends is lower than the
  month end's before it (four month ends, three falls in a row: a member whose latest month
  went up is not flagged); ``no_activity_90_days`` when ``frequency`` is 0.
  ``churn_risk`` is set exactly when there is a reason.

"The last month end" is ``as_of`` when it is one, else the end of the month before.
"""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from loyalty.timeutils import add_months, business_today, business_tz, month_end
from members.models import MemberValue

VALUE_CHUNK = 50_000
ACTIVITY_DAYS = 90

WEIGHTS = {
    "contribution": Decimal("0.4"),
    "aum": Decimal("0.3"),
    "activity": Decimal("0.3"),
    "aum_level": Decimal("0.7"),
    "aum_trend": Decimal("0.3"),
}

_STAGE_TABLE = "insights_member_value_stage"

MEASURES_SQL = """
CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS
WITH members AS (
    SELECT id FROM members_member
    WHERE status <> 'closed' AND joined_at <= %(as_of)s
),
latest AS (
    SELECT DISTINCT ON (member_id) member_id, aum, contribution
    FROM members_assetsnapshot WHERE as_of <= %(as_of)s
    ORDER BY member_id DESC, as_of DESC
),
month_ends AS (
    SELECT DISTINCT ON (member_id, month) member_id, month, aum
    FROM (
        SELECT member_id, as_of, aum, date_trunc('month', as_of::timestamp)::date AS month
        FROM members_assetsnapshot
        WHERE as_of >= %(m3)s AND as_of <= %(m0_end)s
    ) s
    ORDER BY member_id, month, as_of DESC
),
trend AS (
    SELECT member_id,
           max(aum) FILTER (WHERE month = %(m0)s) AS a0,
           max(aum) FILTER (WHERE month = %(m1)s) AS a1,
           max(aum) FILTER (WHERE month = %(m2)s) AS a2,
           max(aum) FILTER (WHERE month = %(m3)s) AS a3
    FROM month_ends GROUP BY member_id
),
activity AS (
    SELECT member_id, sum(n) AS frequency, sum(amount) AS monetary, max(last) AS last
    FROM (
        SELECT member_id, count(*) FILTER (WHERE occurred_at >= %(since)s) AS n,
               coalesce(sum(amount) FILTER (WHERE occurred_at >= %(since)s), 0) AS amount,
               max(occurred_at) AS last
        FROM points_transaction
        WHERE status = 'processed' AND occurred_at < %(end)s
        GROUP BY member_id
        UNION ALL
        SELECT member_id, count(*) FILTER (WHERE created_at >= %(since)s), 0, max(created_at)
        FROM rewards_redemption
        WHERE created_at < %(end)s
        GROUP BY member_id
    ) a
    GROUP BY member_id
)
SELECT m.id AS member_id,
       coalesce(l.contribution, 0) AS contribution,
       coalesce(l.aum, 0) AS aum,
       CASE WHEN t.a3 > 0 THEN round((t.a0 - t.a3) / t.a3, 4) END AS aum_trend,
       coalesce(t.a3 > t.a2 AND t.a2 > t.a1 AND t.a1 > t.a0, false) AS aum_down,
       %(as_of)s - (a.last AT TIME ZONE %(tz)s)::date AS recency_days,
       coalesce(a.frequency, 0)::integer AS frequency,
       coalesce(a.monetary, 0) AS monetary
FROM members m
LEFT JOIN latest l ON l.member_id = m.id
LEFT JOIN trend t ON t.member_id = m.id
LEFT JOIN activity a ON a.member_id = m.id
"""

# Percentile rank in exact numeric arithmetic: (rank - 1) / (n - 1), 0 for a population of one.
_RANK = "coalesce((rank() OVER ({order}) - 1)::numeric / nullif(count(*) OVER () - 1, 0), 0)"

SCORES_SQL = """
CREATE TEMPORARY TABLE {stage}_scored ON COMMIT DROP AS
SELECT s.*,
       round(100 * r.contribution, 2) AS contribution_score,
       round(100 * (%(aum_level)s * r.aum + %(aum_trend)s * r.trend), 2) AS aum_score,
       round(100 * (r.recency + r.frequency + r.monetary) / 3, 2) AS activity_score
FROM {stage} s
JOIN (
    SELECT member_id,
           {rank_contribution} AS contribution,
           {rank_aum} AS aum,
           {rank_trend} AS trend,
           {rank_recency} AS recency,
           {rank_frequency} AS frequency,
           {rank_monetary} AS monetary
    FROM {stage}
) r ON r.member_id = s.member_id;
CREATE INDEX ON {stage}_scored (member_id)
"""

UPSERT_SQL = """
INSERT INTO members_membervalue (member_id, as_of, score, contribution_score, aum_score,
    activity_score, aum_trend, recency_days, frequency, monetary, churn_risk, churn_reasons,
    refreshed_at)
SELECT s.member_id, %(as_of)s,
       least(100, greatest(0, round(%(w_contribution)s * s.contribution_score
                                    + %(w_aum)s * s.aum_score
                                    + %(w_activity)s * s.activity_score, 2))),
       s.contribution_score, s.aum_score, s.activity_score, s.aum_trend, s.recency_days,
       s.frequency, s.monetary,
       s.aum_down OR s.frequency = 0,
       to_jsonb(array_remove(ARRAY[
           CASE WHEN s.aum_down THEN 'aum_down_3_months' END,
           CASE WHEN s.frequency = 0 THEN 'no_activity_90_days' END
       ]::text[], NULL)),
       %(now)s
FROM {stage}_scored s
WHERE s.member_id > %(lo)s AND s.member_id <= %(hi)s
ON CONFLICT (member_id) DO UPDATE SET
    as_of = EXCLUDED.as_of, score = EXCLUDED.score,
    contribution_score = EXCLUDED.contribution_score, aum_score = EXCLUDED.aum_score,
    activity_score = EXCLUDED.activity_score, aum_trend = EXCLUDED.aum_trend,
    recency_days = EXCLUDED.recency_days, frequency = EXCLUDED.frequency,
    monetary = EXCLUDED.monetary, churn_risk = EXCLUDED.churn_risk,
    churn_reasons = EXCLUDED.churn_reasons, refreshed_at = EXCLUDED.refreshed_at
"""

_RANK_ORDERS = {
    "contribution": "contribution",
    "aum": "aum",
    "trend": "coalesce(aum_trend, 0)",
    "recency": "recency_days DESC NULLS FIRST",  # never active: lowest
    "frequency": "frequency",
    "monetary": "monetary",
}


def _statement(template: str) -> str:
    """A statement of constants only (every value is a bound parameter)."""
    ranks = {
        f"rank_{name}": _RANK.format(order=f"ORDER BY {order}")
        for name, order in _RANK_ORDERS.items()
    }
    return template.format(stage=_STAGE_TABLE, **ranks)


MEASURES_SQL, SCORES_SQL, UPSERT_SQL = map(_statement, (MEASURES_SQL, SCORES_SQL, UPSERT_SQL))
SCORED_RANGE_SQL = _statement("SELECT min(member_id), max(member_id) FROM {stage}_scored")
STAGE_DROP_SQL = _statement("DROP TABLE IF EXISTS {stage}, {stage}_scored")

CLOSED_DELETE_SQL = """
DELETE FROM members_membervalue v USING members_member m
WHERE m.id = v.member_id AND m.status = 'closed'
"""


def last_month_end(as_of: dt.date) -> dt.date:
    """``as_of`` when it is a month's last day, else the last day of the month before."""
    return as_of if as_of == month_end(as_of) else as_of.replace(day=1) - dt.timedelta(days=1)


def member_values_refresh(
    *, as_of: dt.date | None = None, chunk_size: int = VALUE_CHUNK
) -> dict[str, Any]:
    """Refresh every member's value and churn risk as of ``as_of`` (the business date by
    default), as the module says. Returns ``{"as_of", "members", "churn_risk"}``."""
    as_of = as_of or business_today()
    m0 = last_month_end(as_of).replace(day=1)
    tz = business_tz()
    since = dt.datetime.combine(as_of - dt.timedelta(days=ACTIVITY_DAYS - 1), dt.time.min, tz)
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tz)
    params: dict[str, Any] = {
        "as_of": as_of,
        "m0": m0,
        "m1": add_months(m0, -1),
        "m2": add_months(m0, -2),
        "m3": add_months(m0, -3),
        "m0_end": month_end(m0),
        "since": since,
        "end": end,
        "tz": str(tz),
        "aum_level": WEIGHTS["aum_level"],
        "aum_trend": WEIGHTS["aum_trend"],
        "w_contribution": WEIGHTS["contribution"],
        "w_aum": WEIGHTS["aum"],
        "w_activity": WEIGHTS["activity"],
        "now": timezone.now(),
    }
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # Left by an earlier refresh in the same (outer) transaction, if any.
        cursor.execute(STAGE_DROP_SQL)
        cursor.execute(MEASURES_SQL, params)
        for statement in SCORES_SQL.split(";"):
            cursor.execute(statement, params)
        cursor.execute(SCORED_RANGE_SQL)
        first, last = cursor.fetchone()
        if first is not None:
            for lo in range(first - 1, last, chunk_size):
                cursor.execute(UPSERT_SQL, {**params, "lo": lo, "hi": lo + chunk_size})
                written += cursor.rowcount
        cursor.execute(CLOSED_DELETE_SQL)
    churn = MemberValue.objects.filter(churn_risk=True, as_of=as_of).count()
    return {"as_of": as_of, "members": written, "churn_risk": churn}
