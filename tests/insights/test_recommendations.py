"""Recommendations (insights.services.recommendations and /api/v1/me/recommendations/): what the
nightly job ranks for each member and why, that nothing a member may not take is recommended
(by the job and again at request time), the holdout, repeatability, the reason texts in both
languages, and the uplift figures. On PostgreSQL."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from events.models import Event, Invitation
from insights.models import Recommendation, RecommendationRun
from insights.services.kpis import kpis_compute
from insights.services.recommendations import (
    RecommendedItem,
    recommendation_items,
    recommendations_refresh,
)
from insights.tasks import recommendations_refresh_task
from loyalty.timeutils import business_today
from members.models import Member, MemberTier
from points.models import Transaction
from rewards.models import Reward
from rewards.services.redemptions import redemption_cancel, redemption_create
from tests.events.factories import EventFactory
from tests.factories import MemberFactory
from tests.members.tier_helpers import ladder
from tests.rewards.conftest import fund
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db

_external = itertools.count(1)
POPULAR_REASONS = {Recommendation.Reason.POPULAR_IN_TIER, Recommendation.Reason.POPULAR}


def spend(member: Member, mcc: str, *, days_ago: int = 3, amount: str = "120.00") -> None:
    """A processed card spend of ``member`` at a merchant of category ``mcc``."""
    Transaction.objects.create(
        external_id=f"rec-{next(_external)}",
        member=member,
        type="card_spend",
        amount=Decimal(amount),
        occurred_at=timezone.now() - dt.timedelta(days=days_ago),
        channel="pos",
        merchant_category=mcc,
        via=Transaction.Via.DEMO,
        status=Transaction.Status.PROCESSED,
        processed_at=timezone.now(),
    )


def member(tier=None, *, points: int = 1000, **kwargs) -> Member:
    each: Member = MemberFactory(**kwargs)  # type: ignore[assignment]  # the factory's model
    if tier is not None:
        MemberTier.objects.create(member=each, tier=tier)
    if points:
        fund(each, points)
    return each


def redeemed_by(reward: Reward, members) -> None:
    for each in members:
        redemption_create(member=each, reward_id=reward.pk)


def rows(of: Member) -> list[RecommendedItem]:
    """``of``'s stored items, best first (none without a row)."""
    stored = Recommendation.objects.filter(member=of).first()
    return recommendation_items(stored) if stored else []


def all_items() -> list[RecommendedItem]:
    return [item for row in Recommendation.objects.all() for item in recommendation_items(row)]


def items(of: Member) -> list:
    return [row.reward_id or row.event_id for row in rows(of)]


def refresh(**kwargs) -> RecommendationRun:
    kwargs.setdefault("holdout_percent", 0)
    run = recommendations_refresh(**kwargs)
    assert run is not None
    assert run.status == RecommendationRun.Status.DONE
    return run


def accepted_by(event: Event, members, *, status: str = "accepted") -> None:
    for each in members:
        Invitation.objects.create(event=event, member=each, status=status)


# --- What is never recommended ---------------------------------------------------------------


def test_the_job_recommends_only_what_the_member_may_take_now():
    tiers = ladder()
    gold = tiers["GOLD"]
    me = member(gold, points=500)
    peers = [member(gold, points=10_000) for _ in range(6)]
    platinum = [member(tiers["PLATINUM"], points=10_000) for _ in range(3)]

    fine = RewardFactory(name_en="Fine", points_price=100)
    other_tier = RewardFactory(name_en="Platinum only", eligible_tiers=["PLATINUM"])
    dear = RewardFactory(name_en="Dear", points_price=800)
    sold_out = RewardFactory(name_en="Sold out", stock=10)
    hidden = RewardFactory(name_en="Inactive")
    ended = RewardFactory(name_en="Ended")
    limited = RewardFactory(name_en="Once", limit_per_member=1)
    for reward in (fine, dear, sold_out, hidden, ended, limited):
        redeemed_by(reward, peers)
    redeemed_by(other_tier, platinum)
    redeemed_by(limited, [me])
    Reward.objects.filter(pk=sold_out.pk).update(stock=0)
    Reward.objects.filter(pk=hidden.pk).update(active=False)
    Reward.objects.filter(pk=ended.pk).update(valid_to=timezone.now() - dt.timedelta(minutes=1))

    now = timezone.now()
    open_event = EventFactory(title_en="Open")
    answered = EventFactory(title_en="Answered")
    closed = EventFactory(title_en="Closed", at=now - dt.timedelta(days=7))
    cancelled = EventFactory(title_en="Cancelled")
    untargeted = EventFactory(title_en="Platinum salon", target_tiers=["PLATINUM"])
    for event in (open_event, answered, closed, cancelled, untargeted):
        accepted_by(event, peers)
        Invitation.objects.create(event=event, member=me, status="invited")
    Invitation.objects.filter(event=answered, member=me).update(status="declined")
    Event.objects.filter(pk=cancelled.pk).update(status=Event.Status.CANCELLED)

    refresh()

    assert set(items(me)) == {open_event.pk, fine.pk}
    assert len(items(me)) == 2
    # a peer is rich enough for "Dear" but has had "Once" already
    assert set(items(peers[0])) == {fine.pk, dear.pk}


