"""Property-based tests: the earning calculation, the ledger against a model, validation.

* Earning: bounds and monotonicity, and exact points on generated rule/amount pairs, against a
  formula written here from the documented semantics (full units times points per unit, the
  tier and the best applicable campaign multiplier, rounded down, per-transaction, daily and
  monthly caps), both for the pure calculation and through the inbox and consumer (with the
  rule's minimum amount and the member's tier from the database).
* The ledger: a state machine of earns, redemptions, reversals, expiry runs and redeliveries
  whose every step is compared with a plain-Python model of the balance, lifetime totals,
  entries and lots (expiry date per lot, earliest expiry consumed first, debt repaid first).
* Ingest validation: the fast path never accepts what the serializer refuses, and the ingest's
  answer is the serializer's for every generated item.
"""

import calendar
import datetime as dt
import itertools
import math
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from loyalty.models import ProgrammeSettings
from loyalty.selectors import programme_settings_get
from members.models import Member, Tier
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


def _expected_points(
    *, rule, amount, tier_code, tier_multiplier, campaigns, on, earned_today, earned_this_month
) -> int:
    """The documented calculation, written out independently of the production code: full
    ``amount_unit``s of the amount times ``points_per_unit``; times the tier multiplier (when the
    rule applies it) and the highest multiplier of the campaigns that apply (window, rules,
    tiers), rounded down once; then no more than the per-transaction cap and what is left of
    the daily and monthly caps."""
    units = Fraction(amount) // Fraction(rule.amount_unit)  # a partial unit never earns
    base = int(units) * rule.points_per_unit
    tier = Fraction(tier_multiplier) if rule.apply_tier_multiplier else Fraction(1)
    applicable = [
        Fraction(c.multiplier)
        for c in campaigns
        if c.starts_on <= on <= c.ends_on
        and (not c.rule_ids or rule.pk in c.rule_ids)
        and (not c.target_tiers or tier_code in c.target_tiers)
    ]
    points = math.floor(base * tier * max(applicable, default=Fraction(1)))
    if rule.cap_per_transaction is not None:
        points = min(points, rule.cap_per_transaction)
    if rule.cap_per_day is not None:
        points = min(points, max(0, rule.cap_per_day - earned_today))
    if rule.cap_per_month is not None:
        points = min(points, max(0, rule.cap_per_month - earned_this_month))
    return points


units = st.sampled_from(
    [Decimal("0.5"), Decimal("1"), Decimal("7.5"), Decimal("20"), Decimal("100"), Decimal("0.01")]
)


@st.composite
def exact_rules(draw) -> EarningRule:
    return EarningRule(
        id=draw(st.sampled_from([1, 2])),
        code="r",
        transaction_type="card_spend",
        amount_unit=draw(units),
        points_per_unit=draw(st.integers(min_value=1, max_value=10)),
        apply_tier_multiplier=draw(st.booleans()),
        cap_per_transaction=draw(caps),
        cap_per_day=draw(caps),
        cap_per_month=draw(caps),
    )


@st.composite
def campaign_terms(draw) -> CampaignTerms:
    """Campaigns that may or may not apply: by window, by rule, by tier."""
    starts = TODAY + dt.timedelta(days=draw(st.integers(min_value=-3, max_value=1)))
    ends = starts + dt.timedelta(days=draw(st.integers(min_value=0, max_value=3)))
    multiplier = draw(multipliers)
    return CampaignTerms(
        code=f"c{multiplier}-{starts}-{ends}",
        multiplier=multiplier,
        starts_on=starts,
        ends_on=ends,
        rule_ids=frozenset(draw(st.sets(st.sampled_from([1, 2]), max_size=1))),
        target_tiers=frozenset(draw(st.sets(st.sampled_from(["GOLD", "SILVER"]), max_size=1))),
    )


