import datetime as dt
import re
from decimal import ROUND_CEILING, Decimal
from typing import Any, cast

from django.db.models import Avg, Count, OuterRef, Prefetch, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from loyalty.errors import NotFound
from loyalty.money import MONEY_QUANTUM
from loyalty.timeutils import business_date, window_start
from members.console import customer_rows_loaders, points_balances
from members.errors import (
    EvaluationRunNotFound,
    MemberNotFound,
    SegmentNotFound,
    TierOverrideNotFound,
)
from members.models import (
    AssetSnapshot,
    Member,
    MemberTier,
    MemberValue,
    Message,
    Segment,
    SegmentMember,
    Tier,
    TierBenefit,
    TierEvaluationRun,
    TierHistory,
    TierOverride,
    customer_no_validator,
)

# RegexValidator compiles ``regex`` in __init__; the stubs still allow the uncompiled str.
_CUSTOMER_NO = re.compile(cast(re.Pattern[str], customer_no_validator.regex).pattern)


def _latest_snapshot(field: str) -> Subquery:
    return Subquery(
        AssetSnapshot.objects.filter(member=OuterRef("pk")).order_by("-as_of").values(field)[:1]
    )


def member_list() -> QuerySet[Member]:
    """Members with their latest AUM, contribution and snapshot date (``latest_*``) and their
    current tier code (``tier_code``; the lowest active tier for members without a state)."""
    return Member.objects.annotate(
        latest_aum=_latest_snapshot("aum"),
        latest_contribution=_latest_snapshot("contribution"),
        latest_as_of=_latest_snapshot("as_of"),
        tier_code=Coalesce("tier_state__tier__code", _lowest_tier_code()),
    )


def _lowest_tier_code() -> Subquery:
    return Subquery(Tier.objects.filter(active=True).order_by("rank").values("code")[:1])


def member_get(*, customer_no: str) -> Member:
    member = member_list().filter(customer_no=customer_no).first()
    if member is None:
        raise MemberNotFound()
    return member


def member_snapshots(*, member: Member, limit: int = 12) -> list[AssetSnapshot]:
    return list(member.snapshots.order_by("-as_of")[:limit])


def member_messages(*, member: Member) -> QuerySet[Message]:
    return Message.objects.filter(member=member).order_by("-created_at")


# --- Tiers ---------------------------------------------------------------------------------


def tier_list(*, include_inactive: bool = False) -> QuerySet[Tier]:
    """Tiers by rank (lowest first), with their benefits prefetched in display order."""
    tiers = Tier.objects.all() if include_inactive else Tier.objects.filter(active=True)
    return tiers.order_by("rank").prefetch_related(
        Prefetch("benefits", queryset=TierBenefit.objects.order_by("position", "id"))
    )


def tier_lowest() -> Tier | None:
    """The base tier: the lowest-ranked active tier, held by every member without a state."""
    return Tier.objects.filter(active=True).order_by("rank").first()


def tier_get(*, code: str) -> Tier | None:
    return Tier.objects.filter(code=code).first()


def member_tier_get(*, member: Member) -> Tier | None:
    """The member's current tier: their state's tier, or the lowest active tier when they have
    none yet; ``None`` only while no tier is configured."""
    state = MemberTier.objects.select_related("tier").filter(member=member).first()
    return state.tier if state else tier_lowest()


def member_tiers_for_earning(*, member_ids: list[int]) -> dict[int, tuple[str | None, Decimal]]:
    """Each member's current tier code and points multiplier, for earning: the lowest active
    tier's for members without a state, ``(None, 1)`` while no tier is configured. Reads
    committed state, so earning after an upgrade uses the new multiplier.

    Two queries whatever the number of members: the consumer asks for a thousand at a time,
    and the ids go as one array parameter (``__any``: an ``IN`` list of a thousand placeholders
    costs more to build and parse than the lookup itself).
    """
    lowest = tier_lowest()
    default = (lowest.code, lowest.multiplier) if lowest else (None, Decimal(1))
    tiers: dict[int, tuple[str | None, Decimal]] = dict.fromkeys(member_ids, default)
    if not member_ids:
        return tiers
    rows = MemberTier.objects.filter(member_id__any=member_ids).values_list(
        "member_id", "tier__code", "tier__multiplier"
    )
    tiers.update((member_id, (code, multiplier)) for member_id, code, multiplier in rows)
    return tiers


