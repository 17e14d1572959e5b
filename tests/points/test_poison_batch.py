"""One row that cannot be credited must not hold the inbox back."""

from decimal import Decimal

import pytest

from loyalty.models import ProgrammeSettings
from loyalty.selectors import programme_settings_get
from points.models import Entry, Transaction
from points.services.consumer import transactions_process_all
from points.services.reconciliation import points_reconcile
from tests.factories import MemberFactory
from tests.points.conftest import ingest
from tests.points.factories import EarningRuleFactory, tx_item

pytestmark = pytest.mark.django_db


def test_a_row_whose_points_overflow_is_marked_failed_and_the_rest_are_credited():
    # A misconfigured rule (1,000 points per cent): the largest amount earns more points than
    # a 64-bit column holds, so PostgreSQL refuses that row's entry.
    EarningRuleFactory(code="wild", amount_unit=Decimal("0.01"), points_per_unit=1000)
    programme_settings_get()  # the largest amount a column holds passes the plausibility limit
    ProgrammeSettings.objects.update(largest_transaction_amount=Decimal("9999999999999999.99"))
    rich, normal = MemberFactory(), MemberFactory()
    items = [
        tx_item(normal, amount="1.00"),
        tx_item(rich, amount="9999999999999999.99"),
        tx_item(normal, amount="2.00"),
    ]
    ingest(items, process=False)
    transactions_process_all()
    statuses = dict(Transaction.objects.values_list("external_id", "status"))
    assert statuses == {
        items[0]["external_id"]: "processed",
        items[1]["external_id"]: "failed",
        items[2]["external_id"]: "processed",
    }
    failed = Transaction.objects.get(external_id=items[1]["external_id"])
    assert failed.status_reason
    assert sorted(Entry.objects.filter(member=normal).values_list("points", flat=True)) == [
        100_000,
        200_000,
    ]
    assert not Entry.objects.filter(member=rich).exists()
    assert points_reconcile()[1] == []
