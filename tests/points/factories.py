import datetime as dt
import itertools
from decimal import Decimal

import factory
from django.utils import timezone

from points.models import Campaign, EarningRule

_ids = itertools.count(1)


class EarningRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EarningRule
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"rule-{n}")
    name_en = factory.LazyAttribute(lambda rule: f"Rule {rule.code}")
    name_zh_hans = factory.LazyAttribute(lambda rule: f"规则 {rule.code}")
    transaction_type = "card_spend"
    amount_unit = Decimal("20")
    points_per_unit = 1


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    code = factory.Sequence(lambda n: f"campaign-{n}")
    name_en = factory.LazyAttribute(lambda campaign: f"Campaign {campaign.code}")
    name_zh_hans = factory.LazyAttribute(lambda campaign: f"活动 {campaign.code}")
    multiplier = Decimal("2")
    starts_on = dt.date(2020, 1, 1)
    ends_on = dt.date(2099, 12, 31)


def tx_item(member, **overrides) -> dict:
    """A transaction as the ingest API takes it."""
    item = {
        "external_id": f"T{next(_ids):09d}",
        "source": "core",
        "customer_no": member.customer_no,
        "type": "card_spend",
        "amount": "100.00",
        "currency": "CNY",
        "occurred_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
        "channel": "pos",
        "merchant_category": "5411",
    }
    item.update(overrides)
    return item
