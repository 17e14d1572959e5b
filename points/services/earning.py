"""How many points a transaction earns, and why.

The calculation is a pure function of the rule, the campaigns, the member's tier and segments
(as last refreshed) and what the member already earned under the rule that business day and
month, so it is deterministic and can be explained line by line (the ``rules`` JSON of the
entry).
"""

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from loyalty.money import points_for_amount
from points.models import Campaign, EarningRule


@dataclass(frozen=True)
class CampaignTerms:
    """A campaign as the calculation needs it (loaded once per batch)."""

    code: str
    multiplier: Decimal
    starts_on: dt.date
    ends_on: dt.date
    rule_ids: frozenset[int] = frozenset()
    target_tiers: frozenset[str] = frozenset()
    target_segment: uuid.UUID | None = None
    name: str = ""

    def applies(
        self,
        *,
        rule_id: int | None,
        on: dt.date,
        tier_code: str | None,
        segments: frozenset[uuid.UUID] = frozenset(),
    ) -> bool:
        if not self.starts_on <= on <= self.ends_on:
            return False
        if self.rule_ids and rule_id not in self.rule_ids:
            return False
        if self.target_segment is not None and self.target_segment not in segments:
            return False
        return not self.target_tiers or tier_code in self.target_tiers


@dataclass(frozen=True)
class Earning:
    points: int
    explanation: dict[str, Any] = field(default_factory=dict)
    campaign: "CampaignTerms | None" = None  # the campaign that applied


def earning_rules_active() -> list[EarningRule]:
    """Active rules in the order they are tried."""
    return list(EarningRule.objects.filter(active=True).order_by("priority", "id"))


def campaigns_active(*, on_or_after: dt.date | None = None) -> list[CampaignTerms]:
    campaigns = Campaign.objects.filter(active=True).prefetch_related("rules")
    if on_or_after is not None:
        campaigns = campaigns.filter(ends_on__gte=on_or_after)
    return [
        CampaignTerms(
            code=campaign.code,
            multiplier=campaign.multiplier,
            starts_on=campaign.starts_on,
            ends_on=campaign.ends_on,
            rule_ids=frozenset(rule.pk for rule in campaign.rules.all()),
            target_tiers=frozenset(campaign.target_tiers or []),
            target_segment=campaign.target_segment_id,
            name=campaign.name,
        )
        for campaign in campaigns
    ]


def earning_rule_matches(
    *,
    rule: EarningRule,
    type: str,
    channel: str,
    merchant_category: str,
    amount: Decimal,
    currency: str,
    on: dt.date,
) -> bool:
    """Whether ``rule`` covers a transaction with these attributes on business day ``on``."""
    if rule.transaction_type != type or rule.currency != currency:
        return False
    if rule.channels and channel not in rule.channels:
        return False
    if merchant_category and merchant_category in (rule.mcc_exclude or []):
        return False
    if rule.mcc_include and merchant_category not in rule.mcc_include:
        return False
    if amount < rule.min_amount:
        return False
    if rule.valid_from and on < rule.valid_from:
        return False
    return not (rule.valid_to and on > rule.valid_to)


def earning_rule_select(*, rules: list[EarningRule], **transaction: Any) -> EarningRule | None:
    """The first rule (in priority order) that matches, or ``None``."""
    return next((rule for rule in rules if earning_rule_matches(rule=rule, **transaction)), None)


def earning_points_calculate(
    *,
    rule: EarningRule,
    amount: Decimal,
    on: dt.date,
    tier_code: str | None = None,
    tier_multiplier: Decimal = Decimal(1),
    campaigns: list[CampaignTerms] = (),  # type: ignore[assignment]
    segments: frozenset[uuid.UUID] = frozenset(),
    earned_today: int = 0,
    earned_this_month: int = 0,
) -> Earning:
    """Points for ``amount`` under ``rule``, with the explanation.

    Guarantees: whole points, rounded down at each step (full amount units only, then the
    multipliers); never more than the rule's per-transaction cap, nor more than what is left of
    the daily and monthly caps given ``earned_today`` and ``earned_this_month``; never negative;
    monotone in ``amount``. Of several applicable campaigns the highest multiplier applies (they
    do not stack).
    """
    base = points_for_amount(
        amount=amount, amount_unit=rule.amount_unit, points_per_unit=rule.points_per_unit
    )
    tier = tier_multiplier if rule.apply_tier_multiplier else Decimal(1)
    campaign = max(
        (
            c
            for c in campaigns
            if c.applies(rule_id=rule.pk, on=on, tier_code=tier_code, segments=segments)
        ),
        key=lambda c: (c.multiplier, c.code),
        default=None,
    )
    multiplier = tier * (campaign.multiplier if campaign else Decimal(1))
    points = points_for_amount(amount=Decimal(base) * multiplier, amount_unit=Decimal(1))
    uncapped = points
    caps: dict[str, int] = {}
    if rule.cap_per_transaction is not None and points > rule.cap_per_transaction:
        points = rule.cap_per_transaction
        caps["per_transaction"] = rule.cap_per_transaction
    if rule.cap_per_day is not None:
        left = max(0, rule.cap_per_day - earned_today)
        if points > left:
            points = left
            caps["per_day"] = rule.cap_per_day
    if rule.cap_per_month is not None:
        left = max(0, rule.cap_per_month - earned_this_month)
        if points > left:
            points = left
            caps["per_month"] = rule.cap_per_month
    explanation: dict[str, Any] = {
        "rule": rule.code,
        "amount": str(amount),
        "amount_unit": str(rule.amount_unit),
        "points_per_unit": rule.points_per_unit,
        "base": base,
        "tier": {"code": tier_code, "multiplier": str(tier)},
        "campaign": (
            {"code": campaign.code, "multiplier": str(campaign.multiplier)} if campaign else None
        ),
        "uncapped": uncapped,
        "caps_applied": caps,
        "points": points,
    }
    return Earning(points=points, explanation=explanation, campaign=campaign)
