"""Property-based tests: the earning calculation and the ledger's invariants."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from loyalty.models import ProgrammeSettings
from loyalty.selectors import programme_settings_get
from points.errors import InsufficientPoints
from points.models import Account, EarningRule, Entry, Lot
from points.services.consumer import transactions_process_all
from points.services.earning import CampaignTerms, earning_points_calculate
from points.services.expiry import points_expire_due
from points.services.ingest import transactions_store
from points.services.ledger import points_debit
from points.validation import transaction_items_validate
from tests.factories import MemberFactory
from tests.points.factories import EarningRuleFactory

TODAY = dt.date(2026, 11, 28)
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2)
caps = st.one_of(st.none(), st.integers(min_value=0, max_value=5000))


@st.composite
def rules(draw) -> EarningRule:
    return EarningRule(
        id=1,
        code="r",
        transaction_type="card_spend",
        amount_unit=draw(
            st.sampled_from([Decimal("1"), Decimal("20"), Decimal("100"), Decimal("0.5")])
        ),
        points_per_unit=draw(st.integers(min_value=1, max_value=10)),
        apply_tier_multiplier=draw(st.booleans()),
        cap_per_transaction=draw(caps),
        cap_per_day=draw(caps),
        cap_per_month=draw(caps),
    )


multipliers = st.decimals(min_value=Decimal("1"), max_value=Decimal("5"), places=2)
campaign_lists = st.lists(
    multipliers.map(
        lambda m: CampaignTerms(code=f"c{m}", multiplier=m, starts_on=TODAY, ends_on=TODAY)
    ),
    max_size=3,
)


def _calculate(rule, amount, tier, campaigns, today, month):
    return earning_points_calculate(
        rule=rule,
        amount=amount,
        on=TODAY,
        tier_multiplier=tier,
        campaigns=campaigns,
        earned_today=today,
        earned_this_month=month,
    ).points


@settings(max_examples=300, deadline=None)
@given(
    rule=rules(),
    amount=amounts,
    tier=multipliers,
    campaigns=campaign_lists,
    today=st.integers(min_value=0, max_value=6000),
    month=st.integers(min_value=0, max_value=6000),
)
def test_calculation_never_exceeds_a_cap_and_rounds_down(
    rule, amount, tier, campaigns, today, month
):
    assume(month >= today)
    points = _calculate(rule, amount, tier, campaigns, today, month)
    assert isinstance(points, int)
    assert points >= 0
    if rule.cap_per_transaction is not None:
        assert points <= rule.cap_per_transaction
    if rule.cap_per_day is not None:
        assert points <= max(0, rule.cap_per_day - today)
    if rule.cap_per_month is not None:
        assert points <= max(0, rule.cap_per_month - month)
    # Rounded down: never more than the exact (fractional) entitlement.
    best = max([c.multiplier for c in campaigns], default=Decimal(1))
    exact = amount / rule.amount_unit * rule.points_per_unit
    exact *= (tier if rule.apply_tier_multiplier else 1) * best
    assert points <= exact


@settings(max_examples=300, deadline=None)
@given(rule=rules(), low=amounts, high=amounts, tier=multipliers, campaigns=campaign_lists)
def test_calculation_is_monotone_in_the_amount(rule, low, high, tier, campaigns):
    low, high = sorted([low, high])
    assert _calculate(rule, low, tier, campaigns, 0, 0) <= _calculate(
        rule, high, tier, campaigns, 0, 0
    )


def test_partial_unit_never_earns():
    rule = EarningRule(id=1, code="r", amount_unit=Decimal("20"), points_per_unit=1)
    assert _calculate(rule, Decimal("19.99"), Decimal(1), [], 0, 0) == 0
    assert _calculate(rule, Decimal("39.99"), Decimal(1), [], 0, 0) == 1


_external_ids = itertools.count(1)


class LedgerMachine(RuleBasedStateMachine):
    """Earn, debit, reverse, expire and redeliver in any order; the ledger stays consistent."""

    earned = Bundle("earned")

    def __init__(self) -> None:
        super().__init__()
        # Transactions reach 800 days back here, to cross expiry dates.
        programme_settings_get()
        ProgrammeSettings.objects.update(oldest_transaction_days=1000)
        self.member = MemberFactory()
        self.delivered: dict[str, dict] = {}
        self.reversed: set[str] = set()

    def _item(self, **fields) -> dict:
        item = {
            "external_id": f"SM{next(_external_ids)}",
            "customer_no": self.member.customer_no,
            "type": "card_spend",
            "channel": "pos",
            "occurred_at": timezone.now() - dt.timedelta(days=fields.pop("days_ago", 0)),
        }
        item.update(fields)
        return item

    def _deliver(self, item: dict) -> None:
        valid, rejected = transaction_items_validate([item])
        assert not rejected, rejected
        transactions_store(transactions=[data for _, data in valid], via="task")
        transactions_process_all()

    def _balance(self) -> int:
        account = Account.objects.filter(member=self.member).first()  # type: ignore[misc]  # a Member
        return account.balance if account else 0

    @rule(
        target=earned,
        amount=st.integers(min_value=1, max_value=2000).map(Decimal),
        days_ago=st.integers(min_value=0, max_value=800),
    )
    def earn(self, amount, days_ago):
        item = self._item(amount=amount, days_ago=days_ago)
        self._deliver(item)
        self.delivered[item["external_id"]] = item
        return item["external_id"]

    @rule(external_id=earned)
    def redeliver(self, external_id):
        before = list(Entry.objects.filter(member=self.member).values_list("id", flat=True))
        self._deliver(self.delivered[external_id])
        after = list(Entry.objects.filter(member=self.member).values_list("id", flat=True))
        assert before == after

    @rule(points=st.integers(min_value=1, max_value=300))
    def debit(self, points):
        available = max(self._balance(), 0)
        key = f"debit:{next(_external_ids)}"
        if points > available:
            with pytest.raises(InsufficientPoints):
                points_debit(member=self.member, points=points, idempotency_key=key)
            assert self._balance() == available or self._balance() < 0
        else:
            points_debit(member=self.member, points=points, idempotency_key=key)

    @rule(external_id=earned)
    def reverse(self, external_id):
        original = self.delivered[external_id]
        self._deliver(self._item(amount=original["amount"], reverses=external_id))
        self.reversed.add(external_id)

    @rule(days=st.integers(min_value=0, max_value=900))
    def expire(self, days):
        points_expire_due(today=TODAY + dt.timedelta(days=days))

    @invariant()
    def ledger_is_consistent(self):
        entries = Entry.objects.filter(member=self.member)
        balance = self._balance()
        assert balance == (entries.aggregate(total=Sum("points"))["total"] or 0)
        last = entries.order_by("-id").first()
        assert balance == (last.balance_after if last else 0)
        lots = Lot.objects.filter(member=self.member).aggregate(total=Sum("remaining"))["total"]
        assert (lots or 0) == max(balance, 0)
        negative = entries.filter(balance_after__lt=0, points__lt=0).exclude(kind="reverse")
        assert not negative.exists()
        keys = list(entries.values_list("idempotency_key", flat=True))
        assert len(keys) == len(set(keys))


@pytest.mark.django_db
def test_ledger_state_machine_keeps_invariants():
    EarningRuleFactory(code="sm", amount_unit=Decimal("20"))
    machine_settings = settings(
        max_examples=25,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(LedgerMachine, settings=machine_settings)


_field_values = {
    "external_id": st.sampled_from(["T1", "T-2.x", "", " T3", "a" * 65, None, 5]),
    "source": st.sampled_from(["core", "cards", "", "Core", None, "x" * 33]),
    "customer_no": st.sampled_from(["KNOWN", "UNKNOWN", "", None, 7]),
    "type": st.sampled_from(["card_spend", "fund_purchase", "lottery", "", None]),
    "amount": st.one_of(
        st.sampled_from(["100.00", "0.01", "0", "-1", "1.005", "abc", "1e3", "", None, True]),
        st.decimals(allow_nan=True, allow_infinity=True, places=3),
        st.integers(min_value=-5, max_value=10**17),
        st.sampled_from(["100000000.00", "100000000.01", 100_000_000, 100_000_001]),
    ),
    "currency": st.sampled_from(["CNY", "USD", "cny", "", None]),
    "occurred_at": st.sampled_from(
        [
            "2026-11-01T10:00:00+08:00",
            "2026-11-01T02:00:00Z",
            "2026-11-01T10:00:00",
            "2099-01-01T00:00:00+00:00",
            "1900-01-01T00:00:00+00:00",
            "yesterday",
            "",
            None,
        ]
    ),
    "channel": st.sampled_from(["pos", "mobile", "fax", "", None]),
    "merchant_category": st.sampled_from(["5411", "54111", "ABCD", "", None]),
    "reverses": st.sampled_from(["T0", "T1", "", None, "bad id"]),
}


_VALID_ITEM = {
    "external_id": "T1",
    "customer_no": "KNOWN",
    "type": "card_spend",
    "amount": "100.00",
    "occurred_at": "2026-11-01T10:00:00+08:00",
    "channel": "pos",
}


@pytest.mark.django_db
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(overrides={}, dropped=set())
@example(
    overrides={"amount": 12, "source": "cards", "occurred_at": "2026-11-01T02:00:00Z"},
    dropped=set(),
)
@given(
    overrides=st.fixed_dictionaries({}, optional=_field_values),
    dropped=st.sets(st.sampled_from(sorted(_field_values)), max_size=2),
)
def test_fast_validation_accepts_nothing_the_serializer_refuses(overrides, dropped):
    """The ingest fast path, where it accepts an item, yields exactly the serializer's data."""
    from points.validation import CLOCK_SKEW, Limits, TransactionItemSerializer, _fast_validate

    item = {k: v for k, v in {**_VALID_ITEM, **overrides}.items() if k not in dropped}
    member_ids = {"KNOWN": 1}
    now = timezone.now()
    limits = Limits(
        latest=now + CLOCK_SKEW,
        earliest=now - dt.timedelta(days=400),
        oldest_days=400,
        largest_amount=Decimal("100000000.00"),
    )
    fast = _fast_validate(item, member_ids, limits)
    context = {"member_ids": member_ids, "limits": limits}
    serializer = TransactionItemSerializer(data=item, context=context)
    slow = dict(serializer.validated_data) if serializer.is_valid() else None
    if fast is not None:
        assert slow == fast
    event("fast path" if fast is not None else "serializer path")
