"""The demo ladder, modelled on Chinese retail banks: 普卡, 金卡, 白金, 钻石, 私人银行.

``seed_demo`` calls :func:`seed_tiers`; running it again changes nothing that is already there
(tiers are matched by code and benefits by kind, and keep what staff edited).
"""

from decimal import Decimal
from typing import Any, TextIO

from django.db import transaction

from members.models import Tier, TierBenefit, TierEvaluationRun
from members.schedules import tier_evaluation_schedule_ensure
from members.services.evaluation import tier_evaluate, tier_evaluation_start

Benefit = tuple[str, str, str]

LADDER: list[dict[str, Any]] = [
    {
        "code": "STANDARD",
        "name_en": "Standard",
        "name_zh_hans": "普卡",
        "rank": 10,
        "min_avg_aum": None,
        "min_contribution": None,
        "multiplier": Decimal("1.00"),
        "benefits": [
            (TierBenefit.Kind.BIRTHDAY_GIFT, "Birthday points gift", "生日积分礼"),
        ],
    },
    {
        "code": "GOLD",
        "name_en": "Gold",
        "name_zh_hans": "金卡",
        "rank": 20,
        "min_avg_aum": Decimal("100000.00"),
        "min_contribution": Decimal("2000.00"),
        "multiplier": Decimal("1.20"),
        "benefits": [
            (TierBenefit.Kind.FEE_WAIVER, "No fees on interbank transfers", "跨行转账免手续费"),
            (TierBenefit.Kind.BIRTHDAY_GIFT, "Birthday gift", "生日礼遇"),
            (TierBenefit.Kind.POINTS_BONUS, "20% more points on card spend", "刷卡积分加赠20%"),
        ],
    },
    {
        "code": "PLATINUM",
        "name_en": "Platinum",
        "name_zh_hans": "白金",
        "rank": 30,
        "min_avg_aum": Decimal("500000.00"),
        "min_contribution": Decimal("10000.00"),
        "multiplier": Decimal("1.50"),
        "benefits": [
            (TierBenefit.Kind.FEE_WAIVER, "No account or transfer fees", "免账户管理费及转账费"),
            (
                TierBenefit.Kind.PRIORITY_SERVICE,
                "Priority counter and hotline",
                "贵宾窗口及专线优先服务",
            ),
            (TierBenefit.Kind.LOUNGE_ACCESS, "4 airport lounge visits a year", "每年4次机场贵宾厅"),
            (TierBenefit.Kind.POINTS_BONUS, "50% more points on card spend", "刷卡积分加赠50%"),
        ],
    },
    {
        "code": "DIAMOND",
        "name_en": "Diamond",
        "name_zh_hans": "钻石",
        "rank": 40,
        "min_avg_aum": Decimal("5000000.00"),
        "min_contribution": Decimal("50000.00"),
        "multiplier": Decimal("2.00"),
        "benefits": [
            (
                TierBenefit.Kind.DEDICATED_MANAGER,
                "A dedicated relationship manager",
                "专属客户经理",
            ),
            (TierBenefit.Kind.LOUNGE_ACCESS, "Unlimited airport lounge visits", "机场贵宾厅不限次"),
            (
                TierBenefit.Kind.HEALTH_CARE,
                "Annual health check and hospital booking",
                "年度体检及名医预约",
            ),
            (TierBenefit.Kind.POINTS_BONUS, "Double points on card spend", "刷卡积分双倍"),
        ],
    },
    {
        "code": "PRIVATE",
        "name_en": "Private Banking",
        "name_zh_hans": "私人银行",
        "rank": 50,
        "min_avg_aum": Decimal("10000000.00"),
        "min_contribution": Decimal("100000.00"),
        "multiplier": Decimal("3.00"),
        "benefits": [
            (
                TierBenefit.Kind.DEDICATED_MANAGER,
                "A private banker and an advisory team",
                "私人银行家及专家顾问团队",
            ),
            (
                TierBenefit.Kind.PRIORITY_SERVICE,
                "Family wealth and succession planning",
                "家族财富及传承规划",
            ),
            (
                TierBenefit.Kind.LOUNGE_ACCESS,
                "Lounges and airport VIP transfers",
                "贵宾厅及机场专车接送",
            ),
            (TierBenefit.Kind.POINTS_BONUS, "Triple points on card spend", "刷卡积分三倍"),
        ],
    },
]


@transaction.atomic
def seed_tiers(*, stdout: TextIO | None = None) -> list[Tier]:
    """Create the demo ladder and its benefits where missing, and register the monthly
    evaluation schedule. Returns the tiers by rank."""
    tiers = []
    for spec in LADDER:
        values = {key: value for key, value in spec.items() if key not in ("code", "benefits")}
        tier, created = Tier.objects.get_or_create(code=spec["code"], defaults=values)
        for position, (kind, text_en, text_zh_hans) in enumerate(spec["benefits"]):
            TierBenefit.objects.get_or_create(
                tier=tier,
                kind=kind,
                defaults={"text_en": text_en, "text_zh_hans": text_zh_hans, "position": position},
            )
        if stdout is not None:
            stdout.write(f"tier {tier.code} {'created' if created else 'exists'}\n")
        tiers.append(tier)
    tier_evaluation_schedule_ensure()
    return tiers


def seed_tier_evaluation(*, stdout: TextIO | None = None) -> None:
    """Place the demo members in their tiers with a first evaluation, once."""
    if TierEvaluationRun.objects.exists():
        return
    run = tier_evaluation_start(trigger=TierEvaluationRun.Trigger.MANUAL)
    run = tier_evaluate(run_id=run.run_id)
    if stdout is not None:
        stdout.write(
            f"tier evaluation as of {run.as_of}: {run.processed} members, {run.upgraded} upgraded\n"
        )