@settings(max_examples=400, deadline=None)
@example(  # CNY 39.99 at 1 point per CNY 20: 1 point
    rule=EarningRule(id=1, code="r", amount_unit=Decimal(20), points_per_unit=1),
    amount=Decimal("39.99"),
    tier_code=None,
    tier=Decimal(1),
    campaigns=[],
    today=0,
    month=0,
)
@example(  # 1000 / 20 = 50 points, x1.5 tier x2 campaign = 150, capped at 120 a transaction
    rule=EarningRule(
        id=1, code="r", amount_unit=Decimal(20), points_per_unit=1, cap_per_transaction=120
    ),
    amount=Decimal("1000.00"),
    tier_code="GOLD",
    tier=Decimal("1.5"),
    campaigns=[CampaignTerms(code="c", multiplier=Decimal(2), starts_on=TODAY, ends_on=TODAY)],
    today=0,
    month=0,
)
@given(
    rule=exact_rules(),
    amount=amounts,
    tier_code=st.sampled_from([None, "GOLD", "SILVER"]),
    tier=multipliers,
    campaigns=st.lists(campaign_terms(), max_size=3),
    today=st.integers(min_value=0, max_value=6000),
    month=st.integers(min_value=0, max_value=6000),
)
def test_calculation_gives_exactly_the_documented_points(
    rule, amount, tier_code, tier, campaigns, today, month
):
    points = earning_points_calculate(
        rule=rule,
        amount=amount,
        on=TODAY,
        tier_code=tier_code,
        tier_multiplier=tier,
        campaigns=campaigns,
        earned_today=today,
        earned_this_month=max(today, month),
    ).points
    assert points == _expected_points(
        rule=rule,
        amount=amount,
        tier_code=tier_code,
        tier_multiplier=tier,
        campaigns=campaigns,
        on=TODAY,
        earned_today=today,
        earned_this_month=max(today, month),
    )
    event("capped" if rule.cap_per_transaction is not None else "uncapped")


def test_documented_examples_of_the_calculation():
    """A few worked examples, by hand, so the independent formula above is itself checked."""
    rule = EarningRule(id=1, code="r", amount_unit=Decimal(20), points_per_unit=1)
    gold = CampaignTerms(code="c", multiplier=Decimal("2"), starts_on=TODAY, ends_on=TODAY)
    cases = [
        # (amount, tier multiplier, campaigns, points)
        (Decimal("19.99"), Decimal(1), [], 0),
        (Decimal("39.99"), Decimal(1), [], 1),
        (Decimal("1000.00"), Decimal("1.5"), [], 75),
        (Decimal("1000.00"), Decimal("1.5"), [gold], 150),
        (Decimal("60.00"), Decimal("1.2"), [], 3),  # 3 x 1.2 = 3.6, rounded down
        (Decimal("60.00"), Decimal("1.2"), [gold], 7),  # 3 x 1.2 x 2 = 7.2
    ]
    for amount, tier, campaigns, expected in cases:
        assert _calculate(rule, amount, tier, campaigns, 0, 0) == expected, (amount, tier)
        assert (
            _expected_points(
                rule=rule,
                amount=amount,
                tier_code=None,
                tier_multiplier=tier,
                campaigns=campaigns,
                on=TODAY,
                earned_today=0,
                earned_this_month=0,
            )
            == expected
        )


