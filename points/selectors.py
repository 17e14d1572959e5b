"""Reading points: balances, ledger history, what is about to expire."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet, Sum

from loyalty.errors import NotFound
from loyalty.timeutils import business_date, business_today
from members.models import Member
from members.selectors import member_tiers_for_earning
from points.models import Account, Adjustment, Campaign, Entry, Lot, Transaction
from points.services.earning import (
    campaigns_active,
    earning_points_calculate,
    earning_rule_select,
    earning_rules_active,
)


@dataclass(frozen=True)
class PointsBalance:
    balance: int = 0
    pending: int = 0
    lifetime_earned: int = 0
    lifetime_redeemed: int = 0
    expiring: list[dict] = field(default_factory=list)


def points_account_balance(*, member: Member) -> int:
    """The member's spendable balance (0 before the first credit)."""
    return Account.objects.filter(member=member).values_list("balance", flat=True).first() or 0


def points_balance_get(*, member: Member, expiring_days: int = 90) -> PointsBalance:
    """The member's balance and lifetime totals, the points of transactions received but not
    yet credited (``pending``, an estimate before caps), and what expires in the next
    ``expiring_days`` days, per date."""
    account = Account.objects.filter(member=member).first()
    today = business_today()
    expiring = (
        Lot.objects.filter(
            member=member,
            remaining__gt=0,
            expires_on__gte=today,
            expires_on__lte=today + dt.timedelta(days=expiring_days),
        )
        .values("expires_on")
        .annotate(points=Sum("remaining"))
        .order_by("expires_on")
    )
    return PointsBalance(
        balance=account.balance if account else 0,
        pending=points_pending_estimate(member=member),
        lifetime_earned=account.lifetime_earned if account else 0,
        lifetime_redeemed=account.lifetime_redeemed if account else 0,
        expiring=[{"date": row["expires_on"], "points": row["points"]} for row in expiring],
    )


def points_pending_estimate(*, member: Member, limit: int = 200) -> int:
    """Points the member's unprocessed transactions would earn under today's rules."""
    rows = list(
        Transaction.objects.filter(
            member=member, status=Transaction.Status.PENDING, reverses=""
        ).order_by("id")[:limit]
    )
    if not rows:
        return 0
    rules = earning_rules_active()
    campaigns = campaigns_active()
    tier, multiplier = member_tiers_for_earning(member_ids=[member.pk])[member.pk]
    total = 0
    for row in rows:
        on = business_date(row.occurred_at)
        rule = earning_rule_select(
            rules=rules,
            type=row.type,
            channel=row.channel,
            merchant_category=row.merchant_category,
            amount=row.amount,
            currency=row.currency,
            on=on,
        )
        if rule is not None:
            total += earning_points_calculate(
                rule=rule,
                amount=row.amount,
                on=on,
                tier_code=tier,
                tier_multiplier=multiplier,
                campaigns=campaigns,
            ).points
    return total


def points_entries_list(*, member: Member) -> QuerySet[Entry]:
    """The member's ledger, newest first by when the business happened (then by entry), with
    each entry's earning rule for its description (:mod:`points.descriptions`)."""
    return (
        Entry.objects.filter(member=member)
        .select_related("earning_rule")
        .order_by("-occurred_at", "-id")
    )


def campaigns_by_code() -> dict[str, Campaign]:
    """Every campaign by code (a programme has a few dozen), to name them in descriptions."""
    return {campaign.code: campaign for campaign in Campaign.objects.all()}


def adjustment_list() -> QuerySet[Adjustment]:
    """Manual adjustments with the member, the requester, the decider and the entry joined
    (what the API shows of each)."""
    return Adjustment.objects.select_related("member", "requested_by", "decided_by", "entry")


def adjustment_get(*, adjustment_id: Any) -> Adjustment:
    adjustment = adjustment_list().filter(pk=adjustment_id).first()
    if adjustment is None:
        raise NotFound()
    return adjustment


# --- What the staff console's customer view shows (registered in members.console) -----------


def member_entries_newest(*, member: Member) -> QuerySet[Entry]:
    return (
        Entry.objects.filter(member=member)
        .only(
            "public_id",
            "kind",
            "points",
            "balance_after",
            "description",
            "reference",
            "occurred_at",
            "expires_on",
            "member_id",
        )
        .order_by("-occurred_at", "-id")
    )


def member_lots_newest(*, member: Member) -> QuerySet[Lot]:
    return Lot.objects.filter(member=member).order_by("-earned_on", "-id")


def member_adjustments_newest(*, member: Member) -> QuerySet[Adjustment]:
    return (
        Adjustment.objects.filter(member=member)
        .select_related("requested_by", "decided_by")
        .order_by("-created_at")
    )


def points_balances_of(*, member_ids: list[int]) -> dict[int, int]:
    """Each member's spendable balance (0 without an account), in one query."""
    balances = dict(
        Account.objects.filter(member_id__in=member_ids).values_list("member_id", "balance")
    )
    return {member_id: balances.get(member_id, 0) for member_id in member_ids}


def points_balances_total(*, members: QuerySet[Member]) -> int:
    """The spendable points of all ``members`` together, in one query."""
    return Account.objects.filter(member__in=members).aggregate(total=Sum("balance"))["total"] or 0
