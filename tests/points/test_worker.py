"""A real Celery worker on Redis consumes the inbox, and survives being killed mid-batch."""

import datetime as dt
import time

import pytest
from django.core.management import call_command
from django.db.models import Count

from points.models import Entry, Transaction
from points.services.ingest import transactions_store, transactions_sweep
from points.services.reconciliation import points_reconcile
from points.validation import transaction_items_validate
from tests.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, tx_item

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 90


def _wait_for(condition, *, timeout: float = TIMEOUT, workers=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    logs = "\n".join(worker.log_tail() for worker in workers)
    pytest.fail(f"timed out after {timeout}s; worker log:\n{logs}")


def _pending() -> int:
    return Transaction.objects.filter(status__in=["pending", "parked"]).count()


def _items(count: int, members: int) -> list[dict]:
    people = [MemberFactory() for _ in range(members)]
    return [tx_item(people[i % members], amount=f"{20 + i % 7 * 20}.00") for i in range(count)]


def test_worker_credits_an_ingested_batch_end_to_end(celery_worker_process, staff_client):
    EarningRuleFactory(code="card")
    items = _items(500, 25)
    worker = celery_worker_process()
    response = staff_client("integration").post(
        "/api/v1/ingest/transactions/", {"transactions": items}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["accepted"] == 500
    _wait_for(lambda: _pending() == 0, workers=[worker])
    assert Entry.objects.filter(kind="earn").count() == 500
    expected = sum(int(item["amount"].split(".")[0]) // 20 for item in items)
    assert sum(Entry.objects.values_list("points", flat=True)) == expected
    assert points_reconcile()[1] == []


def test_worker_killed_mid_batch_and_restarted_credits_everything_once(celery_worker_process):
    EarningRuleFactory(code="card")
    items = _items(3000, 40)
    # Small batches: the worker commits often, so the kill lands between and inside batches.
    worker = celery_worker_process(POINTS_CONSUMER_BATCH_SIZE=20, POINTS_CONSUMER_MAX_BATCHES=50)
    valid, rejected = transaction_items_validate(items)
    assert not rejected
    transactions_store(transactions=[item for _, item in valid], via="task")

    _wait_for(
        lambda: Transaction.objects.filter(status="processed").count() >= 300, workers=[worker]
    )
    worker.kill()
    processed_at_kill = Transaction.objects.filter(status="processed").count()
    assert 0 < processed_at_kill < 3000
    assert _pending() > 0

    # The killed task's message is not acknowledged and the rows it held rolled back to pending.
    # A restarted worker plus the sweeper (as beat would run it) finish the job.
    restarted = celery_worker_process(POINTS_CONSUMER_BATCH_SIZE=200)
    transactions_sweep(older_than=dt.timedelta(0))
    _wait_for(lambda: _pending() == 0, workers=[worker, restarted])

    assert Transaction.objects.filter(status="processed").count() == 3000
    per_transaction = (
        Entry.objects.filter(kind="earn").values("transaction_id").annotate(n=Count("id"))
    )
    assert len(per_transaction) == 3000
    assert {row["n"] for row in per_transaction} == {1}
    expected = sum(int(item["amount"].split(".")[0]) // 20 for item in items)
    assert sum(Entry.objects.values_list("points", flat=True)) == expected
    assert points_reconcile()[1] == []
    call_command("reconcile_points")


def test_worker_killed_right_after_the_202_is_covered_within_one_sweep_interval(
    celery_worker_process, integration_api, settings
):
    """The wake-up's message is lost with the worker: beat's sweep, not Redis's visibility
    timeout, gets the rows credited, within the sweep age and interval (seconds)."""
    import redis

    from config.celery import app
    from points.tasks import transactions_sweep_task

    EarningRuleFactory(code="card")
    items = _items(1000, 40)
    worker = celery_worker_process()
    worker.kill()  # gone before it can take the wake-up the 202 sends
    answer = integration_api.post(
        "/api/v1/ingest/transactions/", {"transactions": items}, format="json"
    )
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 1000
    assert _pending() == 1000
    # The wake-up is lost with the worker (as a broker without persistence loses it on restart).
    broker = redis.Redis.from_url(app.conf.broker_url)
    assert broker.llen(celery_worker_process.queue) >= 1
    broker.delete(celery_worker_process.queue)
    restarted = celery_worker_process()
    settings.POINTS_SWEEP_AFTER_SECONDS = 2  # production default 30, beat every 30 s as well
    started = time.monotonic()
    # Beat, every second here: each sweep takes only rows pending longer than the age.
    while _pending() and time.monotonic() - started < 30:
        transactions_sweep_task.apply()
        time.sleep(1)
    waited = time.monotonic() - started
    assert _pending() == 0, restarted.log_tail(60)
    assert waited < 2 + 1 + 10  # the age, one beat interval, and the consumer's own time
    assert Entry.objects.filter(kind="earn").values("transaction_id").distinct().count() == 1000
    assert points_reconcile()[1] == []
