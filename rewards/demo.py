"""Demo data for rewards: a catalogue modelled on Chinese retail banks' points malls (household
gifts, coffee and ride-hailing coupons with code pools, a card fee waiver, airport lounges and a
health check for the top tiers), and a few redemptions by demo members who have the points.

``seed_rewards`` is idempotent: rewards are matched by code (staff edits survive a re-run), a
code pool is generated only while it is empty, and the demo redemptions are made only while
there are no redemptions at all. Everything goes through the services, so the catalogue has its
audit rows and the redemptions their ledger entries, lots consumed and member messages.
"""

import datetime as dt
from decimal import Decimal
from typing import Any, TextIO

from django.contrib.auth.models import User
from django.utils import timezone

from loyalty.errors import LoyaltyError
from members.demo_tiers import seed_tiers
from members.models import Member
from rewards.models import Category, LimitPeriod, Redemption, Reward
from rewards.selectors import rewards_for_member
from rewards.services.catalogue import reward_create
from rewards.services.codes import codes_generate
from rewards.services.redemptions import (
    redemption_cancel,
    redemption_create,
    redemption_fulfil,
)

# The demo ladder's upper tiers (members.demo_tiers.LADDER).
TOP_TIERS = ["PLATINUM", "DIAMOND", "PRIVATE"]
HIGHEST_TIERS = ["DIAMOND", "PRIVATE"]