def test_a_member_who_is_not_active_keeps_no_recommendations():
    me = member()
    peers = [member() for _ in range(3)]
    reward = RewardFactory()
    redeemed_by(reward, peers)
    refresh()
    assert items(me) == [reward.pk]
    Member.objects.filter(pk=me.pk).update(status=Member.Status.FROZEN)
    run = refresh()
    assert items(me) == []
    assert run.members == 3
    assert run.items == 3


# --- Signals and reasons --------------------------------------------------------------------


def _dining_world():
    """Ten members of one tier: three who spend on dining redeemed the dinner voucher, five
    others the umbrella (more popular overall)."""
    tiers = ladder()
    standard = tiers["STANDARD"]
    diners = [member(standard) for _ in range(3)]
    others = [member(standard) for _ in range(5)]
    me = member(standard)
    member(standard)
    dinner = RewardFactory(name_en="Dinner for two", name_zh_hans="双人晚餐", category="gift")
    umbrella = RewardFactory(name_en="Umbrella", name_zh_hans="雨伞", category="gift")
    for each in diners:
        spend(each, "5812")
    for each in others:
        spend(each, "5411")
    redeemed_by(dinner, diners)
    redeemed_by(umbrella, others)
    return me, dinner, umbrella


def test_recommendations_follow_the_members_spending():
    me, dinner, umbrella = _dining_world()
    refresh()
    before = rows(me)
    assert [row.reward_id for row in before] == [umbrella.pk, dinner.pk]
    assert {row.reason for row in before} == {Recommendation.Reason.POPULAR_IN_TIER}

    spend(me, "5812")
    refresh()
    after = rows(me)
    assert [row.reward_id for row in after] == [dinner.pk, umbrella.pk]
    assert after[0].reason == Recommendation.Reason.SPENDING_CATEGORY
    assert after[0].reason_data == {"category": "5812"}
    assert after[0].score > after[1].score
    assert isinstance(after[0].score, Decimal)


def test_spending_older_than_the_window_or_unprocessed_does_not_count():
    me, dinner, umbrella = _dining_world()
    spend(me, "5812", days_ago=120)
    Transaction.objects.create(
        external_id="rec-pending",
        member=me,
        type="card_spend",
        amount=Decimal("10.00"),
        occurred_at=timezone.now(),
        channel="pos",
        merchant_category="5812",
        via=Transaction.Via.DEMO,
    )
    refresh()
    assert [row.reward_id for row in rows(me)] == [umbrella.pk, dinner.pk]


def test_history_recommends_what_is_like_what_the_member_chose_before():
    me = member(points=5000)
    peers = [member(points=5000) for _ in range(4)]
    coffee = RewardFactory(name_en="Coffee", category="experience")
    spa = RewardFactory(name_en="Spa", category="experience")
    mug = RewardFactory(name_en="Mug", category="gift")
    redeemed_by(mug, peers)
    redeemed_by(spa, peers[:2])
    redeemed_by(coffee, [me])
    refresh()
    spa_row = next(row for row in rows(me) if row.reward_id == spa.pk)
    assert spa_row.reason == Recommendation.Reason.HISTORY
    assert spa_row.reason_data == {"category": "experience"}


def test_history_can_lift_an_item_past_the_popular_ones_beyond_the_top_n():
    me = member(points=5000)
    peers = [member(points=5000) for _ in range(9)]
    coffee = RewardFactory(name_en="Coffee", category="experience")
    spa = RewardFactory(name_en="Spa", category="experience")
    mug = RewardFactory(name_en="Mug", category="gift")
    redeemed_by(mug, peers[:2])  # the most popular: the first of everyone's list
    redeemed_by(spa, peers[:1])
    redeemed_by(coffee, [me])
    refresh(top_n=1)
    (best,) = rows(me)
    assert best.reward_id in {spa.pk, coffee.pk}
    assert best.reason == Recommendation.Reason.HISTORY
    assert [row.reward_id for row in rows(peers[5])] == [mug.pk]


