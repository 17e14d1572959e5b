"""The redemption service on PostgreSQL: one transaction that debits, takes stock and codes, or
writes nothing; cancellation refunds into the same lots once."""

import datetime as dt

import pytest
from django.utils import timezone

from points.errors import InsufficientPoints
from points.models import Account, Consumption, Entry, Lot
from points.services.reconciliation import consumptions_reconcile, points_reconcile
from rewards.errors import LimitExceeded, NotEligible, OutOfStock
from rewards.models import CouponCode, Redemption, Reward
from rewards.services.codes import codes_add
from rewards.services.redemptions import redemption_cancel, redemption_create
from tests.factories import MemberFactory
from tests.rewards.conftest import fund
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


def _balance(member) -> int:
    return Account.objects.get(member=member).balance


def _consistent() -> None:
    assert points_reconcile()[1] == []
    assert consumptions_reconcile()[1] == []


def test_a_redemption_debits_takes_stock_and_records_the_lots_it_drew(rich_member):
    reward = RewardFactory(points_price=300, stock=5)
    redemption = redemption_create(member=rich_member, reward_id=reward.pk, quantity=2)
    assert redemption.status == "pending"
    assert redemption.points_spent == 600
    assert _balance(rich_member) == 400
    reward.refresh_from_db()
    assert reward.stock == 3
    debit = redemption.debit
    assert debit.kind == Entry.Kind.REDEEM
    assert debit.points == -600
    assert sum(Consumption.objects.filter(entry=debit).values_list("points", flat=True)) == 600
    _consistent()


def test_cancel_puts_points_back_into_the_same_lots_and_is_done_once(rich_member):
    fund(rich_member, 500)
    lots_before = dict(Lot.objects.filter(member=rich_member).values_list("id", "remaining"))
    reward = RewardFactory(points_price=1200, stock=1)
    redemption = redemption_create(member=rich_member, reward_id=reward.pk)
    assert _balance(rich_member) == 300
    once = redemption_cancel(redemption=redemption)
    twice = redemption_cancel(redemption=redemption)
    assert once.status == twice.status == "cancelled"
    assert _balance(rich_member) == 1500
    assert Entry.objects.filter(kind="refund", member=rich_member).count() == 1
    assert (
        dict(Lot.objects.filter(member=rich_member).values_list("id", "remaining")) == lots_before
    )
    reward.refresh_from_db()
    assert reward.stock == 1
    _consistent()


def test_points_put_back_into_a_lot_that_has_expired_meanwhile_expire_again(db):
    from tests.clock import frozen_clock

    member = MemberFactory()
    soon = fund(member, 200, key="soon")  # the lot that expires first, 24 months on
    later = fund(member, 1000, key="later")
    Lot.objects.filter(entry=later).update(expires_on=dt.date(2099, 12, 31))
    redemption = redemption_create(member=member, reward_id=RewardFactory(points_price=300).pk)
    soon_lot = Lot.objects.get(entry=soon)
    assert soon_lot.remaining == 0  # drawn first
    # Past the first lot's last day, before the expiry job ran: the cancel puts its 200 points
    # back and they expire at once; the other 100 go back to the later lot.
    with frozen_clock(timezone.now() + dt.timedelta(days=800)):
        redemption_cancel(redemption=redemption)
    soon_lot.refresh_from_db()
    assert soon_lot.remaining == 0
    expired = Entry.objects.get(member=member, kind="expire")
    assert expired.points == -200
    assert _balance(member) == 1000
    _consistent()


def test_points_past_their_last_day_are_expired_before_a_redemption_not_spent(db):
    member = MemberFactory()
    old = fund(member, 200, key="old", occurred_at=dt.datetime(2020, 1, 10, tzinfo=dt.UTC))
    fund(member, 250, key="new")
    # The old lot's last day has passed but the daily expiry job has not run yet.
    with pytest.raises(InsufficientPoints):
        redemption_create(member=member, reward_id=RewardFactory(points_price=300).pk)
    assert _balance(member) == 450  # the refusal rolled its expiry back too
    redemption = redemption_create(member=member, reward_id=RewardFactory(points_price=250).pk)
    assert Lot.objects.get(entry=old).remaining == 0
    assert Entry.objects.get(member=member, kind="expire").idempotency_key == (
        f"expire:lot:{Lot.objects.get(entry=old).pk}"
    )
    assert not Consumption.objects.filter(entry=redemption.debit, lot__entry=old).exists()
    assert _balance(member) == 0
    _consistent()


