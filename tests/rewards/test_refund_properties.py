"""Random sequences of earning, redeeming, cancelling and expiring, against a model in plain
Python that knows which lots each redemption drew from.

The model expires what is past its last day before a redemption, consumes lots earliest expiry
first (then earliest earned, then oldest), puts a cancelled redemption's points back into
exactly the lots it drew from, and expires again at once what goes back into a lot whose last
day has passed. After every step the database must
hold the model's balance and each lot's remaining points, every redemption's consumption rows
must be what the model took, and reconciliation (accounts, lots, consumptions) must find
nothing. Cancelling a cancelled redemption changes nothing."""

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from loyalty.timeutils import business_today
from points.errors import InsufficientPoints
from points.models import Account, Consumption, Lot
from points.services.expiry import points_expire_due
from points.services.reconciliation import consumptions_reconcile, points_reconcile
from rewards.services.redemptions import redemption_cancel, redemption_create
from tests.factories import MemberFactory
from tests.rewards.conftest import fund
from tests.rewards.factories import RewardFactory

_keys = itertools.count()


@dataclass
class ModelLot:
    id: int
    earned_on: dt.date
    expires_on: dt.date | None
    remaining: int


class RedemptionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.member = MemberFactory()
        self.rewards = {price: RewardFactory(points_price=price) for price in (40, 150, 400)}
        self.balance = 0
        self.lots: dict[int, ModelLot] = {}
        self.drawn: dict[str, dict[int, int]] = {}  # redemption id -> lot id -> points
        self.open: list = []
        self.cancelled: list = []

    def _order(self) -> list[ModelLot]:
        return sorted(
            (lot for lot in self.lots.values() if lot.remaining > 0),
            key=lambda lot: (
                lot.expires_on is None,
                lot.expires_on or dt.date.max,
                lot.earned_on,
                lot.id,
            ),
        )

    @rule(points=st.integers(1, 300), days_ago=st.sampled_from([0, 30, 400, 800]))
    def earn(self, points, days_ago):
        occurred = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
        entry = fund(self.member, points, key=f"prop:{next(_keys)}", occurred_at=occurred)
        lot = Lot.objects.get(entry=entry)
        self.lots[lot.pk] = ModelLot(lot.pk, lot.earned_on, lot.expires_on, points)
        self.balance += points

    def _expire_due(self) -> None:
        today = business_today()
        for lot in self.lots.values():
            if lot.expires_on is not None and lot.expires_on < today:
                self.balance -= lot.remaining
                lot.remaining = 0

    @rule(price=st.sampled_from([40, 150, 400]), quantity=st.integers(1, 3))
    def redeem(self, price, quantity):
        cost = price * quantity
        try:
            redemption = redemption_create(
                member=self.member, reward_id=self.rewards[price].pk, quantity=quantity
            )
        except InsufficientPoints:
            # Refused: the expiry it ran first rolled back with it.
            balance = self.balance - sum(
                lot.remaining
                for lot in self.lots.values()
                if lot.expires_on is not None and lot.expires_on < business_today()
            )
            assert cost > balance
            return
        self._expire_due()  # a redemption first expires what is past its last day
        assert cost <= self.balance
        left, taken = cost, {}
        for lot in self._order():
            take = min(lot.remaining, left)
            lot.remaining -= take
            left -= take
            taken[lot.id] = take
            if left == 0:
                break
        self.balance -= cost
        self.drawn[str(redemption.pk)] = taken
        self.open.append(redemption)
        assert (
            dict(Consumption.objects.filter(entry=redemption.debit).values_list("lot_id", "points"))
            == taken
        )

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def cancel(self, data):
        redemption = data.draw(st.sampled_from(self.open))
        redemption_cancel(redemption=redemption)
        self.open.remove(redemption)
        self.cancelled.append(redemption)
        today = business_today()
        for lot_id, points in self.drawn[str(redemption.pk)].items():
            lot = self.lots[lot_id]
            if lot.expires_on is not None and lot.expires_on < today:
                continue  # back, and expired again at once
            lot.remaining += points
            self.balance += points

    @precondition(lambda self: self.cancelled)
    @rule(data=st.data())
    def cancel_again(self, data):
        redemption = data.draw(st.sampled_from(self.cancelled))
        assert redemption_cancel(redemption=redemption).status == "cancelled"

    @rule()
    def expire(self):
        points_expire_due()
        self._expire_due()

    @invariant()
    def database_matches_the_model(self):
        account = Account.objects.filter(member=self.member).first()
        assert (account.balance if account else 0) == self.balance
        stored = dict(Lot.objects.filter(member=self.member).values_list("id", "remaining"))
        assert stored == {lot.id: lot.remaining for lot in self.lots.values()}
        assert points_reconcile()[1] == []
        assert consumptions_reconcile()[1] == []


@pytest.mark.django_db
def test_redeem_cancel_and_expire_in_any_order_keep_the_lots_the_model_expects():
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        RedemptionMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