def test_holdout_members_get_popularity_only():
    me, _, _ = _dining_world()
    spend(me, "5812")
    refresh(holdout_percent=100)
    mine = rows(me)
    assert mine
    assert all(row.holdout for row in mine)
    assert all_items()
    assert {item.reason for item in all_items()} <= POPULAR_REASONS
    assert Recommendation.objects.filter(holdout=False).count() == 0
    run = RecommendationRun.objects.get()
    assert run.holdout_percent == 100


def test_the_holdout_is_the_same_members_every_run():
    for _ in range(40):
        member()  # can afford the popular reward: each gets a row
    peers = [member() for _ in range(3)]
    redeemed_by(RewardFactory(), peers)
    refresh(holdout_percent=50)
    first = set(Recommendation.objects.filter(holdout=True).values_list("member_id", flat=True))
    refresh(holdout_percent=50)
    again = set(Recommendation.objects.filter(holdout=True).values_list("member_id", flat=True))
    assert first == again
    assert 0 < len(first) < Recommendation.objects.count()


def test_events_are_recommended_from_open_invitations_by_acceptance():
    tiers = ladder()
    gold = tiers["GOLD"]
    me = member(gold, points=0)
    peers = [member(gold, points=0) for _ in range(4)]
    liked = EventFactory(title_en="Liked")
    shunned = EventFactory(title_en="Shunned")
    accepted_by(liked, peers[:3])
    accepted_by(liked, peers[3:], status="declined")
    accepted_by(shunned, peers[:1])
    accepted_by(shunned, peers[1:], status="declined")
    for event in (liked, shunned):
        Invitation.objects.create(event=event, member=me)
    refresh()
    mine = rows(me)
    assert [row.event_id for row in mine] == [liked.pk, shunned.pk]
    assert {row.item_type for row in mine} == {"event"}
    assert mine[0].reason == Recommendation.Reason.POPULAR_IN_TIER
    assert mine[0].reason_data == {"tier": "GOLD"}


def test_running_twice_leaves_the_same_rows():
    me, _, _ = _dining_world()
    spend(me, "5812")
    now = timezone.now()

    def snapshot():
        return list(
            Recommendation.objects.order_by("member").values_list("member", "items", "holdout")
        )

    refresh(now=now, holdout_percent=10)
    first = snapshot()
    refresh(now=now, holdout_percent=10, chunk_size=3)
    assert snapshot() == first
    assert first
    assert RecommendationRun.objects.filter(status="done").count() == 2
    assert Recommendation.objects.values("run").distinct().count() == 1


def test_the_top_n_is_kept():
    peers = [member(points=10_000) for _ in range(5)]
    rewards = [RewardFactory() for _ in range(5)]
    for taken, reward in enumerate(rewards, start=1):
        redeemed_by(reward, peers[:taken])  # the later, the more popular
    me = member()
    refresh(top_n=2)
    assert [row.reward_id for row in rows(me)] == [rewards[4].pk, rewards[3].pk]
    assert [row.rank for row in rows(me)] == [1, 2]
    assert rows(me)[0].score > rows(me)[1].score


def test_the_task_runs_the_refresh():
    peers = [member() for _ in range(3)]
    redeemed_by(RewardFactory(), peers)
    result = recommendations_refresh_task.delay().get()
    run = RecommendationRun.objects.get()
    assert result == {"run": run.pk, "members": 3, "items": 3}


# --- The endpoint ---------------------------------------------------------------------------

URL = "/api/v1/me/recommendations/"


