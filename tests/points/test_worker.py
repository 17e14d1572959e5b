"""A real Celery worker on Redis consumes the inbox, takes transactions sent as Celery messages,
survives being killed mid-batch (Redis redelivers its unacknowledged message), and runs beat's
sweep from the schedule the migrations store."""

import datetime as dt
import json
import re
import time

import pytest
import redis
from django.core.management import call_command
from django.db.models import Count, F
from django.utils import timezone

from config.celery import app
from points.models import Entry, Transaction
from points.services.ingest import transactions_store
from points.services.reconciliation import points_reconcile
from points.validation import transaction_items_validate
from tests.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, tx_item

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 90
# Seconds before Redis hands an unacknowledged message to another consumer (2 h in production).
VISIBILITY_TIMEOUT = 3
# The pool production runs. (With the solo pool even an early acknowledgement is only sent once
# the task returns, so late acknowledgement would make no difference to a worker killed mid-task.)
PREFORK = ("--pool=prefork", "--concurrency=1")


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


def _broker() -> redis.Redis:
    return redis.Redis.from_url(app.conf.broker_url)


def _assert_each_credited_once(items: list[dict]) -> None:
    assert Transaction.objects.filter(status="processed").count() == len(items)
    per_transaction = (
        Entry.objects.filter(kind="earn").values("transaction_id").annotate(n=Count("id"))
    )
    assert len(per_transaction) == len(items)
    assert {row["n"] for row in per_transaction} == {1}
    expected = sum(int(item["amount"].split(".")[0]) // 20 for item in items)
    assert sum(Entry.objects.values_list("points", flat=True)) == expected
    assert points_reconcile()[1] == []


def _log_count(worker, pattern: str) -> int:
    return len(re.findall(pattern, worker.log_path.read_text(errors="replace")))


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


def test_worker_killed_mid_batch_its_message_is_redelivered_by_redis_to_a_restarted_worker(
    celery_worker_process,
):
    """Late acknowledgement: the killed worker's consumer message stays unacknowledged in Redis,
    which hands it to the restarted worker once the visibility timeout has passed. Nobody
    sweeps and nothing is sent again; with ``CELERY_TASK_ACKS_LATE=0`` in the environment (the
    workers acknowledge on receipt) this test fails."""
    EarningRuleFactory(code="card")
    items = _items(3000, 40)
    queue = celery_worker_process.queue
    broker = _broker()
    # Small batches: the worker commits often, so the kill lands between and inside batches.
    worker = celery_worker_process(
        *PREFORK, POINTS_CONSUMER_BATCH_SIZE=20, POINTS_CONSUMER_MAX_BATCHES=50
    )
    valid, rejected = transaction_items_validate(items)
    assert not rejected
    # 3,000 rows, more than a batch: one consumer message, sent at once (not coalesced).
    transactions_store(transactions=[item for _, item in valid], via="task")

    _wait_for(
        lambda: Transaction.objects.filter(status="processed").count() >= 300, workers=[worker]
    )
    worker.kill()
    processed_at_kill = Transaction.objects.filter(status="processed").count()
    assert 0 < processed_at_kill < 3000
    assert _pending() > 0

    # The killed task's message was delivered, not acknowledged: Redis still holds it.
    assert broker.llen(queue) == 0
    unacked = broker.hvals(f"unacked:{queue}")
    assert len(unacked) == 1, "the killed worker had acknowledged its message (acks_late off?)"
    message, _exchange, routing_key = json.loads(unacked[0])
    assert (message["headers"]["task"], routing_key) == ("points.transactions_process", queue)
    task_id = message["headers"]["id"]

    # A restarted worker gets that same message back from Redis and finishes the job. The
    # visibility timeout that counts is the restoring consumer's: short for it only, so the
    # killed worker never restored its own message while working on it, however slow.
    restarted = celery_worker_process(
        *PREFORK,
        POINTS_CONSUMER_BATCH_SIZE=200,
        CELERY_BROKER_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT,
    )
    _wait_for(lambda: _pending() == 0, timeout=30, workers=[worker, restarted])
    assert f"points.transactions_process[{task_id}] received" in restarted.log_tail(400)
    _wait_for(lambda: broker.hlen(f"unacked:{queue}") == 0, timeout=10, workers=[restarted])

    _assert_each_credited_once(items)
    call_command("reconcile_points")


def test_a_celery_ingest_message_crosses_redis_to_a_worker_and_is_credited_once_sent_twice(
    celery_worker_process,
):
    """``points.ingest_transactions``, sent by name as an upstream system does, twice: the worker
    stores the rows once, wakes the consumer, and every transaction is credited once."""
    EarningRuleFactory(code="card")
    items = _items(60, 6)
    worker = celery_worker_process()
    for _ in range(2):
        app.send_task("points.ingest_transactions", args=[items])
    succeeded = r"points\.ingest_transactions\[[0-9a-f-]+\] succeeded"
    _wait_for(lambda: _log_count(worker, succeeded) == 2, timeout=30, workers=[worker])
    _wait_for(lambda: _pending() == 0, timeout=30, workers=[worker])
    assert "'accepted': 60, 'duplicates': 0" in worker.log_tail(400)
    assert "'accepted': 0, 'duplicates': 60" in worker.log_tail(400)
    assert Transaction.objects.count() == 60
    assert set(Transaction.objects.values_list("via", flat=True)) == {"task"}
    _assert_each_credited_once(items)


def _schedule_as_migrated() -> None:
    """The beat schedule as the points migrations store it (0003 registers the jobs, 0006 moves
    the sweep to every 30 s), run again here: an earlier ``transaction=True`` test's flush
    emptied the tables the migrations filled. Both leave existing rows alone."""
    from importlib import import_module

    from django.apps import apps

    import_module("points.migrations.0003_periodic_tasks").register(apps, None)
    import_module("points.migrations.0006_sweep_every_30_seconds").every_30_seconds(apps, None)


def test_beat_on_a_worker_sweeps_rows_whose_wake_up_was_lost(celery_worker_process):
    """Beat (``--beat`` on the worker) runs the sweep from the schedule the migrations store
    (every 30 s, migration 0006) with the configured age (30 s): rows pending for a minute
    whose wake-up was lost get credited, with no sweep called by the test."""
    from django_celery_beat.models import PeriodicTask

    _schedule_as_migrated()
    sweep = PeriodicTask.objects.get(name="points: sweep the transaction inbox")
    assert (sweep.task, sweep.enabled, sweep.crontab) == ("points.transactions_sweep", True, None)
    assert (sweep.interval.every, sweep.interval.period) == (30, "seconds")
    EarningRuleFactory(code="card")
    items = _items(200, 10)
    valid, _ = transaction_items_validate(items)
    transactions_store(transactions=[item for _, item in valid], via="task")
    # The wake-up is lost (no worker took it before the broker lost it) a minute ago.
    broker = _broker()
    broker.delete(celery_worker_process.queue)
    Transaction.objects.update(received_at=F("received_at") - dt.timedelta(minutes=1))
    # Beat has been running: the last sweep was an interval ago, so the next one is due now.
    sweep.last_run_at = timezone.now() - dt.timedelta(seconds=30)
    sweep.save(update_fields=["last_run_at"])

    worker = celery_worker_process("--beat")
    _wait_for(lambda: _pending() == 0, timeout=30, workers=[worker])
    log = worker.log_path.read_text(errors="replace")
    assert "Sending due task points: sweep the transaction inbox (points.transactions_sweep)" in log
    assert re.search(r"points\.transactions_sweep\[[0-9a-f-]+\] succeeded", log), log[-3000:]
    _assert_each_credited_once(items)


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
