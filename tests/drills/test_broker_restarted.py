"""Drill: the broker (Redis) restarts while core banking is sending transactions, and every
message it held is lost (no persistence). Clients see only 202 (the rows are committed before
the broker is asked; a broker that cannot be reached is logged, not raised) or a 503 problem,
never a 500. Once it is back, the sweeper (run here as beat would) hands the rows still pending
to the worker: every transaction is credited exactly once and the ledger reconciles; the time
from the restart to the last credit is printed.

The drill starts its own Redis on a free port for the broker and kills that one, never the
shared server; the worker and this process both use it."""

import socket
import subprocess
import threading
import time

import pytest
from django.db import connection

from config.celery import app
from points.models import Entry, Transaction
from points.services.reconciliation import ledger_reconcile
from points.tasks import transactions_sweep_task
from tests.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, tx_item

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/ingest/transactions/"
REQUESTS, PER_REQUEST = 60, 50


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DrillRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "the drill's Redis did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


def _producers_on(url: str) -> None:
    """This process's Celery producers send to ``url`` from now on (kombu keeps a pool per
    broker, so switching back finds the first one as it was)."""
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url


@pytest.fixture
def drill_broker():
    redis = DrillRedis()
    redis.start()
    saved = app.conf.broker_url
    _producers_on(redis.url)
    yield redis
    _producers_on(saved)
    if redis.process and redis.process.poll() is None:
        redis.kill()


def test_a_broker_restart_mid_ingestion_loses_and_doubles_nothing(
    drill_broker, celery_worker_process, integration_api
):
    EarningRuleFactory(code="card")
    members = [MemberFactory() for _ in range(40)]
    worker = celery_worker_process(REDIS_URL=drill_broker.url)
    statuses: list[int] = []

    def send() -> None:
        try:
            for _ in range(REQUESTS):
                batch = [tx_item(members[index % len(members)]) for index in range(PER_REQUEST)]
                answer = integration_api.post(URL, {"transactions": batch}, format="json")
                statuses.append(answer.status_code)
        finally:
            connection.close()  # this thread's own connection

    sender = threading.Thread(target=send)
    sender.start()
    while len(statuses) < REQUESTS // 3:
        time.sleep(0.01)
    drill_broker.kill()  # every message it held is gone
    time.sleep(1)
    drill_broker.start()
    restarted_at = time.monotonic()
    sender.join(timeout=120)
    # A worker may exit on the lost connection instead of reconnecting (Celery's consumer
    # can end with "Unrecoverable error"); its supervisor starts it again, as here.
    restarts = 0
    if worker.process.poll() is not None:
        worker = celery_worker_process(REDIS_URL=drill_broker.url)
        restarts = 1
    assert set(statuses) <= {202, 503}, statuses
    accepted = statuses.count(202) * PER_REQUEST

    deadline = time.monotonic() + 120
    processed = Transaction.objects.filter(status=Transaction.Status.PROCESSED)
    while processed.count() < Transaction.objects.count():
        assert time.monotonic() < deadline, worker.log_tail(3000)
        transactions_sweep_task.delay(older_than_seconds=0)  # what beat does every 30 s
        time.sleep(1)
    recovered = time.monotonic() - restarted_at

    assert Transaction.objects.count() == accepted
    earned = Entry.objects.filter(kind=Entry.Kind.EARN)
    assert earned.count() == accepted
    assert earned.values("transaction").distinct().count() == accepted  # once each
    report = ledger_reconcile()
    assert report.consistent, report.lines()
    print(  # noqa: T201 - the drill reports its recovery time
        f"\ndrill broker_restarted: {len(statuses)} requests ({statuses.count(202)} x 202, "
        f"{statuses.count(503)} x 503), {accepted} transactions; 0 lost, 0 doubled; "
        f"worker restarted by its supervisor: {restarts}; "
        f"recovered in {recovered:.1f} s after the restart"
    )
