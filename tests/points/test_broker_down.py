"""Ingest while the broker cannot be reached: the rows are committed, so the answer is 202, and
the sweeper credits them once a broker answers again."""

import datetime as dt
from contextlib import contextmanager

import pytest
import redis
from django.core.cache import cache

from config.celery import app
from points.models import Entry, Transaction
from points.services.ingest import CONSUMER_SCHEDULED_KEY, transactions_sweep
from points.services.reconciliation import points_reconcile
from tests.factories import MemberFactory
from tests.points.factories import tx_item

# Committed for real, so the wake-up is sent after the commit as in production.
pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/ingest/transactions/"


def _fresh_connections() -> None:
    # New pools for the new broker URL. The old ones are left open, not closed: whatever else
    # holds them (another test's producer) keeps working.
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_unreachable():
    """Celery publishes to a port nothing listens on (connection refused), without retrying
    (neither the publish nor the connection: kombu would otherwise retry connecting for its
    connect timeout, seconds per request)."""
    keys = ("broker_url", "task_always_eager", "task_publish_retry", "broker_transport_options")
    saved = {key: app.conf[key] for key in keys}
    app.conf.update(
        broker_url="redis://127.0.0.1:9/0",
        task_always_eager=False,
        task_publish_retry=False,
        broker_transport_options={**saved["broker_transport_options"], "max_retries": 0},
    )
    _fresh_connections()
    try:
        yield
    finally:
        app.conf.update(saved)
        _fresh_connections()


def test_ingest_answers_202_with_the_broker_down_and_the_sweeper_credits_later(
    integration_api, card_rule
):
    member = MemberFactory()
    items = [tx_item(member) for _ in range(5)]
    with broker_unreachable():
        response = integration_api.post(URL, {"transactions": items}, format="json")
        assert response.status_code == 202, response.content
        assert response.json()["accepted"] == 5
        again = integration_api.post(URL, {"transactions": items}, format="json")
        assert (again.status_code, again.json()["duplicates"]) == (202, 5)
    assert Transaction.objects.filter(status="pending").count() == 5
    assert not Entry.objects.exists()
    # The broker is back (tasks run in-process in the tests): one sweep credits every row once.
    transactions_sweep(older_than=dt.timedelta(0))
    assert Transaction.objects.filter(status="processed").count() == 5
    assert Entry.objects.filter(kind="earn").count() == 5
    assert points_reconcile()[1] == []


def test_resending_a_batch_whose_rows_are_still_pending_wakes_a_consumer(
    integration_api, card_rule, settings
):
    member = MemberFactory()
    items = [tx_item(member) for _ in range(3)]
    with broker_unreachable():  # the first wake-up is lost
        integration_api.post(URL, {"transactions": items}, format="json")
    assert Transaction.objects.filter(status="pending").count() == 3
    # Its coalescing marker stands in Redis (the cache answered; the broker did not), so a
    # coalesced wake-up would send nothing for a while: the resend must not be coalesced.
    cache_db = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert cache_db.exists(cache.make_key(CONSUMER_SCHEDULED_KEY))
    # The broker answers again (tasks run in-process here): the resend stores nothing new but
    # wakes a consumer, which credits the waiting rows.
    again = integration_api.post(URL, {"transactions": items}, format="json")
    assert again.json() == {"accepted": 0, "duplicates": 3, "rejected": []}
    assert Transaction.objects.filter(status="processed").count() == 3
    assert Entry.objects.filter(kind="earn").count() == 3