_ranks = itertools.count(100)
# Caps a pair of transactions can reach, so the daily and monthly ones come into play.
small_caps = st.one_of(st.none(), st.integers(min_value=0, max_value=300))


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@example(  # 20 points, then 20 more of which only 10 fit under the daily cap of 30
    unit=Decimal(20),
    per_unit=1,
    minimum=Decimal(0),
    apply_tier=False,
    tier=Decimal(1),
    campaign=None,
    cap_tx=None,
    cap_day=30,
    cap_month=None,
    first=Decimal("400.00"),
    second=Decimal("400.00"),
)
@example(  # the same under a monthly cap
    unit=Decimal(20),
    per_unit=1,
    minimum=Decimal(0),
    apply_tier=False,
    tier=Decimal(1),
    campaign=None,
    cap_tx=None,
    cap_day=None,
    cap_month=30,
    first=Decimal("400.00"),
    second=Decimal("400.00"),
)
@given(
    unit=units,
    per_unit=st.integers(min_value=1, max_value=5),
    minimum=st.sampled_from([Decimal("0"), Decimal("50"), Decimal("1000")]),
    apply_tier=st.booleans(),
    tier=st.decimals(min_value=Decimal("1"), max_value=Decimal("3"), places=2),
    campaign=st.one_of(st.none(), multipliers),
    cap_tx=small_caps,
    cap_day=small_caps,
    cap_month=small_caps,
    first=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("20000"), places=2),
    second=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("20000"), places=2),
)
def test_consumer_credits_exactly_the_documented_points(
    unit, per_unit, minimum, apply_tier, tier, campaign, cap_tx, cap_day, cap_month, first, second
):
    """Through the inbox and the consumer: the rule's minimum amount (below it no rule
    applies), its units, the member's tier multiplier, the campaign, and the caps counted
    over two transactions of the same business day."""
    from points.models import Campaign, Transaction
    from tests.points.conftest import ingest
    from tests.points.factories import CampaignFactory, tx_item

    EarningRule.objects.update(active=False)
    Campaign.objects.update(active=False)
    Tier.objects.update(active=False)
    rank = next(_ranks)
    Tier.objects.create(code=f"T{rank}", name_en="Base", rank=rank, multiplier=tier)
    rule = EarningRuleFactory(
        code=f"exact-{rank}",
        amount_unit=unit,
        points_per_unit=per_unit,
        min_amount=minimum,
        apply_tier_multiplier=apply_tier,
        cap_per_transaction=cap_tx,
        cap_per_day=cap_day,
        cap_per_month=cap_month,
    )
    terms = []
    if campaign is not None:
        CampaignFactory(code=f"camp-{rank}", multiplier=campaign).rules.add(rule)
        # A bigger multiplier whose window is over must not apply.
        CampaignFactory(
            code=f"past-{rank}",
            multiplier=campaign + 1,
            starts_on=dt.date(2020, 1, 1),
            ends_on=dt.date(2020, 12, 31),
        )
        terms = [
            CampaignTerms(code="c", multiplier=campaign, starts_on=dt.date.min, ends_on=dt.date.max)
        ]
    member = MemberFactory()
    occurred = timezone.now() - dt.timedelta(hours=1)
    items = [
        tx_item(member, amount=f"{amount:.2f}", occurred_at=occurred.isoformat())
        for amount in (first, second)
    ]
    ingest(items)
    used = 0
    expected = []
    for amount in (first, second):
        points = 0
        if amount >= minimum:
            points = _expected_points(
                rule=rule,
                amount=amount,
                tier_code=f"T{rank}",
                tier_multiplier=tier,
                campaigns=terms,
                on=TODAY,
                earned_today=used,
                earned_this_month=used,
            )
        used += points
        expected.append(points)
    stored = Transaction.objects.filter(member=member).order_by("id")
    assert list(stored.values_list("status", "points")) == [("processed", p) for p in expected]
    earned = Entry.objects.filter(member=member, kind="earn").order_by("id")
    assert list(earned.values_list("points", flat=True)) == [p for p in expected if p]
    event("below minimum" if min(first, second) < minimum else "above minimum")


_external_ids = itertools.count(1)

# The state machine's earning rule and base tier: CNY 20 a unit, 1 point a unit, x1.5 for every
# member (the lowest active tier's multiplier applies to members without a tier state).
SM_UNIT = 20
SM_TIER = Fraction("1.5")
SM_POLICIES = [("end_of_month", 24), ("end_of_month", 1), ("exact", 1), ("exact", 13), ("never", 1)]


def _business_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZoneInfo(django_settings.BUSINESS_TIME_ZONE)).date()


