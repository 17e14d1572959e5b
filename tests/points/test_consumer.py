import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from members.services.members import member_freeze
from members.services.segments import segment_create
from points.models import Account, Entry, Transaction
from points.services import consumer
from points.services.consumer import transactions_process_all
from points.services.ingest import transactions_sweep
from points.services.ledger import points_debit
from points.services.reconciliation import points_reconcile
from tests.factories import MemberFactory
from tests.points.conftest import ingest
from tests.points.factories import CampaignFactory, EarningRuleFactory, tx_item

pytestmark = pytest.mark.django_db


def _balance(member) -> int:
    account = Account.objects.filter(member=member).first()
    return account.balance if account else 0


def test_card_spend_earns_one_point_per_full_twenty_and_explains_it(card_rule):
    member = MemberFactory()
    ingest([tx_item(member, external_id="A1", amount="399.99")])
    entry = Entry.objects.get(member=member)
    assert (entry.kind, entry.points, entry.balance_after) == ("earn", 19, 19)
    assert entry.rules["rule"] == "card"
    assert entry.rules["base"] == 19
    assert entry.idempotency_key == "tx:core:A1"
    row = Transaction.objects.get(external_id="A1")
    assert (row.status, row.points) == ("processed", 19)


def test_excluded_merchant_category_earns_nothing(card_rule):
    member = MemberFactory()
    ingest([tx_item(member, external_id="RE1", amount="5000.00", merchant_category="6513")])
    assert not Entry.objects.filter(member=member).exists()
    assert Transaction.objects.get(external_id="RE1").status_reason == "no_rule"


def test_daily_cap_holds_across_transactions_of_one_batch():
    EarningRuleFactory(code="capped", cap_per_day=30)
    member = MemberFactory()
    ingest([tx_item(member, amount="400.00") for _ in range(3)])
    assert _balance(member) == 30
    assert sorted(Transaction.objects.values_list("points", flat=True)) == [0, 10, 20]


def test_campaign_doubles_points_for_targeted_tier_only(card_rule):
    CampaignFactory(code="double", multiplier=Decimal("2"), target_tiers=["gold"])
    everyone = CampaignFactory(code="one-and-half", multiplier=Decimal("1.5"))
    everyone.rules.add(card_rule)
    member = MemberFactory()
    ingest([tx_item(member, amount="100.00")])
    entry = Entry.objects.get(member=member)
    # Nobody has the gold tier yet, so only the 1.5x campaign applies: 5 * 1.5 = 7.5 -> 7.
    assert entry.points == 7
    assert entry.rules["campaign"] == {"code": "one-and-half", "multiplier": "1.50"}


def test_a_campaign_for_a_segment_applies_to_its_members_only(card_rule):
    inside, outside = MemberFactory(city="Qingdao"), MemberFactory(city="Jinan")
    coastal = segment_create(actor=None, name_en="Qingdao", rule={"cities": ["Qingdao"]})
    CampaignFactory(code="coastal", multiplier=Decimal("3"), target_segment=coastal)
    ingest([tx_item(inside, amount="100.00"), tx_item(outside, amount="100.00")])
    # 100 / 20 = 5 points; tripled for the segment's member only.
    assert (_balance(inside), _balance(outside)) == (15, 5)
    assert Entry.objects.get(member=inside).rules["campaign"]["code"] == "coastal"
    assert Entry.objects.get(member=outside).rules["campaign"] is None


def test_refund_reverses_the_original_points(card_rule):
    member = MemberFactory()
    ingest([tx_item(member, external_id="O1", amount="200.00")])
    ingest([tx_item(member, external_id="R1", amount="200.00", reverses="O1")])
    assert _balance(member) == 0
    reverse = Entry.objects.get(member=member, kind="reverse")
    assert reverse.points == -10


def test_partial_refunds_reverse_their_share_and_never_more(card_rule):
    member = MemberFactory()
    ingest([tx_item(member, external_id="O1", amount="200.00")])
    ingest([tx_item(member, external_id="R1", amount="100.00", reverses="O1")])
    assert _balance(member) == 5
    ingest([tx_item(member, external_id="R2", amount="150.00", reverses="O1")])
    assert _balance(member) == 0


def test_refund_arriving_before_its_original_is_parked_then_reversed(card_rule):
    member = MemberFactory()
    ingest([tx_item(member, external_id="R1", amount="200.00", reverses="O1")])
    assert Transaction.objects.get(external_id="R1").status == "parked"
    assert _balance(member) == 0
    ingest([tx_item(member, external_id="O1", amount="200.00")])
    assert Transaction.objects.get(external_id="R1").status == "processed"
    assert _balance(member) == 0
    assert Entry.objects.filter(member=member).count() == 2