CATALOGUE: list[dict[str, Any]] = [
    {
        "code": "coffee-starbucks-tall",
        "category": Category.COUPON,
        "name_en": "Starbucks tall beverage coupon",
        "name_zh_hans": "星巴克中杯饮品券",
        "description_en": (
            "One tall handcrafted beverage at any Starbucks in mainland China. "
            "The code is valid for 30 days once redeemed."
        ),
        "description_zh_hans": (
            "全国星巴克门店（不含港澳台）任选中杯手工饮品一杯，"  # noqa: RUF001
            "兑换后30天内有效。"
        ),
        "points_price": 1200,
        "limit_per_member": 5,
        "limit_period": LimitPeriod.MONTH,
        "monthly_points_budget": 360_000,
        "low_codes_threshold": 30,
        "position": 10,
        "pool": {"count": 300, "prefix": "SBUX", "length": 10},
    },
    {
        "code": "coffee-luckin",
        "category": Category.COUPON,
        "name_en": "Luckin Coffee drink coupon",
        "name_zh_hans": "瑞幸咖啡饮品券",
        "description_en": "Any one drink at Luckin Coffee, in store or in the app.",
        "description_zh_hans": "瑞幸咖啡门店或App任选饮品一杯。",
        "points_price": 600,
        "limit_per_member": 10,
        "limit_period": LimitPeriod.MONTH,
        "position": 20,
        "pool": {"count": 300, "prefix": "LK", "length": 12},
    },
    {
        "code": "ride-didi-15",
        "category": Category.VOUCHER,
        "name_en": "DiDi ride-hailing voucher, CNY 15",
        "name_zh_hans": "滴滴出行15元打车券",
        "description_en": "CNY 15 off a DiDi Express or Premier ride of CNY 30 or more.",
        "description_zh_hans": "滴滴快车/专车单笔满30元立减15元。",
        "points_price": 1000,
        "limit_per_member": 2,
        "limit_period": LimitPeriod.DAY,
        "position": 30,
        "pool": {"count": 200, "prefix": "DIDI", "length": 10},
    },
    {
        "code": "gift-thermos",
        "category": Category.GIFT,
        "name_en": "Branded stainless-steel thermos, 500 ml",
        "name_zh_hans": "品牌不锈钢保温杯 500ml",
        "description_en": "Keeps drinks hot for 12 hours. Delivered to your address in 7 days.",
        "description_zh_hans": "12小时长效保温，7个工作日内寄送到家。",  # noqa: RUF001
        "points_price": 4800,
        "stock": 300,
        "limit_per_member": 2,
        "limit_period": LimitPeriod.MONTH,
        "position": 40,
    },
    {
        "code": "gift-air-fryer",
        "category": Category.GIFT,
        "name_en": "Air fryer, 5 L",
        "name_zh_hans": "5L大容量空气炸锅",
        "description_en": "Oil-free frying with a visible window. Points plus CNY 99.00.",
        "description_zh_hans": "可视窗口，无油煎炸。积分+99元即可兑换。",  # noqa: RUF001
        "points_price": 9900,
        "cash_price": Decimal("99.00"),
        "stock": 80,
        "limit_per_member": 1,
        "limit_period": LimitPeriod.YEAR,
        "position": 50,
    },
    {
        "code": "gift-rice-cooker",
        "category": Category.GIFT,
        "name_en": "Smart rice cooker, 4 L",
        "name_zh_hans": "智能电饭煲 4L",
        "description_en": "IH heating, 24-hour timer. Delivered to your address in 7 days.",
        "description_zh_hans": "IH电磁加热，24小时预约，7个工作日内寄送到家。",  # noqa: RUF001
        "points_price": 26_000,
        "stock": 50,
        "limit_per_member": 1,
        "limit_period": LimitPeriod.LIFETIME,
        "position": 60,
    },
    {
        "code": "card-annual-fee-waiver",
        "category": Category.FEE_WAIVER,
        "name_en": "Credit card annual fee waiver",
        "name_zh_hans": "信用卡年费减免",
        "description_en": "One year's annual fee of your main credit card, waived.",
        "description_zh_hans": "减免主卡一年年费。",
        "points_price": 8000,
        "limit_per_member": 1,
        "limit_period": LimitPeriod.YEAR,
        "position": 70,
    },
    {
        "code": "airport-lounge-pass",
        "category": Category.EXPERIENCE,
        "name_en": "Airport VIP lounge pass",
        "name_zh_hans": "机场贵宾厅单次权益",
        "description_en": (
            "One visit to a partner lounge at 60+ airports in China. For Platinum members and "
            "above."
        ),
        "description_zh_hans": "国内60余家机场合作贵宾厅单次使用，限白金及以上客户。",  # noqa: RUF001
        "points_price": 6000,
        "eligible_tiers": TOP_TIERS,
        "limit_per_member": 4,
        "limit_period": LimitPeriod.YEAR,
        "position": 80,
    },
    {
        "code": "premium-health-check",
        "category": Category.EXPERIENCE,
        "name_en": "Premium health check",
        "name_zh_hans": "高端体检套餐",
        "description_en": (
            "A full-day executive health check at a partner hospital, booked by your "
            "relationship manager. Points plus CNY 299.00; once a year."
        ),
        "description_zh_hans": "合作医院高端全天体检，由客户经理预约。积分+299元，每年限一次。",  # noqa: RUF001
        "points_price": 30_000,
        "cash_price": Decimal("299.00"),
        "stock": 40,
        "eligible_tiers": HIGHEST_TIERS,
        "limit_per_member": 1,
        "limit_period": LimitPeriod.YEAR,
        "position": 90,
    },
]

# The demo redemptions: (reward code, quantity, what becomes of it), the dearest first. Each goes
# to the first demo member, by customer number, who has none yet and whom the catalogue lets
# redeem it (tier, limits, balance); one nobody may redeem is left out.
REDEMPTIONS: list[tuple[str, int, str]] = [
    ("gift-air-fryer", 1, Redemption.Status.PENDING),  # its co-payment not paid yet
    ("airport-lounge-pass", 1, Redemption.Status.PENDING),
    ("card-annual-fee-waiver", 1, Redemption.Status.PENDING),
    ("gift-thermos", 1, Redemption.Status.FULFILLED),
    ("coffee-starbucks-tall", 1, Redemption.Status.PENDING),
    ("coffee-luckin", 2, Redemption.Status.PENDING),
    ("ride-didi-15", 1, Redemption.Status.PENDING),
    ("coffee-luckin", 1, Redemption.Status.CANCELLED),
]