def _window_figures(*, member: Member, tier: Tier, as_of: dt.date) -> tuple[Decimal, Decimal]:
    """Average AUM and total contribution over ``tier``'s window ending at ``as_of`` (the same
    window evaluation uses: ``window_months`` calendar months ending with as_of's month)."""
    start = window_start(as_of, tier.window_months)
    figures = member.snapshots.filter(as_of__gte=start, as_of__lte=as_of).aggregate(
        avg_aum=Avg("aum"), contribution=Sum("contribution")
    )
    return figures["avg_aum"] or Decimal(0), figures["contribution"] or Decimal(0)


def _gap(threshold: Decimal | None, value: Decimal) -> Decimal | None:
    """How much more is needed, rounded up to the cent so that adding it is always enough."""
    if threshold is None:
        return None
    return max(Decimal(0), threshold - value).quantize(MONEY_QUANTUM, rounding=ROUND_CEILING)


def member_tier_standing(*, member: Member) -> dict[str, Any]:
    """What ``/api/v1/me/tier/`` shows: the tier, since when, its multiplier and benefits, the
    gaps to the next tier (from the member's latest snapshots) and a downgrade warning while
    the member is inside the grace periods."""
    state = (
        MemberTier.objects.select_related("tier", "qualified_tier", "override")
        .filter(member=member)
        .first()
    )
    tier = state.tier if state else tier_lowest()
    if tier is None:
        return {
            "tier": None,
            "since": None,
            "multiplier": Decimal(1),
            "benefits": [],
            "next_tier": None,
            "downgrade_warning": None,
            "override_until": None,
        }
    tiers = list(tier_list())
    next_tier = next((t for t in tiers if t.rank > tier.rank), None)
    next_info = None
    if next_tier is not None:
        latest = member.snapshots.order_by("-as_of").values_list("as_of", flat=True).first()
        avg_aum, contribution = (
            _window_figures(member=member, tier=next_tier, as_of=latest)
            if latest
            else (Decimal(0), Decimal(0))
        )
        next_info = {
            "code": next_tier.code,
            "name": next_tier.name,
            "rule": next_tier.rule,
            "aum_gap": _gap(next_tier.min_avg_aum, avg_aum),
            "contribution_gap": _gap(next_tier.min_contribution, contribution),
            "as_of": latest,
        }
    warning = None
    if state and state.failing_count > 0 and state.override_id is None:
        left = max(tier.grace_periods - state.failing_count, 0)
        qualified = state.qualified_tier
        warning = {
            "qualified_tier": (
                {"code": qualified.code, "name": qualified.name} if qualified else None
            ),
            "failing_evaluations": state.failing_count,
            "grace_periods": tier.grace_periods,
            "evaluations_left": left,
            "as_of": state.last_as_of,
            "detail": _(
                "Your assets and contribution were below the %(tier)s thresholds in the last "
                "%(count)s evaluation(s). Without a change, your tier will be lowered after "
                "%(left)s more evaluation(s)."
            )
            % {"tier": tier.name, "count": state.failing_count, "left": left},
        }
    override_until = None
    if state and state.override_id is not None:
        override_until = state.override.expires_at  # type: ignore[union-attr]  # override_id is set
    return {
        "tier": tier,
        "since": business_date(state.since) if state else member.joined_at,
        "multiplier": tier.multiplier,
        "benefits": list(tier.benefits.all()) if tier.active else [],
        "next_tier": next_info,
        "downgrade_warning": warning,
        "override_until": override_until,
    }


def member_tier_history(*, member: Member, limit: int = 24) -> list[TierHistory]:
    return list(
        TierHistory.objects.filter(member=member)
        .select_related("from_tier", "to_tier", "run")
        .order_by("-occurred_at", "-id")[:limit]
    )


def tier_evaluation_run_get(*, run_id: Any) -> TierEvaluationRun:
    run = TierEvaluationRun.objects.filter(run_id=run_id).first()
    if run is None:
        raise EvaluationRunNotFound()
    return run


def tier_evaluation_run_list() -> QuerySet[TierEvaluationRun]:
    return TierEvaluationRun.objects.order_by("-created_at")


def tier_override_list() -> QuerySet[TierOverride]:
    return TierOverride.objects.select_related(
        "member", "tier", "requested_by", "decided_by"
    ).order_by("-requested_at")


def tier_override_get(*, override_id: Any) -> TierOverride:
    override = tier_override_list().filter(id=override_id).first()
    if override is None:
        raise TierOverrideNotFound()
    return override


