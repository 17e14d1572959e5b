"""The rewards demo seed: a bilingual catalogue on the demo ladder's tiers, code pools, and a few
redemptions through the services; run again, it changes nothing."""

import io
from collections import Counter

import pytest

from members.demo_tiers import LADDER
from members.models import Tier
from points.services.reconciliation import consumptions_reconcile, points_reconcile
from rewards.demo import CATALOGUE, seed_rewards
from rewards.models import CODE_CATEGORIES, CouponCode, LimitPeriod, Redemption, Reward
from rewards.services.catalogue import reward_update
from tests.factories import MemberFactory, database_state
from tests.rewards.conftest import fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_members():
    """Demo members (``D`` customer numbers, as seed_demo makes them) with points to spend."""
    members = [MemberFactory(customer_no=f"D{index:07d}") for index in range(1, 9)]
    for member, points in zip(members, [12000, 9000, 5000, 3000, 2500, 1500, 800, 0], strict=True):
        if points:
            fund(member, points)
    return members


def test_seed_rewards_twice_creates_the_catalogue_once(demo_members):
    out = io.StringIO()
    first = seed_rewards(stdout=out)
    assert first["rewards"] == len(CATALOGUE) == Reward.objects.count()
    assert first["codes"] == CouponCode.objects.count() == 800
    assert "rewards: 9 rewards created, 800 coupon codes generated" in out.getvalue()
    counts = (Reward.objects.count(), CouponCode.objects.count(), Redemption.objects.count())
    before = database_state()
    assert seed_rewards() == {"rewards": 0, "codes": 0, "redemptions": 0}
    assert database_state() == before  # no reward, code, redemption, entry or audit row more
    assert (Reward.objects.count(), CouponCode.objects.count(), Redemption.objects.count()) == (
        counts
    )


def test_a_staff_edit_survives_a_second_seed(demo_members):
    seed_rewards()
    reward = Reward.objects.get(code="gift-thermos")
    reward_update(reward=reward, actor=None, changes={"points_price": 5200})
    seed_rewards()
    reward.refresh_from_db()
    assert reward.points_price == 5200


def test_every_reward_has_both_languages_and_names_existing_tiers(demo_members):
    seed_rewards()
    rewards = list(Reward.objects.all())
    assert all(reward.name_en and reward.name_zh_hans for reward in rewards)
    assert all(reward.description_en and reward.description_zh_hans for reward in rewards)
    named = {code for reward in rewards for code in reward.eligible_tiers}
    assert named
    assert named <= set(Tier.objects.values_list("code", flat=True))
    assert named <= {spec["code"] for spec in LADDER}
    for reward in rewards:
        reward.full_clean()  # tier codes, limits and windows as the catalogue service checks
    lounge = Reward.objects.get(code="airport-lounge-pass")
    health = Reward.objects.get(code="premium-health-check")
    assert set(lounge.eligible_tiers) == {"PLATINUM", "DIAMOND", "PRIVATE"}
    assert set(health.eligible_tiers) == {"DIAMOND", "PRIVATE"}
    assert (health.category, health.limit_per_member, health.limit_period) == (
        "experience",
        1,
        LimitPeriod.YEAR,
    )


def test_the_catalogue_covers_what_the_programme_offers(demo_members):
    seed_rewards()
    rewards = list(Reward.objects.all())
    assert {reward.category for reward in rewards} == {
        "gift",
        "coupon",
        "voucher",
        "fee_waiver",
        "experience",
    }
    assert {reward.limit_period for reward in rewards if reward.limit_per_member} == set(
        LimitPeriod.values
    )
    assert any(reward.cash_price > 0 for reward in rewards)
    assert any(reward.monthly_points_budget for reward in rewards)
    assert any(reward.stock is not None for reward in rewards if reward.category == "gift")
    pools = Counter(CouponCode.objects.values_list("reward__code", flat=True))
    assert pools == {"coffee-starbucks-tall": 300, "coffee-luckin": 300, "ride-didi-15": 200}
    for reward in rewards:
        assert reward.uses_codes == (reward.code in pools)
        assert (reward.category in CODE_CATEGORIES) == (reward.code in pools)


def test_the_demo_redemptions_go_through_the_services(demo_members):
    seed_rewards()
    redemptions = list(Redemption.objects.select_related("member", "reward"))
    statuses = Counter(redemption.status for redemption in redemptions)
    assert statuses["fulfilled"] == 1
    assert statuses["cancelled"] == 1
    assert statuses["pending"] >= 3
    # One per member, each by a member who had the points, and none by the one who had none.
    members = [redemption.member.customer_no for redemption in redemptions]
    assert len(set(members)) == len(members)
    assert "D0000008" not in members
    # The ledger holds: every debit and refund, with the lots consumed and given back.
    assert points_reconcile()[1] == []
    assert consumptions_reconcile()[1] == []
    for redemption in redemptions:
        given = CouponCode.objects.filter(redemption=redemption).count()
        expected = redemption.quantity if redemption.reward.uses_codes else 0
        assert given == expected  # a cancelled redemption keeps its (void) codes


def test_without_members_the_catalogue_is_seeded_and_no_redemption_made():
    assert seed_rewards()["redemptions"] == 0
    assert Reward.objects.count() == len(CATALOGUE)
    assert not Redemption.objects.exists()
