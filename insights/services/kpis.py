"""The programme's KPIs for a period of business days, overall and per tier, and their monthly
snapshots.

:func:`kpis_compute` is the one definition: the endpoint calls it for any period, and
:func:`kpi_snapshots_refresh` stores what it computes for a closed month (so a snapshot and a
live computation of the same month agree, as of when each ran).

A period is ``[from, to]``, business days (``BUSINESS_TIME_ZONE``, Asia/Shanghai), both
included: timestamps from the start of ``from`` to the start of the day after ``to``. A
member's tier is their current tier (``MemberTier``; the lowest active tier for a member
without one, as ``members.selectors`` says); a member is *closed by* a day when
``status == 'closed'`` and ``status_changed_at`` falls on or before it.

Definitions:

* ``members_total``: members at the end of the period (joined on or before ``to``, not closed
  by ``to``); ``members_new``: joined within the period (also those who left inside it).
* ``growth_rate`` = ``members_new`` / members at the start (joined before ``from``, not
  closed by the day before ``from``).
* ``retention_rate`` = (``members_total`` - new members still members at the end) / members
  at the start: the share of the start's members still members at the end.
* ``members_active``: members with at least one processed transaction (``occurred_at``) or one
  redemption (``created_at``) in the period.
* ``avg_aum``, ``avg_contribution``: averages over the members at the end of the period of
  their latest asset snapshot on or before ``to`` (members without one left out).
* ``points_issued``: ``earn`` and ``bonus`` entries in the period; ``points_redeemed``:
  ``redeem`` debits less ``refund`` credits in the period; ``points_expired``: ``expire`` and
  ``forfeit`` debits in the period (all three as positive numbers, by ``occurred_at``);
  ``points_outstanding``: the sum of every entry that occurred by the end of ``to``.
* ``points_liability`` = ``points_outstanding`` x ``ProgrammeSettings.point_value``;
  ``points_liability_net`` and ``breakage_rate``: net of expected breakage, as
  :mod:`insights.services.liability` estimates it as of ``to``; per tier, the programme's
  breakage rate applied to the tier's gross liability.
* ``redemption_rate`` = ``points_redeemed`` / ``points_issued``.
* ``event_acceptance_rate`` = invitations accepted (``accepted``, ``attended``, ``no_show``) /
  all invitations, of events starting in the period; ``event_attendance_rate`` = ``attended``
  / accepted (the same three statuses).
* ``satisfaction_avg``: the average event feedback ``rating`` (1-5) given in the period.
* ``nps`` = % of scores 9-10 minus % of scores 0-6, over the event feedback ``nps`` given in
  the period and the survey responses (``SurveyResponse.score``) answered in it (-100 to 100).
* ``recommended_redemption_rate``: over the members holding personalised recommendations (the
  latest run's rows outside the holdout, with at least one item), redemptions made in the period
  (not cancelled) of a reward recommended to them, per member; ``holdout_redemption_rate``: the
  same over the holdout, whose recommendations are popularity only;
  ``recommendation_uplift`` = the first minus the second (null when either is): what
  personalisation adds, in redemptions per member. The holdout is the same members every run
  (:mod:`insights.services.recommendations`), so the two groups are comparable.

Rates are ``Decimal`` with 4 places (0.1234 is 12.34%), null when their denominator is 0;
``nps`` and ``satisfaction_avg`` have 2 places, null without a score; money (AUM,
contribution, liability) has 2 places; counts and points are integers. No float anywhere.

Set-based: one aggregate statement per source (members, the ledger, transactions and
redemptions, snapshots, invitations, feedback and surveys, recommendations, lots, lot
debits), each grouped by tier where it has one, in one transaction with ``work_mem`` raised
for it (:data:`KPI_WORK_MEM`). The ledger is scanned twice per call: once for the period's movements
and balances, once (its ``expire``, ``forfeit`` and ``reverse`` entries, for their lot
consumptions) by the breakage estimate. Python adds up a handful of rows per tier, never a row
per member.
"""

