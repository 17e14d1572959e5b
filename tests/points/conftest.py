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


@pytest.fixture
def roles_synced(transactional_db):
    """Role groups for ``transaction=True`` tests: the flush between them empties auth tables
    and its post_migrate signal carries no ``apps``, so ``roles_sync_after_migrate`` skips."""
    from django.contrib.auth.models import Group, Permission

    from loyalty.roles import roles_sync

    roles_sync(group_model=Group, permission_model=Permission)
