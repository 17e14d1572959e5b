"""Drills: a worker is killed (SIGKILL) in the middle of crediting a backlog, and while the
same batch is delivered thirty times from ten threads. The batch it held is rolled back by
PostgreSQL with its connection; the sweeper (run here as beat would) hands the rows still
pending to a new worker. Afterwards every transaction is stored and credited exactly once and
the ledger reconciles; the time from the kill to the last credit is printed.

Runs in the suite and alone with ``make drills``. It kills a worker it started itself, never a
shared server."""

import os
import signal
import threading
import time

import pytest
from django.db import connection

from points.models import Entry, Transaction
from points.services.ingest import transactions_store
from points.services.reconciliation import ledger_reconcile
from points.tasks import transactions_sweep_task
from points.validation import transaction_items_validate
from tests.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, tx_item

pytestmark = pytest.mark.django_db(transaction=True)

BACKLOG = 6000
URL = "/api/v1/ingest/transactions/"


def _wait(condition, *, timeout: float, worker) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, worker.log_tail(3000)
        time.sleep(0.05)


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(celery_worker_process):
    EarningRuleFactory(code="card")
    members = [MemberFactory() for _ in range(50)]
    items = [tx_item(members[index % len(members)]) for index in range(BACKLOG)]
    valid, rejected = transaction_items_validate(items)
    assert rejected == []
    # Small batches, so the kill lands inside one with others done before it.
    first = celery_worker_process(POINTS_CONSUMER_BATCH_SIZE=200)
    transactions_store(transactions=[item for _, item in valid], via=Transaction.Via.API)
    processed = Transaction.objects.filter(status=Transaction.Status.PROCESSED)
    _wait(lambda: processed.count() >= 400, timeout=60, worker=first)

    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    killed_at = time.monotonic()
    left = Transaction.objects.filter(status=Transaction.Status.PENDING).count()
    assert 0 < left < BACKLOG  # killed with work done and work left

    second = celery_worker_process(POINTS_CONSUMER_BATCH_SIZE=200)
    transactions_sweep_task.delay(older_than_seconds=0)  # what beat does every 30 seconds
    _wait(lambda: processed.count() == BACKLOG, timeout=120, worker=second)
    recovered = time.monotonic() - killed_at

    earned = Entry.objects.filter(kind=Entry.Kind.EARN)
    assert earned.count() == BACKLOG
    assert earned.values("transaction").distinct().count() == BACKLOG  # one each
    report = ledger_reconcile()
    assert report.consistent, report.lines()
    print(  # noqa: T201 - the drill reports its recovery time
        f"\ndrill worker_killed: {BACKLOG} transactions, killed with {left} pending; "
        f"0 lost, 0 doubled; recovered in {recovered:.1f} s after the kill"
    )


def test_the_same_batch_from_ten_threads_while_a_worker_dies_credits_once(
    celery_worker_process, integration_api
):
    EarningRuleFactory(code="card")
    members = [MemberFactory() for _ in range(20)]
    batch = [tx_item(members[index % len(members)]) for index in range(500)]
    first = celery_worker_process(POINTS_CONSUMER_BATCH_SIZE=50)
    start = threading.Barrier(10)
    statuses: list[int] = []

    def deliver() -> None:
        try:
            start.wait()
            for _ in range(3):  # each thread delivers the batch three times
                answer = integration_api.post(URL, {"transactions": batch}, format="json")
                statuses.append(answer.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    processed = Transaction.objects.filter(status=Transaction.Status.PROCESSED)
    _wait(lambda: processed.count() >= 50, timeout=60, worker=first)
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    killed_at = time.monotonic()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [202] * 30

    second = celery_worker_process(POINTS_CONSUMER_BATCH_SIZE=50)
    transactions_sweep_task.delay(older_than_seconds=0)
    _wait(lambda: processed.count() == len(batch), timeout=120, worker=second)
    recovered = time.monotonic() - killed_at

    assert Transaction.objects.count() == len(batch)  # 30 deliveries, stored once each
    earned = Entry.objects.filter(kind=Entry.Kind.EARN)
    assert earned.count() == len(batch)
    assert earned.values("transaction").distinct().count() == len(batch)
    report = ledger_reconcile()
    assert report.consistent, report.lines()
    print(  # noqa: T201 - the drill reports its recovery time
        f"\ndrill duplicate_delivery: one batch of {len(batch)} delivered 30 times from 10 "
        f"threads, a worker killed meanwhile; 0 lost, 0 doubled; recovered in "
        f"{recovered:.1f} s after the kill"
    )