import csv
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from insights.models import KpiSnapshot
from insights.selectors import (
    KPI_FIELDS,
    kpi_snapshot_figures,
)
from insights.services.liability import (
    cohorts,
    liability_figures,
    redeemed_share,
    ultimate_rates,
)
from loyalty.money import money_quantize
from loyalty.selectors import programme_settings_get
from loyalty.timeutils import add_months, business_today, business_tz, month_end
from members.models import Tier
from members.selectors import tier_lowest

RATE_QUANTUM = Decimal("0.0001")
SCORE_QUANTUM = Decimal("0.01")
# Memory for each sort or hash of a KPI statement (PostgreSQL's work_mem, per transaction).
KPI_WORK_MEM = "128MB"

# The tier every row of a member is counted under: ``{tier}`` in the statements below, and
# ``{tier_join_<alias>}`` joins the tier state on the member of the row aliased ``<alias>``.
_TIER = "coalesce(mt.tier_id, %(lowest)s)"
_TIER_JOIN = "LEFT JOIN members_membertier mt ON mt.member_id = {alias}.member_id"
_CLOSED_BY_END = "(m.status = 'closed' AND m.status_changed_at < %(end)s)"
_CLOSED_BY_START = "(m.status = 'closed' AND m.status_changed_at < %(start)s)"


def _statement(template: str) -> str:
    """A statement of constants only (no value of a request's goes in: those are bound)."""
    return template.format(
        tier=_TIER,
        **{f"tier_join_{alias}": _TIER_JOIN.format(alias=alias) for alias in "aehis"},
        closed_by_end=_CLOSED_BY_END,
        closed_by_start=_CLOSED_BY_START,
    )


MEMBERS_SQL = _statement("""
SELECT {tier} AS tier_id,
       count(*) FILTER (WHERE m.joined_at <= %(to)s AND NOT {closed_by_end}) AS total,
       count(*) FILTER (WHERE m.joined_at < %(from)s AND NOT {closed_by_start}) AS start,
       count(*) FILTER (WHERE m.joined_at BETWEEN %(from)s AND %(to)s) AS new,
       count(*) FILTER (WHERE m.joined_at BETWEEN %(from)s AND %(to)s
                          AND NOT {closed_by_end}) AS new_staying
FROM members_member m
LEFT JOIN members_membertier mt ON mt.member_id = m.id
WHERE m.joined_at <= %(to)s
GROUP BY 1
""")

# The ledger, read once: the period's movements and the balance at its end.
LEDGER_SQL = _statement("""
SELECT {tier} AS tier_id,
       coalesce(sum(e.points) FILTER (WHERE e.occurred_at >= %(start)s
                                        AND e.kind IN ('earn', 'bonus')), 0) AS issued,
       coalesce(-sum(e.points) FILTER (WHERE e.occurred_at >= %(start)s
                                         AND e.kind IN ('redeem', 'refund')), 0) AS redeemed,
       coalesce(-sum(e.points) FILTER (WHERE e.occurred_at >= %(start)s
                                         AND e.kind IN ('expire', 'forfeit')), 0) AS expired,
       coalesce(sum(e.points), 0) AS outstanding
FROM points_entry e
{tier_join_e}
WHERE e.occurred_at < %(end)s
GROUP BY 1
""")

ACTIVE_SQL = _statement("""
SELECT {tier} AS tier_id, count(*) AS active
FROM (
    SELECT t.member_id FROM points_transaction t
    WHERE t.status = 'processed' AND t.occurred_at >= %(start)s AND t.occurred_at < %(end)s
    UNION
    SELECT r.member_id FROM rewards_redemption r
    WHERE r.created_at >= %(start)s AND r.created_at < %(end)s
) a
{tier_join_a}
GROUP BY 1
""")

ASSETS_SQL = _statement("""
SELECT {tier} AS tier_id, avg(s.aum) AS aum, avg(s.contribution) AS contribution
FROM (
    -- Backwards along snapshot_member_as_of_uniq (member_id, as_of) INCLUDE (aum,
    -- contribution): the latest of each member from the index alone, no sort.
    SELECT DISTINCT ON (member_id) member_id, aum, contribution
    FROM members_assetsnapshot WHERE as_of <= %(to)s
    ORDER BY member_id DESC, as_of DESC
) s
JOIN members_member m ON m.id = s.member_id
{tier_join_s}
WHERE m.joined_at <= %(to)s
  AND NOT (m.status = 'closed' AND m.status_changed_at < %(end)s)
GROUP BY 1
""")

