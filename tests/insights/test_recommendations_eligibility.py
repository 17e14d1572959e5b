"""The nightly job's reward eligibility (SQL, all members at once) is the catalogue's
(``rewards_for_member``, one member at a time): over members and rewards built to hit every
branch of the rule, both say the same for every pair. If either rule changes alone, this
fails."""

import datetime as dt

import pytest
from django.utils import timezone

from insights.services.recommendations import reward_eligible_pairs
from members.models import Member, MemberTier
from rewards.models import BudgetMonth, Reward
from rewards.selectors import month_of, rewards_for_member
from rewards.services.codes import codes_add
from rewards.services.redemptions import redemption_create
from tests.factories import MemberFactory
from tests.members.tier_helpers import ladder
from tests.rewards.conftest import fund
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


def _catalogue_pairs(members: list[Member], now: dt.datetime) -> set[tuple[int, object]]:
    return {
        (member.pk, reward.pk)
        for member in members
        for reward in rewards_for_member(member=Member.objects.get(pk=member.pk), now=now)
        if reward.ineligible_reason is None  # type: ignore[attr-defined]  # an annotation
    }


def test_the_jobs_eligible_rewards_are_the_catalogues():
    tiers = ladder()
    now = timezone.now()
    hour = dt.timedelta(hours=1)

    def holding(tier, points):
        member = MemberFactory()
        if tier is not None:
            MemberTier.objects.create(member=member, tier=tiers[tier])
        if points:
            fund(member, points)
        return member

    gold_rich = holding("GOLD", 5000)
    gold_poor = holding("GOLD", 150)
    base = holding(None, 1000)  # no tier state: the lowest tier
    platinum = holding("PLATINUM", 300)
    broke = holding("DIAMOND", 0)
    frozen = holding("GOLD", 5000)
    limited = holding("GOLD", 5000)
    members = [gold_rich, gold_poor, base, platinum, broke, frozen, limited]

    RewardFactory(code="plain", points_price=100)
    RewardFactory(code="exact", points_price=150)
    RewardFactory(code="dear", points_price=1000)
    RewardFactory(code="gold-only", eligible_tiers=["GOLD"])
    RewardFactory(code="top-tiers", eligible_tiers=["PLATINUM", "DIAMOND"])
    RewardFactory(code="standard-only", eligible_tiers=["STANDARD"])
    RewardFactory(code="inactive", active=False)
    RewardFactory(code="not-started", valid_from=now + hour)
    RewardFactory(code="started", valid_from=now - hour, valid_to=now + hour)
    RewardFactory(code="ended", valid_to=now - hour)
    RewardFactory(code="ends-now", valid_from=now - 2 * hour, valid_to=now)
    RewardFactory(code="sold-out", stock=0)
    RewardFactory(code="last-one", stock=1)
    RewardFactory(code="no-codes", category="coupon")
    with_codes = RewardFactory(code="codes", category="voucher")
    codes_add(reward=with_codes, codes=[("V-1", None)], actor=None)
    expired = RewardFactory(code="expired-codes", category="coupon")
    codes_add(reward=expired, codes=[("E-1", now.date() - dt.timedelta(days=2))], actor=None)
    no_stock_codes = RewardFactory(code="codes-no-stock", category="coupon", stock=0)
    codes_add(reward=no_stock_codes, codes=[("S-1", None)], actor=None)
    budget = RewardFactory(code="budget", points_price=100, monthly_points_budget=150)
    BudgetMonth.objects.create(reward=budget, month=month_of(now), points_spent=100)
    RewardFactory(code="budget-ok", points_price=100, monthly_points_budget=200)
    once = RewardFactory(code="once", limit_per_member=1)
    twice_a_day = RewardFactory(code="twice-a-day", limit_per_member=2, limit_period="day")
    monthly = RewardFactory(code="monthly", limit_per_member=1, limit_period="month")
    for reward in (once, twice_a_day, monthly):
        redemption_create(member=limited, reward_id=reward.pk)
    Member.objects.filter(pk=frozen.pk).update(status=Member.Status.FROZEN)
    now = timezone.now()

    expected = _catalogue_pairs(members, now)
    got = reward_eligible_pairs(member_ids=[member.pk for member in members], now=now)
    assert got == expected
    # the data hits both sides of every branch
    names = dict(Reward.objects.values_list("pk", "code"))
    eligible_codes = {names[reward] for _, reward in expected}
    assert {"plain", "gold-only", "top-tiers", "started", "last-one", "codes"} <= eligible_codes
    assert {"budget-ok", "twice-a-day"} <= eligible_codes
    assert not eligible_codes & {
        "inactive",
        "not-started",
        "ended",
        "ends-now",
        "sold-out",
        "no-codes",
        "expired-codes",
        "codes-no-stock",
        "budget",
    }
    assert (limited.pk, once.pk) not in expected
    assert (gold_rich.pk, once.pk) in expected
    assert (limited.pk, twice_a_day.pk) in expected
    assert (gold_poor.pk, Reward.objects.get(code="exact").pk) in expected
    assert not {pair for pair in expected if pair[0] in (frozen.pk, broke.pk)}