def test_the_endpoint_shows_the_members_own_items_with_reasons(member_client):
    me, dinner, umbrella = _dining_world()
    spend(me, "5812")
    other = member(points=0)  # can afford nothing: no rewards for them
    event = EventFactory(title_en="Wine salon", title_zh_hans="品酒沙龙")
    accepted_by(event, Member.objects.exclude(pk__in=[me.pk, other.pk])[:3])
    Invitation.objects.create(event=event, member=other)
    refresh()
    assert items(other) == [event.pk]

    client = member_client(me)
    response = client.get(URL, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2
    assert body["results"][0] == {
        "type": "reward",
        "id": str(dinner.pk),
        "title": "Dinner for two",
        "score": str(rows(me)[0].score),
        "reason": "Because you spend on dining",
    }
    assert body["results"][1]["id"] == str(umbrella.pk)
    assert body["results"][1]["reason"] == "Popular with members of your tier"
    assert str(event.pk) not in {item["id"] for item in body["results"]}

    theirs = member_client(other).get(URL).json()["results"]
    assert [item["id"] for item in theirs] == [str(event.pk)]
    assert theirs[0]["type"] == "event"


def test_the_endpoint_speaks_chinese(member_client):
    me, _, _ = _dining_world()
    spend(me, "5812")
    refresh()
    first = member_client(me).get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").json()["results"][0]
    assert first["title"] == "双人晚餐"
    assert "餐饮" in first["reason"]
    with translation.override("zh-hans"):
        expected = str(Recommendation.Reason.SPENDING_CATEGORY.label) % {"category": "餐饮"}
    assert first["reason"] == expected
    if expected.startswith("Because"):
        pytest.skip("the zh-hans catalogue does not translate the reasons yet")


def test_the_endpoint_drops_what_went_out_of_reach_since_the_run(member_client):
    me, dinner, umbrella = _dining_world()
    spend(me, "5812")
    refresh()
    client = member_client(me)
    assert [item["id"] for item in client.get(URL).json()["results"]] == [
        str(dinner.pk),
        str(umbrella.pk),
    ]
    Reward.objects.filter(pk=dinner.pk).update(stock=0)
    assert [item["id"] for item in client.get(URL).json()["results"]] == [str(umbrella.pk)]
    Reward.objects.filter(pk=umbrella.pk).update(points_price=5000)
    assert client.get(URL).json()["results"] == []


def test_the_endpoint_drops_an_event_answered_since_the_run(member_client):
    me = member(points=0)
    peers = [member(points=0) for _ in range(3)]
    event = EventFactory()
    accepted_by(event, peers)
    invitation = Invitation.objects.create(event=event, member=me)
    refresh()
    client = member_client(me)
    assert [item["id"] for item in client.get(URL).json()["results"]] == [str(event.pk)]
    Invitation.objects.filter(pk=invitation.pk).update(status="declined")
    assert client.get(URL).json()["results"] == []


def test_the_endpoint_is_for_member_tokens_only(api, admin_api):
    assert api.get(URL).status_code == 401
    assert admin_api.get(URL).status_code == 403


# --- Uplift ---------------------------------------------------------------------------------


def test_uplift_compares_treated_and_holdout_redemption_rates():
    treated = [member(points=5000) for _ in range(4)]
    held = [member(points=5000) for _ in range(2)]
    reward = RewardFactory()
    other = RewardFactory()
    run = RecommendationRun.objects.create(status="done", holdout_percent=10)
    for each in treated + held:
        Recommendation.objects.create(
            member=each,
            items=[
                {"type": "reward", "id": str(reward.pk), "score": "1.0000", "reason": "popular"}
            ],
            holdout=each in held,
            run=run,
        )
    nothing = member(points=5000)  # a row with no items is not a member holding any
    Recommendation.objects.create(member=nothing, items=[], run=run)
    redeemed_by(reward, [nothing])
    redeemed_by(reward, treated[:3])
    redeemed_by(reward, held[:1])
    redeemed_by(other, treated)  # not recommended: not counted
    cancelled = redemption_create(member=treated[3], reward_id=reward.pk)
    redemption_cancel(redemption=cancelled, actor=None, reason="changed their mind")  # not counted
    today = business_today()
    figures = kpis_compute(day_from=today, day_to=today)
    assert figures["recommended_redemption_rate"] == Decimal("0.7500")  # 3 of 4
    assert figures["holdout_redemption_rate"] == Decimal("0.5000")  # 1 of 2
    assert figures["recommendation_uplift"] == Decimal("0.2500")
    before = kpis_compute(day_from=today - dt.timedelta(days=3), day_to=today - dt.timedelta(1))
    assert before["recommendation_uplift"] == Decimal("0.0000")


def test_uplift_is_null_without_a_holdout():
    Recommendation.objects.create(
        member=member(points=5000),
        items=[
            {"type": "reward", "id": str(RewardFactory().pk), "score": "1", "reason": "popular"}
        ],
        run=RecommendationRun.objects.create(status="done", holdout_percent=0),
    )
    today = business_today()
    figures = kpis_compute(day_from=today, day_to=today)
    assert figures["recommended_redemption_rate"] == Decimal("0.0000")
    assert figures["holdout_redemption_rate"] is None
    assert figures["recommendation_uplift"] is None