def test_refusals_write_nothing(rich_member):
    cheap = RewardFactory(points_price=100, limit_per_member=1, limit_period="day")
    redemption_create(member=rich_member, reward_id=cheap.pk)
    before = (Entry.objects.count(), Redemption.objects.count(), _balance(rich_member))
    with pytest.raises(LimitExceeded):
        redemption_create(member=rich_member, reward_id=cheap.pk)
    with pytest.raises(InsufficientPoints):
        redemption_create(member=rich_member, reward_id=RewardFactory(points_price=5000).pk)
    with pytest.raises(NotEligible):
        redemption_create(member=rich_member, reward_id=RewardFactory(eligible_tiers=["X"]).pk)
    with pytest.raises(OutOfStock):
        redemption_create(member=rich_member, reward_id=RewardFactory(stock=0).pk)
    assert (Entry.objects.count(), Redemption.objects.count(), _balance(rich_member)) == before


def test_a_cancelled_redemptions_code_is_void_never_given_again(rich_member):
    coupon = RewardFactory(category="coupon", points_price=50)
    codes_add(reward=coupon, codes=[("COFFEE-0001", None), ("COFFEE-0002", None)], actor=None)
    first = redemption_create(member=rich_member, reward_id=coupon.pk)
    assert list(CouponCode.objects.filter(redemption=first).values_list("code", flat=True)) == [
        "COFFEE-0001"
    ]
    redemption_cancel(redemption=first)
    # The member saw COFFEE-0001: it stays with the cancelled redemption.
    assert CouponCode.objects.get(code="COFFEE-0001").redemption == first
    other = MemberFactory()
    fund(other, 100)
    second = redemption_create(member=other, reward_id=coupon.pk)
    assert list(CouponCode.objects.filter(redemption=second).values_list("code", flat=True)) == [
        "COFFEE-0002"
    ]


def test_after_a_closure_is_final_a_cancel_cannot_bring_forfeited_points_back(rich_member):
    from members.errors import MemberInactive
    from points.services.ledger import points_forfeit

    redemption = redemption_create(member=rich_member, reward_id=RewardFactory().pk)
    rich_member.status = "closed"
    rich_member.closure_final_at = timezone.now()
    rich_member.save(update_fields=["status", "closure_final_at"])
    points_forfeit(member=rich_member)
    assert _balance(rich_member) == 0
    with pytest.raises(MemberInactive):
        redemption_cancel(redemption=redemption, actor=None)
    assert _balance(rich_member) == 0
    assert Redemption.objects.get(pk=redemption.pk).status == "pending"


def test_a_member_cannot_cancel_once_the_co_payment_is_paid_staff_can(rich_member):
    from rewards.errors import CashPaid
    from rewards.services.redemptions import redemption_cash_paid
    from tests.factories import UserFactory

    reward = RewardFactory(points_price=100, cash_price="99.00", stock=3)
    redemption = redemption_create(member=rich_member, reward_id=reward.pk)
    staff = UserFactory(roles=["programme_admin"])
    redemption_cash_paid(redemption=redemption, actor=staff, reference="PAY-1")
    with pytest.raises(CashPaid):
        redemption_cancel(redemption=redemption)
    assert Redemption.objects.get(pk=redemption.pk).status == "pending"
    cancelled = redemption_cancel(redemption=redemption, actor=staff, reason="out of stock")
    assert cancelled.status == "cancelled"
    from loyalty.models import AuditLog

    audit = AuditLog.objects.get(action="redemption.cancel")
    assert audit.after["cash_to_pay_back"] == "99.00"


def test_a_debit_is_refunded_once_whoever_asks(rich_member):
    from points.services.ledger import points_refund

    redemption = redemption_create(member=rich_member, reward_id=RewardFactory(points_price=300).pk)
    first = points_refund(debit=redemption.debit)
    again = points_refund(debit=redemption.debit)
    assert first.pk == again.pk
    assert _balance(rich_member) == 1000


def test_a_price_times_quantity_past_int4_is_refused_not_an_error(rich_member):
    reward = RewardFactory(points_price=300_000_000)
    with pytest.raises(InsufficientPoints):
        redemption_create(member=rich_member, reward_id=reward.pk, quantity=10)


def test_a_cancel_gives_back_only_the_budget_its_redemption_spent(rich_member):
    from rewards.models import BudgetMonth

    reward = RewardFactory(points_price=300)
    before_budget = redemption_create(member=rich_member, reward_id=reward.pk)
    Reward.objects.filter(pk=reward.pk).update(monthly_points_budget=1000, points_price=200)
    with_budget = redemption_create(member=rich_member, reward_id=reward.pk)
    assert BudgetMonth.objects.get(reward=reward).points_spent == 200
    redemption_cancel(redemption=before_budget)  # spent no budget: gives none back
    assert BudgetMonth.objects.get(reward=reward).points_spent == 200
    redemption_cancel(redemption=with_budget)
    assert BudgetMonth.objects.get(reward=reward).points_spent == 0
    _consistent()


def test_a_csv_line_with_more_values_than_columns_is_refused():
    from django.core.exceptions import ValidationError

    from rewards.services.codes import codes_from_csv

    with pytest.raises(ValidationError) as error:
        codes_from_csv("code,expires_on\nCODE-0001,2030-01-01,extra\n")
    assert "line 2" in str(error.value)