INVITATIONS_SQL = _statement("""
SELECT {tier} AS tier_id,
       count(*) AS invited,
       count(*) FILTER (WHERE i.status IN ('accepted', 'attended', 'no_show')) AS accepted,
       count(*) FILTER (WHERE i.status = 'attended') AS attended
FROM events_invitation i
JOIN events_event ev ON ev.id = i.event_id
{tier_join_i}
WHERE ev.starts_at >= %(start)s AND ev.starts_at < %(end)s
GROUP BY 1
""")

# Scores of the period: event feedback (rating and NPS) and survey answers (NPS only).
SCORES_SQL = _statement("""
SELECT {tier} AS tier_id,
       sum(s.rating) AS rating_sum, count(s.rating) AS ratings,
       count(*) FILTER (WHERE s.nps >= 9) AS promoters,
       count(*) FILTER (WHERE s.nps <= 6) AS detractors,
       count(*) AS scores
FROM (
    SELECT i.member_id, f.rating, f.nps
    FROM events_feedback f JOIN events_invitation i ON i.id = f.invitation_id
    WHERE f.created_at >= %(start)s AND f.created_at < %(end)s
    UNION ALL
    SELECT r.member_id, NULL, r.score
    FROM insights_surveyresponse r
    WHERE r.answered_at >= %(start)s AND r.answered_at < %(end)s
) s
{tier_join_s}
GROUP BY 1
""")

# Redemptions of a recommended reward per member holding recommendations, treated and holdout.
RECOMMENDATIONS_SQL = _statement("""
WITH held AS (
    SELECT member_id, holdout, items FROM insights_recommendation
    WHERE jsonb_array_length(items) > 0
),
took AS (
    SELECT h.member_id, count(DISTINCT r.id) AS redemptions
    FROM held h
    CROSS JOIN LATERAL jsonb_array_elements(h.items) AS i(item)
    JOIN rewards_redemption r
      ON r.member_id = h.member_id AND r.reward_id = (i.item ->> 'id')::uuid
    WHERE i.item ->> 'type' = 'reward' AND r.status <> 'cancelled'
      AND r.created_at >= %(start)s AND r.created_at < %(end)s
    GROUP BY 1
)
SELECT {tier} AS tier_id,
       count(*) FILTER (WHERE NOT h.holdout) AS treated,
       coalesce(sum(t.redemptions) FILTER (WHERE NOT h.holdout), 0) AS treated_redemptions,
       count(*) FILTER (WHERE h.holdout) AS holdout,
       coalesce(sum(t.redemptions) FILTER (WHERE h.holdout), 0) AS holdout_redemptions
FROM held h
LEFT JOIN took t ON t.member_id = h.member_id
{tier_join_h}
GROUP BY 1
""")

_ZERO = {
    "total": 0,
    "start": 0,
    "new": 0,
    "new_staying": 0,
    "issued": 0,
    "redeemed": 0,
    "expired": 0,
    "outstanding": 0,
    "active": 0,
    "aum_sum": Decimal(0),
    "contribution_sum": Decimal(0),
    "assets": 0,
    "invited": 0,
    "accepted": 0,
    "attended": 0,
    "rating_sum": 0,
    "ratings": 0,
    "promoters": 0,
    "detractors": 0,
    "scores": 0,
    "treated": 0,
    "treated_redemptions": 0,
    "holdout": 0,
    "holdout_redemptions": 0,
}


def _rate(numerator: Any, denominator: Any) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATE_QUANTUM, ROUND_HALF_UP)