def _write(stdout: TextIO | None, text: str) -> None:
    if stdout is not None:
        stdout.write(text + "\n")


def _catalogue() -> tuple[dict[str, Reward], int, int]:
    """The demo rewards by code, how many were created and how many codes generated."""
    today = timezone.now()
    rewards: dict[str, Reward] = {}
    created = codes = 0
    for spec in CATALOGUE:
        fields = {key: value for key, value in spec.items() if key != "pool"}
        reward = Reward.objects.filter(code=spec["code"]).first()
        if reward is None:
            if spec["code"] == "gift-air-fryer":  # a seasonal offer, open for a quarter
                start = today.replace(hour=0, minute=0, second=0, microsecond=0)
                fields |= {"valid_from": start, "valid_to": start + dt.timedelta(days=90)}
            reward = reward_create(actor=None, fields=fields)
            created += 1
        pool = spec.get("pool")
        if pool and not reward.codes.exists():
            codes += codes_generate(reward=reward, actor=None, **pool).added
        rewards[reward.code] = reward
    return rewards, created, codes


def _may_redeem(member: Member, reward: Reward, quantity: int) -> bool:
    """Whether the catalogue lets ``member`` redeem ``quantity`` of ``reward`` now."""
    offer = rewards_for_member(member=member, quantity=quantity).filter(pk=reward.pk).first()
    return offer is not None and getattr(offer, "ineligible_reason", None) is None


def _redemptions(rewards: dict[str, Reward]) -> dict[str, int]:
    """The demo redemptions, once: none are made while any redemption exists."""
    counts = dict.fromkeys(Redemption.Status.values, 0)
    if Redemption.objects.exists():
        return counts
    staff = User.objects.filter(username="operations").first()
    members = list(
        Member.objects.filter(status=Member.Status.ACTIVE, customer_no__startswith="D")
        .select_related("points_account")
        .order_by("customer_no")
    )
    used: set[int] = set()
    for code, quantity, outcome in REDEMPTIONS:
        reward = rewards[code]
        price = reward.points_price * quantity
        member = next(
            (
                member
                for member in members
                if member.pk not in used
                and getattr(getattr(member, "points_account", None), "balance", 0) >= price
                and _may_redeem(member, reward, quantity)
            ),
            None,
        )
        if member is None:
            continue
        try:
            redemption = redemption_create(member=member, reward_id=reward.pk, quantity=quantity)
            if outcome == Redemption.Status.FULFILLED:
                redemption_fulfil(redemption=redemption, actor=staff)
            elif outcome == Redemption.Status.CANCELLED:
                redemption_cancel(
                    redemption=redemption,
                    actor=staff,
                    reason="Demo: the member changed their mind on the phone.",
                )
        except LoyaltyError:  # refused although the catalogue said yes (nothing written)
            continue
        used.add(member.pk)
        counts[outcome] += 1
    return counts


def seed_rewards(*, stdout: TextIO | None = None) -> dict[str, int]:
    """Create the demo catalogue and code pools where missing, then a few demo redemptions if
    there are none. Returns what was created. The catalogue names the demo ladder's tiers, so
    the ladder is made first where missing."""
    seed_tiers()
    rewards, created, codes = _catalogue()
    _write(stdout, f"rewards: {created} rewards created, {codes} coupon codes generated")
    redemptions = _redemptions(rewards)
    made = sum(redemptions.values())
    _write(
        stdout,
        f"rewards: {made} demo redemptions made"
        + (
            " ("
            + ", ".join(f"{count} {status}" for status, count in redemptions.items() if count)
            + ")"
            if made
            else ""
        ),
    )
    return {"rewards": created, "codes": codes, "redemptions": made}
