"""Reading the catalogue and redemptions.

:func:`rewards_for_member` is the one statement of who may redeem what: the catalogue shows its
``eligible`` and ``ineligible_reason`` per reward, and a redemption asks the same query about
its reward under the member's account lock before it debits anything. Stock and budget are
checked again by the conditional updates that take them (``rewards.services.redemptions``),
which is what makes them hold under concurrency; the query tells the member why in advance.
"""

import datetime as dt
from typing import Any

from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Least
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.timeutils import business_tz
from members.models import Member
from members.selectors import member_tier_get
from points.models import Account
from rewards.errors import RedemptionNotFound, RewardNotFound
from rewards.models import (
    CODE_CATEGORIES,
    BudgetMonth,
    CouponCode,
    LimitPeriod,
    Redemption,
    Reward,
)

# Why a member may not redeem a reward now, in the order they are checked; the code is stable
# (the API's ``ineligible_reason``), the text is for people.
INELIGIBLE_REASONS: dict[str, Any] = {
    "member_inactive": _("Your membership is frozen or closed."),
    "not_started": _("This reward is not available yet."),
    "ended": _("This reward is no longer available."),
    "tier": _("This reward is for other membership tiers."),
    "out_of_stock": _("This reward is out of stock."),
    "budget_exhausted": _("This reward has used its points budget for the month."),
    "limit_reached": _("You have reached the limit for this reward in the current period."),
    "insufficient_points": _("You do not have enough points for this reward."),
}
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FREE_CODES_COUNTED = 1000


def period_starts(moment: dt.datetime) -> dict[str, dt.datetime]:
    """When the current day, month and year began in the business time zone (a lifetime has
    no start)."""
    local = moment.astimezone(business_tz())
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        LimitPeriod.DAY: day,
        LimitPeriod.MONTH: day.replace(day=1),
        LimitPeriod.YEAR: day.replace(month=1, day=1),
        LimitPeriod.LIFETIME: _EPOCH,
    }


def month_of(moment: dt.datetime) -> dt.date:
    """The first day of the business month ``moment`` falls in (a budget's month)."""
    return moment.astimezone(business_tz()).date().replace(day=1)


def free_codes_q(*, today: dt.date, prefix: str = "") -> Q:
    """Coupon codes a redemption may still take: not given, not expired (``prefix``: the path
    from the queried model, e.g. ``"codes__"`` from rewards). The catalogue's count says the same
    in SQL (``rewards_for_member``), and so does the redemption's ``SKIP LOCKED`` take."""
    return Q(**{f"{prefix}redemption__isnull": True}) & (
        Q(**{f"{prefix}expires_on__isnull": True}) | Q(**{f"{prefix}expires_on__gte": today})
    )


def reward_list() -> QuerySet[Reward]:
    """Every reward, for staff (``ineligible_reason`` null: no member to be refused, so the
    catalogue's ``eligible`` filter means the same query for everyone)."""
    return Reward.objects.annotate(ineligible_reason=Value(None, output_field=CharField()))


def reward_get(*, reward_id: Any) -> Reward:
    reward = Reward.objects.filter(pk=reward_id).first()
    if reward is None:
        raise RewardNotFound()
    return reward


