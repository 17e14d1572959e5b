"""The consumer's coalescing handshake, on Redis: the producer (an ingest request) sets a marker
in the cache as it enqueues a consumer task, ingests while the marker stands enqueue nothing
more, and the worker clears the marker as its task starts, so the next ingest enqueues again.

Producer and worker are separate processes: the handshake only works if they share the cache,
which the test settings make the test process's own Redis database (the worker is given it)."""

import re
import time

import pytest
import redis
from django.core.cache import cache

from config.celery import app
from points.models import Entry, Transaction
from points.services.ingest import CONSUMER_SCHEDULED_KEY
from tests.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, tx_item

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
URL = "/api/v1/ingest/transactions/"
CONSUMER_RECEIVED = r"Task points\.transactions_process\[[0-9a-f-]+\] received"


def _wait_for(condition, *, timeout: float = 30, worker=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s; worker log:\n{worker.log_tail() if worker else ''}")


def _post_one(api, member) -> None:
    answer = api.post(URL, {"transactions": [tx_item(member)]}, format="json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["accepted"] == 1


def test_one_consumer_task_per_marker_set_by_the_producer_and_cleared_by_the_worker(
    celery_worker_process, integration_api, settings
):
    # The marker outlives the test unless someone deletes it: only the worker can clear it.
    settings.POINTS_CONSUMER_COALESCE_SECONDS = 300
    EarningRuleFactory(code="card")
    member = MemberFactory()
    queue = celery_worker_process.queue
    broker = redis.Redis.from_url(app.conf.broker_url)
    cache_db = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    marker = cache.make_key(CONSUMER_SCHEDULED_KEY)
    assert not cache_db.exists(marker)

    # No worker yet: what the producer sends waits in the test's queue in Redis.
    _post_one(integration_api, member)
    assert broker.llen(queue) == 1
    assert cache_db.exists(marker)
    assert 0 < cache_db.ttl(marker) <= 300
    # Within the window: stored, but no second consumer task.
    _post_one(integration_api, member)
    _post_one(integration_api, member)
    assert broker.llen(queue) == 1
    assert Transaction.objects.filter(status="pending").count() == 3

    # The worker's task clears the marker as it starts and credits all three rows.
    worker = celery_worker_process()
    _wait_for(lambda: not cache_db.exists(marker), worker=worker)
    _wait_for(lambda: not Transaction.objects.filter(status="pending").exists(), worker=worker)
    assert Entry.objects.filter(kind="earn").count() == 3
    log = worker.log_path.read_text(errors="replace")
    assert len(re.findall(CONSUMER_RECEIVED, log)) == 1

    # The next ingest enqueues again (nothing else could credit its row: no sweep runs here).
    _post_one(integration_api, member)
    _wait_for(lambda: not Transaction.objects.filter(status="pending").exists(), worker=worker)
    log = worker.log_path.read_text(errors="replace")
    assert len(re.findall(CONSUMER_RECEIVED, log)) == 2
    assert Entry.objects.filter(kind="earn").count() == 4
    _wait_for(lambda: not cache_db.exists(marker), worker=worker)
