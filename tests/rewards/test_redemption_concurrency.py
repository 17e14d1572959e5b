"""Redemptions racing on PostgreSQL, each request in its own thread, client and connection.

While the threads start, the test holds a lock that every redemption has to pass (the reward
table for stock, the account table for a member's own redemptions) and reads from
``pg_stat_activity`` that the requests are queued on it together, so the race is known to have
been run, not merely attempted; then it lets them go."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from members.authentication import member_token_issue
from points.models import Account, Entry
from points.services.reconciliation import consumptions_reconcile, points_reconcile
from rewards.models import CouponCode, Redemption, Reward
from rewards.services.codes import codes_add
from tests.factories import MemberFactory, lock_queue, table_write_locked
from tests.rewards.conftest import fund
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db(transaction=True)

# At most this many requests in flight at once: each holds a connection while it waits.
IN_FLIGHT = 40


def _token(member) -> str:
    return str(member_token_issue(member=member).access_token)


def _redeem(token: str, reward_id, key: str | None = None):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    try:
        return client.post(
            "/api/v1/me/redemptions/",
            {"reward_id": str(reward_id), "quantity": 1},
            format="json",
            HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
        )
    finally:
        connection.close()


def _race(calls, *, locked_model, queued: int):
    """Run ``calls`` on IN_FLIGHT threads while ``locked_model``'s table is write-locked; once
    ``queued`` requests wait on that lock, release it. ``(responses, waiters seen)``."""
    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        with table_write_locked(locked_model) as holder:
            futures = [pool.submit(call) for call in calls]
            front, _behind = lock_queue(holder=holder, waiters=queued)
        responses = [future.result(timeout=120) for future in futures]
    return responses, front


def test_200_redemptions_of_a_reward_with_stock_10_give_exactly_10(db):
    reward = RewardFactory(category="coupon", points_price=10, stock=10)
    codes_add(reward=reward, codes=[(f"RIDE-{i:04d}", None) for i in range(50)], actor=None)
    members = [MemberFactory() for _ in range(200)]
    for member in members:
        fund(member, 100)
    tokens = [_token(member) for member in members]

    responses, queued = _race(
        [lambda token=token: _redeem(token, reward.pk) for token in tokens],
        locked_model=Reward,
        queued=IN_FLIGHT,
    )

    # The first wave of requests all reached the stock update and waited there together.
    assert len(queued) == IN_FLIGHT
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 10 + [409] * 190
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"out_of_stock"}
    codes = [r.json()["coupon_code"] for r in responses if r.status_code == 201]
    assert len(set(codes)) == 10
    reward.refresh_from_db()
    assert reward.stock == 0
    assert Redemption.objects.count() == 10
    assert CouponCode.objects.filter(redemption__isnull=False).count() == 10
    assert Entry.objects.filter(kind="redeem").count() == 10
    assert points_reconcile()[1] == []
    assert consumptions_reconcile()[1] == []


def test_a_pool_of_10_codes_gives_each_code_once_to_40_racing_redemptions(db):
    reward = RewardFactory(category="coupon", points_price=10, stock=None)
    codes_add(reward=reward, codes=[(f"COFFEE-{i:04d}", None) for i in range(10)], actor=None)
    members = [MemberFactory() for _ in range(IN_FLIGHT)]
    for member in members:
        fund(member, 100)
    tokens = [_token(member) for member in members]

    # The account table locked: every request waits with its idempotency claim made, then all
    # reach the code pool together (SKIP LOCKED: none waits for another's code).
    responses, queued = _race(
        [lambda token=token: _redeem(token, reward.pk) for token in tokens],
        locked_model=Account,
        queued=IN_FLIGHT,
    )

    assert len(queued) == IN_FLIGHT
    assert sorted(r.status_code for r in responses) == [201] * 10 + [409] * 30
    codes = [r.json()["coupon_code"] for r in responses if r.status_code == 201]
    assert sorted(codes) == [f"COFFEE-{i:04d}" for i in range(10)]
    assert CouponCode.objects.filter(redemption__isnull=True).count() == 0
    assert Account.objects.filter(balance=90).count() == 10
    assert Account.objects.filter(balance=100).count() == 30


def test_20_redemptions_by_one_member_with_1000_points_stop_at_zero(db):
    member = MemberFactory()
    fund(member, 1000)
    reward = RewardFactory(points_price=100)
    token = _token(member)

    responses, queued = _race(
        [lambda: _redeem(token, reward.pk) for _ in range(20)], locked_model=Account, queued=20
    )

    assert len(queued) == 20
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 10 + [422] * 10
    assert {r.json()["code"] for r in responses if r.status_code == 422} == {"insufficient_points"}
    account = Account.objects.get(member=member)
    assert account.balance == 0
    assert account.lifetime_redeemed == 1000
    assert points_reconcile()[1] == []
    assert consumptions_reconcile()[1] == []


def test_one_key_sent_eight_times_at_once_redeems_once(db):
    member = MemberFactory()
    fund(member, 1000)
    reward = RewardFactory(points_price=100, stock=5)
    token = _token(member)
    key = uuid.uuid4().hex
    barrier = threading.Barrier(8)

    def send():
        barrier.wait(timeout=10)
        return _redeem(token, reward.pk, key=key)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = [future.result(timeout=60) for future in [pool.submit(send) for _ in range(8)]]

    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["id"] for response in responses}) == 1
    assert Redemption.objects.count() == 1
    assert Account.objects.get(member=member).balance == 900
    reward.refresh_from_db()
    assert reward.stock == 4


def test_a_code_another_transaction_holds_is_skipped_not_waited_for(db):
    """The code pool is read with SKIP LOCKED: while another transaction holds the first free
    code, a redemption takes the next one instead of queueing behind it."""
    from django.db import transaction

    reward = RewardFactory(category="coupon", points_price=10)
    codes_add(reward=reward, codes=[("HELD-0001", None), ("FREE-0002", None)], actor=None)
    member = MemberFactory()
    fund(member, 100)
    token = _token(member)
    result = {}

    def redeem():
        result["response"] = _redeem(token, reward.pk)

    with transaction.atomic():
        held = CouponCode.objects.select_for_update().get(code="HELD-0001")
        thread = threading.Thread(target=redeem)
        thread.start()
        thread.join(timeout=20)
        still_waiting = thread.is_alive()
        held.refresh_from_db()
    thread.join(timeout=60)
    assert not still_waiting, "the redemption waited for the held code"
    assert result["response"].status_code == 201
    assert result["response"].json()["coupon_code"] == "FREE-0002"


def test_cancels_and_redemptions_of_one_reward_at_once_never_deadlock(db):
    """Both take the month's budget row before the reward's row, so a cancel racing a
    redemption of the same reward (stock and budget) waits, never deadlocks."""
    from rewards.services.redemptions import redemption_cancel, redemption_create

    reward = RewardFactory(points_price=10, stock=100, monthly_points_budget=100_000)
    members = [MemberFactory() for _ in range(16)]
    for member in members:
        fund(member, 100)
    pending = [redemption_create(member=member, reward_id=reward.pk) for member in members[:8]]
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def run(work):
        try:
            barrier.wait(timeout=10)
            work()
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    work = [lambda r=r: redemption_cancel(redemption=r) for r in pending] + [
        lambda m=m: redemption_create(member=m, reward_id=reward.pk) for m in members[8:]
    ]
    threads = [threading.Thread(target=run, args=(item,)) for item in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    reward.refresh_from_db()
    assert reward.stock == 100 - 8
    assert Redemption.objects.filter(status="cancelled").count() == 8
    from rewards.models import BudgetMonth

    assert BudgetMonth.objects.get(reward=reward).points_spent == 80