def rewards_for_member(
    *,
    member: Member,
    quantity: int = 1,
    now: dt.datetime | None = None,
    include_ended: bool = True,
    balance: int | None = None,
) -> QuerySet[Reward]:
    """The active rewards (without those whose window has closed unless ``include_ended``),
    each annotated for ``member`` redeeming ``quantity``:
    ``stock_left`` (null: unlimited; for coupons also bounded by the unused codes, counted
    up to :data:`FREE_CODES_COUNTED`),
    ``used_in_period`` and ``ineligible_reason`` (null when they may redeem it, else a key of
    :data:`INELIGIBLE_REASONS`)."""
    now = now or timezone.now()
    starts = period_starts(now)
    tier = member_tier_get(member=member)
    if balance is None:  # a caller holding the account lock knows it
        balance = (
            Account.objects.filter(member=member).values_list("balance", flat=True).first() or 0
        )
    today = now.astimezone(business_tz()).date()
    # Unused, unexpired codes, counted through the free-code index up to FREE_CODES_COUNTED: a
    # pool of a million costs what one of a thousand does.
    table = connection.ops.quote_name(CouponCode._meta.db_table)
    reward_table = connection.ops.quote_name(Reward._meta.db_table)
    free_codes = RawSQL(  # noqa: S611 - no caller's text in it
        f"SELECT count(*) FROM (SELECT 1 FROM {table} AS c "  # noqa: S608 - our table names
        f"WHERE c.reward_id = {reward_table}.id AND c.redemption_id IS NULL "
        "AND (c.expires_on IS NULL OR c.expires_on >= %s) LIMIT %s) AS free",
        [today, FREE_CODES_COUNTED],
        output_field=IntegerField(),
    )
    used = (
        Redemption.objects.filter(
            member=member, reward=OuterRef("pk"), created_at__gte=OuterRef("period_start")
        )
        .exclude(status=Redemption.Status.CANCELLED)
        .order_by()
        .values("reward")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    spent = BudgetMonth.objects.filter(reward=OuterRef("pk"), month=month_of(now)).values(
        "points_spent"
    )[:1]
    # In bigint: a price near the column's limit times a quantity passes int4.
    price = Cast("points_price", BigIntegerField()) * Value(quantity)
    tier_ok = Q(eligible_tiers=[])
    if tier is not None:
        tier_ok |= Q(eligible_tiers__contains=[tier.code])
    rewards = (
        Reward.objects.filter(active=True)
        .annotate(
            period_start=Case(
                *(When(limit_period=period, then=Value(start)) for period, start in starts.items()),
                output_field=DateTimeField(),
            ),
            stock_left=Case(
                When(
                    category__in=CODE_CATEGORIES,
                    then=Least(Coalesce("stock", Value(2**31 - 1)), free_codes),
                ),
                default=F("stock"),
                output_field=IntegerField(),
            ),
            used_in_period=Coalesce(Subquery(used, output_field=IntegerField()), 0),
            budget_spent=Coalesce(Subquery(spent, output_field=IntegerField()), 0),
        )
        .annotate(price_total=price)
    )
    whens = [
        When(valid_from__gt=now, then=Value("not_started")),
        When(valid_to__lte=now, then=Value("ended")),
        When(~tier_ok, then=Value("tier")),
        When(stock_left__lt=quantity, then=Value("out_of_stock")),
        When(
            Q(monthly_points_budget__isnull=False)
            & Q(monthly_points_budget__lt=F("budget_spent") + F("price_total")),
            then=Value("budget_exhausted"),
        ),
        When(
            Q(limit_per_member__isnull=False)
            & Q(limit_per_member__lt=F("used_in_period") + quantity),
            then=Value("limit_reached"),
        ),
        When(price_total__gt=balance, then=Value("insufficient_points")),
    ]
    if member.status != Member.Status.ACTIVE:
        whens.insert(0, When(pk__isnull=False, then=Value("member_inactive")))
    if not include_ended:
        rewards = rewards.exclude(valid_to__lte=now)
    return rewards.annotate(ineligible_reason=Case(*whens, default=None, output_field=CharField()))


def reward_for_member(*, member: Member, reward_id: Any, quantity: int = 1) -> Reward:
    reward = rewards_for_member(member=member, quantity=quantity).filter(pk=reward_id).first()
    if reward is None:
        raise RewardNotFound()
    return reward


def redemption_list() -> QuerySet[Redemption]:
    """Every redemption, for staff, with its member, reward and codes (in the order given)."""
    return Redemption.objects.select_related("member", "reward").prefetch_related("codes")


def member_redemptions(*, member: Member) -> QuerySet[Redemption]:
    return redemption_list().filter(member=member)


def redemption_get(*, redemption_id: Any, member: Member | None = None) -> Redemption:
    """A redemption by id; with ``member``, only one of theirs (another's is not found)."""
    redemptions = redemption_list()
    if member is not None:
        redemptions = redemptions.filter(member=member)
    redemption = redemptions.filter(pk=redemption_id).first()
    if redemption is None:
        raise RedemptionNotFound()
    return redemption


def member_redemptions_newest(*, member: Member) -> QuerySet[Redemption]:
    """The member's redemptions, newest first (the console's customer view)."""
    return Redemption.objects.filter(member=member).select_related("reward").order_by("-created_at")