def tier_member_counts() -> dict[str, int]:
    """Members (not closed) per current tier code."""
    counts: dict[str, int] = {}
    rows = (
        Member.objects.exclude(status=Member.Status.CLOSED)
        .annotate(code=Coalesce("tier_state__tier__code", _lowest_tier_code()))
        .values("code")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[row["code"]] = row["n"]
    return counts


# --- For the API ---------------------------------------------------------------------------


def member_exists(*, customer_no: str) -> bool:
    return Member.objects.filter(customer_no=customer_no).exists()


def member_ids_by_customer_no(*, customer_nos: set[str]) -> dict[str, int]:
    """Member ids by customer number, for the known ones among ``customer_nos`` (one query,
    the numbers bound as one array). A value that is no customer number (text PostgreSQL cannot
    hold among them: a NUL, a lone surrogate) is unknown without being sent."""
    wellformed = [no for no in customer_nos if isinstance(no, str) and _CUSTOMER_NO.fullmatch(no)]
    if not wellformed:
        return {}
    rows = Member.objects.filter(customer_no__any=wellformed)
    return dict(rows.values_list("customer_no", "id"))


def member_message_get(*, member: Member, message_id: Any) -> Message:
    """One of ``member``'s messages; another member's answers not found, like a missing one."""
    message = member_messages(member=member).filter(id=message_id).first()
    if message is None:
        raise NotFound()
    return message


def segment_list() -> QuerySet[Segment]:
    return Segment.objects.all()


def segment_get(*, segment_id: Any) -> Segment:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise SegmentNotFound()
    return segment


def member_segments(*, member_ids: list[int], segment_ids: set[Any]) -> dict[int, frozenset]:
    """Which of ``segment_ids`` each of ``member_ids`` is in, as last refreshed (one query;
    none when ``segment_ids`` is empty)."""
    if not segment_ids:
        return {}
    found: dict[int, set] = {}
    rows = SegmentMember.objects.filter(member_id__in=member_ids, segment_id__in=segment_ids)
    for member_id, segment_id in rows.values_list("member_id", "segment_id"):
        found.setdefault(member_id, set()).add(segment_id)
    return {member_id: frozenset(ids) for member_id, ids in found.items()}


def member_value_get(*, member: Member) -> MemberValue | None:
    """The member's customer value as last refreshed, or ``None`` before the first refresh."""
    return MemberValue.objects.filter(member=member).first()


# --- The staff console's customer view ------------------------------------------------------
#
# One page per member in the console shows what every app knows about them: members' own rows
# here, the other apps' rows through what they registered (``members.console``). Each section
# is one bounded query: the newest ``limit`` rows plus one more, which says whether there are
# more (the page then links to the full list) without counting a long ledger.

CUSTOMER_VIEW_LIMIT = 20


class CustomerSection:
    """The newest rows of one kind for one member, and whether older ones exist."""

    __slots__ = ("more", "rows")

    def __init__(self, *, rows: list[Any], more: bool) -> None:
        self.rows = rows
        self.more = more


def _newest(queryset: QuerySet, *, limit: int) -> CustomerSection:
    rows = list(queryset[: limit + 1])
    return CustomerSection(rows=rows[:limit], more=len(rows) > limit)


def customer_view_sections(
    *, member: Member, limit: int = CUSTOMER_VIEW_LIMIT
) -> dict[str, CustomerSection]:
    """The member's newest tier history, overrides, asset snapshots and messages, and what the
    other apps registered (ledger entries, lots, adjustments, redemptions, invitations): at
    most ``limit`` rows each, newest first, one query per section."""
    sections = {
        "tier_history": TierHistory.objects.filter(member=member)
        .select_related("from_tier", "to_tier")
        .order_by("-occurred_at", "-id"),
        "overrides": TierOverride.objects.filter(member=member)
        .select_related("tier", "requested_by", "decided_by")
        .order_by("-requested_at"),
        "snapshots": member.snapshots.order_by("-as_of"),
        "messages": Message.objects.filter(member=member)
        .defer("body", "data")
        .order_by("-created_at"),
    }
    for name, load in customer_rows_loaders().items():
        sections[name] = load(member=member)
    return {name: _newest(rows, limit=limit) for name, rows in sections.items()}


def customer_view_balance(*, member: Member) -> int | None:
    """The member's spendable balance; ``None`` without the points app."""
    points = points_balances()
    return None if points is None else points.balances(member_ids=[member.pk])[member.pk]


def members_points_balances(*, member_ids: list[int]) -> dict[int, int]:
    """Each member's spendable balance (0 without an account), one query for all of them;
    empty without the points app."""
    points = points_balances()
    return {} if points is None else points.balances(member_ids=member_ids)


def members_points_total(*, members: QuerySet[Member]) -> int:
    """The spendable points of all ``members`` together, one query; 0 without the points app."""
    points = points_balances()
    return 0 if points is None else points.total(members=members)
