"""Demo data for points: a realistic earning rule set, a campaign, and a few weeks of banking
transactions for existing members, pushed through the real inbox and consumer.

``seed_points`` is idempotent: rules and campaigns are created only when missing (staff edits
survive a re-run) and demo transactions have fixed external ids, so a re-run stores nothing new.
"""

import datetime as dt
import random
from decimal import Decimal
from typing import Any, TextIO

from django.utils import timezone

from loyalty.timeutils import business_today
from members.demo_tiers import seed_tiers
from members.models import Member
from points.models import Campaign, EarningRule, Transaction
from points.services.consumer import transactions_process_all
from points.services.ingest import transactions_store

# Merchant categories that never earn: real estate, contractors, wholesale clubs, quasi-cash,
# money transfers, government and tax payments.
EXCLUDED_MCCS = ["6513", "1520", "1711", "5300", "5399", "6051", "4829", "9311", "9399", "9222"]
SPEND_MCCS = ["5411", "5812", "5814", "5541", "5912", "5732", "4722", "5651", "7011", "5311"]

RULES: list[dict[str, Any]] = [
    {
        "code": "card-spend",
        "name_en": "Card spend: 1 point per CNY 20",
        "name_zh_hans": "刷卡消费：每 20 元 1 分",  # noqa: RUF001
        "priority": 100,
        "transaction_type": "card_spend",
        "amount_unit": Decimal("20"),
        "points_per_unit": 1,
        "mcc_exclude": EXCLUDED_MCCS,
        "cap_per_day": 5000,
        "cap_per_month": 30000,
    },
    {
        "code": "wealth-purchase",
        "name_en": "Wealth products: 1 point per CNY 100",
        "name_zh_hans": "理财产品：每 100 元 1 分",  # noqa: RUF001
        "priority": 100,
        "transaction_type": "wealth_purchase",
        "amount_unit": Decimal("100"),
        "points_per_unit": 1,
        "min_amount": Decimal("10000"),
        "cap_per_transaction": 20000,
        "cap_per_month": 50000,
    },
    {
        "code": "fund-purchase",
        "name_en": "Fund purchases: 1 point per CNY 100",
        "name_zh_hans": "基金申购：每 100 元 1 分",  # noqa: RUF001
        "priority": 100,
        "transaction_type": "fund_purchase",
        "amount_unit": Decimal("100"),
        "points_per_unit": 1,
        "min_amount": Decimal("1000"),
        "cap_per_transaction": 10000,
        "cap_per_month": 30000,
    },
    {
        "code": "insurance-purchase",
        "name_en": "Insurance premiums: 1 point per CNY 200",
        "name_zh_hans": "保险保费：每 200 元 1 分",  # noqa: RUF001
        "priority": 100,
        "transaction_type": "insurance_purchase",
        "amount_unit": Decimal("200"),
        "points_per_unit": 1,
        "cap_per_transaction": 5000,
    },
    {
        "code": "bill-payment-online",
        "name_en": "Online bill payments: 1 point per CNY 50",
        "name_zh_hans": "线上缴费：每 50 元 1 分",  # noqa: RUF001
        "priority": 100,
        "transaction_type": "bill_payment",
        "channels": ["mobile", "web"],
        "amount_unit": Decimal("50"),
        "points_per_unit": 1,
        "cap_per_month": 500,
    },
]


def _write(stdout: TextIO | None, text: str) -> None:
    if stdout is not None:
        stdout.write(text + "\n")


def seed_points(*, stdout: TextIO | None = None, members: int = 600) -> dict[str, int]:
    """Create the demo earning rules and campaign if missing, then ingest and credit demo
    transactions for up to ``members`` active members. Returns what was created. The premium
    campaign targets the demo ladder's upper tiers, so the ladder is made first where missing."""
    seed_tiers()
    rules_created = 0
    for spec in RULES:
        _rule, created = EarningRule.objects.get_or_create(code=spec["code"], defaults=spec)
        rules_created += created
    today = business_today()
    campaign, campaign_created = Campaign.objects.get_or_create(
        code="mobile-card-double",
        defaults={
            "name_en": "Double points on card spend this quarter",
            "name_zh_hans": "本季度刷卡双倍积分",
            "multiplier": Decimal("2"),
            "starts_on": today.replace(day=1) - dt.timedelta(days=60),
            "ends_on": today + dt.timedelta(days=30),
        },
    )
    if campaign_created:
        campaign.rules.add(EarningRule.objects.get(code="card-spend"))
    premium, _created = Campaign.objects.get_or_create(
        code="premium-wealth-bonus",
        defaults={
            "name_en": "Premium tiers: 1.5x on wealth purchases",
            "name_zh_hans": "高端客户理财 1.5 倍积分",
            "multiplier": Decimal("1.5"),
            "starts_on": today - dt.timedelta(days=30),
            "ends_on": today + dt.timedelta(days=180),
            "target_tiers": ["PLATINUM", "DIAMOND", "PRIVATE"],
        },
    )
    premium.full_clean()  # the tiers it names exist
    _write(stdout, f"points: {rules_created} earning rules created")

    rng = random.Random(20261128)  # noqa: S311 - demo data, not security
    now = timezone.now()
    items: list[dict[str, Any]] = []
    people = Member.objects.filter(status=Member.Status.ACTIVE).order_by("customer_no")[:members]
    for member in people:
        for n in range(8):
            kind = rng.choices(
                ["card_spend", "wealth_purchase", "fund_purchase", "bill_payment", "deposit"],
                weights=[10, 2, 2, 3, 2],
            )[0]
            amount = {
                "card_spend": Decimal(rng.randint(1500, 250000)) / 100,
                "wealth_purchase": Decimal(rng.randint(10, 50) * 10000),
                "fund_purchase": Decimal(rng.randint(1, 20) * 1000),
                "bill_payment": Decimal(rng.randint(5000, 60000)) / 100,
                "deposit": Decimal(rng.randint(1, 100) * 1000),
            }[kind]
            mcc = rng.choice([*SPEND_MCCS, "6513"]) if kind == "card_spend" else ""
            items.append(
                {
                    "source": "demo",
                    "external_id": f"demo-{member.customer_no}-{n}",
                    "member_id": member.pk,
                    "type": kind,
                    "amount": amount,
                    "currency": "CNY",
                    "occurred_at": now - dt.timedelta(days=rng.randint(1, 60), minutes=n),
                    "channel": rng.choice(
                        ["mobile", "pos", "web"]
                        if kind == "card_spend"
                        else ["mobile", "web", "branch"]
                    ),
                    "merchant_category": mcc,
                    "reverses": "",
                }
            )
        # One refunded purchase per member, to show a reversal in the ledger.
        first = next((item for item in items[-8:] if item["type"] == "card_spend"), None)
        if first is not None:
            items.append(
                {
                    **first,
                    "external_id": f"{first['external_id']}-refund",
                    "reverses": first["external_id"],
                    "occurred_at": first["occurred_at"] + dt.timedelta(days=1),
                }
            )
    demo = Transaction.objects.filter(source="demo", status=Transaction.Status.PROCESSED)
    processed_before = demo.count()
    counts = transactions_store(transactions=items, via=Transaction.Via.DEMO)
    transactions_process_all()  # what the consumers it enqueued have not taken yet
    processed = demo.count() - processed_before
    _write(
        stdout,
        f"points: {counts['accepted']} demo transactions stored "
        f"({counts['duplicates']} already there), {processed} processed",
    )
    return {"rules": rules_created, "transactions": counts["accepted"], "processed": processed}
