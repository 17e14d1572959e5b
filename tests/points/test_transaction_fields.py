"""One list of a delivered transaction's fields (Transaction.DELIVERED_FIELDS): what validation
returns, by its fast path and by the serializer, is what the inbox stores."""

import datetime as dt

import pytest

from points.models import Transaction
from points.validation import TransactionItemSerializer, transaction_items_validate
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


EXPECTED = {"customer_no", "member_id", *Transaction.DELIVERED_FIELDS}


def test_the_serializer_declares_every_delivered_field():
    assert set(TransactionItemSerializer().fields) == {"customer_no", *Transaction.DELIVERED_FIELDS}


def test_both_validation_paths_return_the_delivered_fields_and_the_inbox_stores_them(
    business_clock,
):
    member = MemberFactory()
    shanghai = dt.timezone(dt.timedelta(hours=8))
    # A few days back, whatever the day: within the plausibility limits, never in the future.
    occurred_at = (business_clock.now - dt.timedelta(days=3)).astimezone(shanghai)
    plain = {
        "external_id": "T-1",
        "customer_no": member.customer_no,
        "type": "card_spend",
        "amount": "12.30",
        "occurred_at": occurred_at.replace(hour=10, minute=0, second=0, microsecond=0).isoformat(),
        "channel": "pos",
    }
    # A float amount is not "plainly valid": the serializer decides that one.
    slow = {**plain, "external_id": "T-2", "amount": 12.5}
    from points.validation import Limits, _fast_validate

    # The plain item takes the fast path, the float one is left to the serializer.
    assert _fast_validate(plain, {member.customer_no: member.pk}, Limits.now()) is not None
    assert _fast_validate(slow, {member.customer_no: member.pk}, Limits.now()) is None
    valid, rejected = transaction_items_validate([plain, slow])
    assert rejected == []
    assert [set(item) for _, item in valid] == [EXPECTED, EXPECTED]

    from points.services.ingest import transactions_store

    transactions_store(transactions=[item for _, item in valid], via=Transaction.Via.API)
    stored = Transaction.objects.values(*Transaction.DELIVERED_FIELDS).order_by("external_id")
    assert list(stored) == [
        {name: item[name] for name in Transaction.DELIVERED_FIELDS} for _, item in valid
    ]