def _month_shift(day: dt.date, months: int) -> dt.date:
    """``day`` a number of calendar months later, clamped to the last day of a shorter month."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _model_expiry(earned_on: dt.date, policy: str, months: int) -> dt.date | None:
    """The last valid day of points earned on ``earned_on`` (the programme's three policies)."""
    if policy == "never":
        return None
    later = _month_shift(earned_on, months)
    if policy == "exact":
        return later
    return later.replace(day=calendar.monthrange(later.year, later.month)[1])


class ModelLot:
    """A lot as the model expects it: created in this order, consumed by expiry date."""

    def __init__(self, *, seq: int, points: int, remaining: int, earned_on, expires_on) -> None:
        self.seq = seq
        self.points = points
        self.remaining = remaining
        self.earned_on = earned_on
        self.expires_on = expires_on

    def order(self) -> tuple:
        # Earliest expiry first, never-expiring last; then earliest earned, then oldest lot.
        return (self.expires_on is None, self.expires_on or dt.date.max, self.earned_on, self.seq)

    def row(self) -> tuple:
        return (self.points, self.remaining, self.earned_on, self.expires_on)


class LedgerMachine(RuleBasedStateMachine):
    """Earn, debit, reverse, expire and redeliver in any order, against a model in plain Python.

    The model knows the earning rule (CNY 20 a point, x1.5 tier multiplier, rounded down), the
    expiry policy drawn for the run, and the ledger's semantics: a credit repays debt first and
    forms a lot of the rest; a redemption is refused beyond the balance, otherwise it consumes
    the lots earliest expiry first; a reversal claws back the original's points once, from the
    lots while the balance lasts and as debt beyond; expiry empties every lot whose last day is
    before the day it runs, one entry per lot. After every step the database must hold exactly
    the model's balance, lifetime totals, entries (kind, points, balance_after in order) and
    lots (points, remaining, earned on, expires on in order), and be internally consistent.
    """

    earned = Bundle("earned")

    def __init__(self) -> None:
        super().__init__()
        programme_settings_get()
        # Transactions reach 800 days back here, to cross expiry dates.
        ProgrammeSettings.objects.update(oldest_transaction_days=1000)
        self.member = MemberFactory()
        self.delivered: dict[str, dict] = {}
        self.policy, self.months = "end_of_month", 24
        # The model.
        self.balance = 0
        self.lifetime_earned = 0
        self.lifetime_redeemed = 0
        self.entries: list[tuple[str, int, int]] = []
        self.lots: list[ModelLot] = []
        self.earned_points: dict[str, int] = {}
        self.reversed: set[str] = set()

    @initialize(policy=st.sampled_from(SM_POLICIES))
    def choose_expiry_policy(self, policy):
        self.policy, self.months = policy
        ProgrammeSettings.objects.update(expiry_policy=self.policy, expiry_months=self.months)

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

    # The model's ledger operations.
    def _model_entry(self, kind: str, points: int) -> None:
        self.balance += points
        self.entries.append((kind, points, self.balance))

    def _model_consume(self, points: int) -> None:
        if sum(1 for lot in self.lots if lot.remaining) > 1:
            event("a debit chooses between lots")
        for lot in sorted(self.lots, key=ModelLot.order):
            take = min(lot.remaining, points)
            lot.remaining -= take
            points -= take
        assert points == 0, "the model's lots fell short of its balance"

    def _model_credit(self, points: int, earned_on: dt.date) -> None:
        debt = max(0, -self.balance)
        if debt:
            event("a credit repays debt")
        self.lots.append(
            ModelLot(
                seq=len(self.lots),
                points=points,
                remaining=points - min(points, debt),
                earned_on=earned_on,
                expires_on=_model_expiry(earned_on, self.policy, self.months),
            )
        )
        self.lifetime_earned += points
        self._model_entry("earn", points)

    @rule(
        target=earned,
        amount=st.integers(min_value=1, max_value=2000),
        days_ago=st.integers(min_value=0, max_value=800),
    )
    def earn(self, amount, days_ago):
        item = self._item(amount=Decimal(amount), days_ago=days_ago)
        self._deliver(item)
        self.delivered[item["external_id"]] = item
        points = int(amount // SM_UNIT * SM_TIER)  # whole units, then the multiplier, rounded down
        self.earned_points[item["external_id"]] = points
        if points:
            self._model_credit(points, _business_day(item["occurred_at"]))
        return item["external_id"]

    @rule(external_id=earned)
    def redeliver(self, external_id):
        self._deliver(self.delivered[external_id])  # the model: nothing changes

    @rule(points=st.integers(min_value=1, max_value=300))
    def debit(self, points):
        key = f"debit:{next(_external_ids)}"
        if points > max(self.balance, 0):
            with pytest.raises(InsufficientPoints):
                points_debit(member=self.member, points=points, idempotency_key=key)
            return
        points_debit(member=self.member, points=points, idempotency_key=key)
        self._model_consume(points)
        self.lifetime_redeemed += points
        self._model_entry("redeem", -points)

    @rule(external_id=earned)
    def reverse(self, external_id):
        original = self.delivered[external_id]
        self._deliver(self._item(amount=original["amount"], reverses=external_id))
        points = self.earned_points[external_id]
        if external_id in self.reversed or points == 0:
            return
        self.reversed.add(external_id)
        self._model_consume(min(points, max(self.balance, 0)))
        self.lifetime_earned = max(0, self.lifetime_earned - points)
        self._model_entry("reverse", -points)

    @rule(days=st.integers(min_value=0, max_value=900))
    def expire(self, days):
        today = TODAY + dt.timedelta(days=days)
        points_expire_due(today=today)
        for lot in self.lots:  # one entry per lot, in the order the lots were made
            if lot.remaining and lot.expires_on is not None and lot.expires_on < today:
                event("a lot expires")
                points, lot.remaining = lot.remaining, 0
                self._model_entry("expire", -points)

    @invariant()
    def database_matches_the_model(self):
        account = Account.objects.filter(member=self.member).first()  # type: ignore[misc]  # a Member
        totals = (
            (account.balance, account.lifetime_earned, account.lifetime_redeemed)
            if account
            else (0, 0, 0)
        )
        assert totals == (self.balance, self.lifetime_earned, self.lifetime_redeemed)
        entries = Entry.objects.filter(member=self.member).order_by("id")  # type: ignore[misc]
        assert list(entries.values_list("kind", "points", "balance_after")) == self.entries
        lots = Lot.objects.filter(member=self.member).order_by("id")  # type: ignore[misc]
        assert list(lots.values_list("points", "remaining", "earned_on", "expires_on")) == [
            lot.row() for lot in self.lots
        ]

    @invariant()
    def ledger_is_consistent(self):
        entries = Entry.objects.filter(member=self.member)  # type: ignore[misc]  # a Member
        assert self.balance == (entries.aggregate(total=Sum("points"))["total"] or 0)
        lots = Lot.objects.filter(member=self.member).aggregate(total=Sum("remaining"))["total"]  # type: ignore[misc]
        assert (lots or 0) == max(self.balance, 0)
        negative = entries.filter(balance_after__lt=0, points__lt=0).exclude(kind="reverse")
        assert not negative.exists()
        keys = list(entries.values_list("idempotency_key", flat=True))
        assert len(keys) == len(set(keys))


@pytest.mark.django_db
def test_ledger_state_machine_matches_its_model():
    EarningRuleFactory(code="sm", amount_unit=Decimal(SM_UNIT), points_per_unit=1)
    Tier.objects.create(code="SMBASE", name_en="Base", rank=1, multiplier=Decimal("1.50"))
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
    """For every item: the ingest fast path, where it accepts, yields exactly the serializer's
    data; and what the ingest's validation returns (fast path or serializer) is the serializer's
    verdict, accepted with the same data or rejected with a reason."""
    from points.validation import CLOCK_SKEW, Limits, TransactionItemSerializer, _fast_validate

    known = Member.objects.filter(customer_no="KNOWN").first() or MemberFactory(customer_no="KNOWN")
    item = {k: v for k, v in {**_VALID_ITEM, **overrides}.items() if k not in dropped}
    member_ids = {"KNOWN": known.pk}
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
    # The fast path either declines (None) or agrees with the serializer exactly.
    assert fast in (None, slow)
    assert fast is None or slow is not None
    # Either way, the ingest's own validation gives the serializer's verdict.
    valid, rejected = transaction_items_validate([item])
    assert [data for _, data in valid] == ([] if slow is None else [slow])
    assert [row["index"] for row in rejected] == ([0] if slow is None else [])
    assert all(row["errors"] for row in rejected)
    event("fast path" if fast is not None else "serializer path")


@pytest.mark.django_db
def test_fast_validation_takes_a_plainly_valid_item():
    """The property above is not vacuous: the fast path does accept the plain item."""
    from points.validation import CLOCK_SKEW, Limits, _fast_validate

    now = timezone.now()
    limits = Limits(
        latest=now + CLOCK_SKEW,
        earliest=now - dt.timedelta(days=400),
        oldest_days=400,
        largest_amount=Decimal("100000000.00"),
    )
    data = _fast_validate(dict(_VALID_ITEM), {"KNOWN": 1}, limits)
    assert data is not None
    assert (data["member_id"], data["amount"], data["source"]) == (1, Decimal("100.00"), "core")