def _score(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(SCORE_QUANTUM, ROUND_HALF_UP)


def period_bounds(day_from: dt.date, day_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants a period of business days spans: [start of ``from``, start of the day
    after ``to``)."""
    tz = business_tz()
    start = dt.datetime.combine(day_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(day_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def _figures(counts: dict[str, Any], *, share: Decimal | None, point_value) -> dict[str, Any]:
    """The KPI keys from one group's counts (a tier's, or everyone's)."""
    assets = counts["assets"]
    scores = counts["scores"]
    return {
        "members_total": counts["total"],
        "members_new": counts["new"],
        "growth_rate": _rate(counts["new"], counts["start"]),
        "members_active": counts["active"],
        "retention_rate": _rate(counts["total"] - counts["new_staying"], counts["start"]),
        "avg_aum": money_quantize(counts["aum_sum"] / assets) if assets else None,
        "avg_contribution": (
            money_quantize(counts["contribution_sum"] / assets) if assets else None
        ),
        "points_issued": counts["issued"],
        "points_redeemed": counts["redeemed"],
        "points_expired": counts["expired"],
        "points_outstanding": counts["outstanding"],
        **liability_figures(
            outstanding_points=counts["outstanding"], share=share, point_value=point_value
        ),
        "redemption_rate": _rate(counts["redeemed"], counts["issued"]),
        "event_acceptance_rate": _rate(counts["accepted"], counts["invited"]),
        "event_attendance_rate": _rate(counts["attended"], counts["accepted"]),
        "satisfaction_avg": (
            _score(Decimal(counts["rating_sum"]) / Decimal(counts["ratings"]))
            if counts["ratings"]
            else None
        ),
        "nps": (
            _score(Decimal(100) * (counts["promoters"] - counts["detractors"]) / Decimal(scores))
            if scores
            else None
        ),
        **_uplift(counts),
    }


def _uplift(counts: dict[str, Any]) -> dict[str, Decimal | None]:
    treated = _rate(counts["treated_redemptions"], counts["treated"])
    holdout = _rate(counts["holdout_redemptions"], counts["holdout"])
    return {
        "recommended_redemption_rate": treated,
        "holdout_redemption_rate": holdout,
        "recommendation_uplift": (
            None if treated is None or holdout is None else treated - holdout
        ),
    }


def _group_counts(*, day_from: dt.date, day_to: dt.date) -> dict[int | None, dict[str, Any]]:
    """Each tier's counts and sums over the period (``None``: members with no tier at all)."""
    start, end = period_bounds(day_from, day_to)
    lowest = tier_lowest()
    params = {
        "from": day_from,
        "to": day_to,
        "start": start,
        "end": end,
        "lowest": lowest.pk if lowest else None,
    }
    groups: dict[int | None, dict[str, Any]] = {}

    def add(sql: str, columns: tuple[str, ...]) -> None:
        cursor.execute(sql, params)
        for tier_id, *values in cursor.fetchall():
            group = groups.setdefault(tier_id, dict(_ZERO))
            for column, value in zip(columns, values, strict=True):
                group[column] += value or 0

    with connection.cursor() as cursor:
        add(MEMBERS_SQL, ("total", "start", "new", "new_staying"))
        add(LEDGER_SQL, ("issued", "redeemed", "expired", "outstanding"))
        add(ACTIVE_SQL, ("active",))
        add(INVITATIONS_SQL, ("invited", "accepted", "attended"))
        add(SCORES_SQL, ("rating_sum", "ratings", "promoters", "detractors", "scores"))
        add(
            RECOMMENDATIONS_SQL,
            ("treated", "treated_redemptions", "holdout", "holdout_redemptions"),
        )
        # Averages add up as sums and counts, so the overall one is exact.
        cursor.execute(
            ASSETS_SQL.replace(
                "avg(s.aum) AS aum, avg(s.contribution) AS contribution",
                "sum(s.aum), sum(s.contribution), count(*)",
            ),
            params,
        )
        for tier_id, aum, contribution, members in cursor.fetchall():
            group = groups.setdefault(tier_id, dict(_ZERO))
            group["aum_sum"] += aum
            group["contribution_sum"] += contribution
            group["assets"] += members
    return groups


def kpis_compute(*, day_from: dt.date, day_to: dt.date) -> dict[str, Any]:
    """The KPIs of ``[day_from, day_to]``: every key of :data:`KPI_FIELDS` for the programme,
    plus ``by_tier``: the same keys per tier code (every active tier, and any inactive one a
    member still holds), lowest rank first."""
    if day_from > day_to:
        raise ValueError("day_from is after day_to")
    with transaction.atomic(), connection.cursor() as cursor:
        # The joins to the tier states hash a row per member with a state: with the default
        # work_mem (4 MB) that hash spills to disk in batches, and the ledger's millions of
        # rows are written to temporary files with it. For this transaction only.
        cursor.execute("SELECT set_config('work_mem', %s, true)", [KPI_WORK_MEM])
        groups = _group_counts(day_from=day_from, day_to=day_to)
        programme = cohorts(as_of=day_to)
    share = redeemed_share(programme, ultimate_rates(programme))
    point_value = programme_settings_get().point_value
    total = dict(_ZERO)
    for counts in groups.values():
        for key, value in counts.items():
            total[key] += value
    result = _figures(total, share=share, point_value=point_value)
    held = set(groups)
    tiers = Tier.objects.filter(pk__in=[pk for pk in held if pk is not None]) | Tier.objects.filter(
        active=True
    )
    result["by_tier"] = {
        tier.code: _figures(groups.get(tier.pk, _ZERO), share=share, point_value=point_value)
        for tier in tiers.distinct().order_by("rank")
    }
    return result


# --- Snapshots ----------------------------------------------------------------------------


def figures_to_json(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures as a snapshot keeps them: decimals as strings (``DjangoJSONEncoder``'s form)."""
    return {
        key: str(value) if isinstance(value, Decimal) else value for key, value in figures.items()
    }


def month_closed(month: dt.date, *, today: dt.date | None = None) -> bool:
    """Whether ``month`` (any day of it) is over in business time."""
    return month_end(month) < (today or business_today())


def kpi_snapshots_refresh(*, month: dt.date | None = None) -> dict[str, Any]:
    """Compute and store the KPIs of ``month`` (any day of it; by default the month before
    the current business month), which must be over: one :class:`KpiSnapshot` overall
    (``tier_code=""``) and one per tier, written with ``INSERT ... ON CONFLICT DO UPDATE`` in
    one transaction, so running it again rewrites the same rows (the latest figures) and
    never adds any. Returns ``{"month", "rows"}``."""
    today = business_today()
    first = (month or add_months(today.replace(day=1), -1)).replace(day=1)
    if not month_closed(first, today=today):
        raise ValueError(f"{first:%Y-%m} is not over yet")
    figures = kpis_compute(day_from=first, day_to=month_end(first))
    by_tier = figures.pop("by_tier")
    rows = [("", figures), *by_tier.items()]
    now = timezone.now()
    with transaction.atomic():
        KpiSnapshot.objects.bulk_create(
            [
                KpiSnapshot(
                    month=first, tier_code=code, figures=figures_to_json(values), computed_at=now
                )
                for code, values in rows
            ],
            update_conflicts=True,
            unique_fields=["month", "tier_code"],
            update_fields=["figures", "computed_at"],
        )
    return {"month": first, "rows": len(rows)}


def kpis_for_period(*, day_from: dt.date, day_to: dt.date) -> dict[str, Any]:
    """The KPIs of ``[day_from, day_to]`` as the endpoint answers them: from the month's
    snapshots when the period is exactly one closed calendar month that has an overall
    snapshot, else computed now (:func:`kpis_compute`, the same definition)."""
    if (
        day_from.day == 1
        and day_to == month_end(day_from)
        and month_closed(day_from)
        and (stored := kpi_snapshot_figures(month=day_from)) is not None
    ):
        return stored
    return kpis_compute(day_from=day_from, day_to=day_to)


# --- CSV ------------------------------------------------------------------------------------

CSV_HEADER = ["from", "to", "tier", *KPI_FIELDS]


def kpis_csv_write(*, figures: dict[str, Any], day_from: dt.date, day_to: dt.date, out) -> int:
    """Write ``figures`` (:func:`kpis_compute`'s shape) to ``out`` as CSV: a header, one row
    for the programme (``tier`` empty) and one per tier; empty cells for nulls, decimals as
    they print. Returns the data rows written."""
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    groups = [("", figures), *figures["by_tier"].items()]
    for code, values in groups:
        writer.writerow(
            [day_from.isoformat(), day_to.isoformat(), code]
            + ["" if values[key] is None else str(values[key]) for key in KPI_FIELDS]
        )
    return len(groups)
