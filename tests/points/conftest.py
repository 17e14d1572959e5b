import pytest

from points.services.consumer import transactions_process_all
from points.services.ingest import transactions_store
from points.validation import transaction_items_validate
from tests.points.factories import EarningRuleFactory


@pytest.fixture
def card_rule(db):
    """Card spend earns 1 point per CNY 20, except real estate and wholesale MCCs."""
    return EarningRuleFactory(code="card", mcc_exclude=["6513", "1520", "5300"])


def ingest(items: list[dict], *, via: str = "api", process: bool = True) -> dict:
    """Validate and store like the API does, then drain the inbox in-process."""
    valid, rejected = transaction_items_validate(items)
    assert not rejected, rejected
    counts = transactions_store(transactions=[item for _, item in valid], via=via)
    if process:
        transactions_process_all()
    return counts