def test_reversal_of_spent_points_leaves_debt_repaid_by_later_earnings(card_rule):
    member = MemberFactory()
    ingest([tx_item(member, external_id="O1", amount="200.00")])
    points_debit(member=member, points=8, idempotency_key="redeem:1")
    ingest([tx_item(member, external_id="R1", amount="200.00", reverses="O1")])
    assert _balance(member) == -8
    ingest([tx_item(member, external_id="O2", amount="300.00")])
    assert _balance(member) == 7
    assert points_reconcile()[1] == []


def test_frozen_member_transaction_is_recorded_and_skipped(card_rule):
    member = MemberFactory()
    member_freeze(member=member, actor=None)
    ingest([tx_item(member, external_id="F1")])
    row = Transaction.objects.get(external_id="F1")
    assert (row.status, row.status_reason) == ("skipped", "member_frozen")
    assert not Entry.objects.filter(member=member).exists()


def test_sweeper_releases_a_parked_refund_whose_original_was_processed_elsewhere(card_rule):
    member = MemberFactory()
    ingest([tx_item(member, external_id="O1", amount="200.00")])
    # As if a concurrent batch parked the refund before it could see the original's commit.
    ingest([tx_item(member, external_id="R1", amount="200.00", reverses="O1")], process=False)
    Transaction.objects.filter(external_id="R1").update(status="parked")
    result = transactions_sweep(older_than=dt.timedelta(0))
    assert result["released"] == 1
    transactions_process_all()
    assert _balance(member) == 0


def test_sweeper_counts_rows_left_pending(card_rule):
    member = MemberFactory()
    ingest([tx_item(member)], process=False)
    Transaction.objects.update(received_at=timezone.now() - dt.timedelta(hours=1))
    assert transactions_sweep(older_than=dt.timedelta(minutes=5))["stale"] == 1


def test_within_a_batch_each_row_gets_the_first_rule_its_amount_qualifies_for(db):
    # The consumer remembers, per kind of transaction, the rules that match all but the amount;
    # the rule applied must still be the first (by priority) whose minimum amount is reached.
    big = EarningRuleFactory(code="big", priority=1, min_amount=Decimal("1000"), amount_unit=10)
    EarningRuleFactory(code="mobile-only", priority=2, channels=["mobile"], amount_unit=1)
    small = EarningRuleFactory(code="small", priority=3, amount_unit=Decimal("20"))
    member = MemberFactory()
    ingest(
        [
            tx_item(member, external_id="R1", amount="999.99"),
            tx_item(member, external_id="R2", amount="1000.00"),
            tx_item(member, external_id="R3", amount="40.00"),
            tx_item(member, external_id="R4", amount="40.00", channel="mobile"),
            tx_item(member, external_id="R5", amount="5000.00", channel="mobile"),
        ]
    )
    applied = {
        entry.reference.split(":")[1]: (entry.earning_rule_id, entry.points)
        for entry in Entry.objects.filter(member=member)
    }
    mobile = EarningRuleFactory(code="mobile-only")
    assert applied == {
        "R1": (small.pk, 49),
        "R2": (big.pk, 100),
        "R3": (small.pk, 2),
        "R4": (mobile.pk, 40),
        "R5": (big.pk, 500),
    }


def test_a_consumer_stops_at_a_batch_that_is_not_full_and_leaves_later_rows_to_the_next(
    card_rule, monkeypatch
):
    """One transaction a request stays in batches: a row that arrives while a batch runs is not
    claimed on its own at once (its ingest woke a coalesced consumer); full batches go on."""
    member = MemberFactory()
    ingest([tx_item(member) for _ in range(3)], process=False)
    real = consumer.transactions_process_batch
    claimed: list[int] = []

    def batch(**kwargs) -> int:
        count = real(**kwargs)
        claimed.append(count)
        if arriving:
            ingest([tx_item(member) for _ in range(arriving.pop())], process=False)
        return count

    monkeypatch.setattr(consumer, "transactions_process_batch", batch)
    arriving = [1]
    assert consumer.transactions_process(limit=10) == 3
    assert claimed == [3]
    assert Transaction.objects.filter(status="pending").count() == 1

    claimed.clear()
    ingest([tx_item(member) for _ in range(24)], process=False)  # a backlog: 25 pending
    assert consumer.transactions_process(limit=10) == 25
    assert claimed == [10, 10, 5]
    assert not Transaction.objects.filter(status="pending").exists()
