"""The consumer tells the database's failures from a row's own: a lost connection, a lock
timeout or a terminated backend retries the batch whole and never marks a row failed; a row
that fails alone is failed with its reason; the sweeper wakes the consumer for rows pending
longer than ``POINTS_SWEEP_AFTER_SECONDS``. All on real PostgreSQL: connections are terminated
with ``pg_terminate_backend`` from a second connection, by ``application_name``."""

import datetime as dt
import threading
import time
import uuid

import psycopg
import pytest
from django.db import DataError, OperationalError, connection
from django.db.models import Count
from django.utils import timezone

from loyalty.models import AuditLog
from points.models import Entry, Transaction
from points.services import ingest
from points.services.consumer import transactions_process_all, transient_error
from points.services.ingest import transactions_store
from points.services.reconciliation import points_reconcile
from points.tasks import transactions_process_task, transactions_sweep_task
from points.validation import transaction_items_validate
from tests.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, tx_item

TIMEOUT = 120


def _conninfo(**extra) -> str:
    db = connection.settings_dict
    info = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "dbname": db["NAME"],
        **extra,
    }
    if db.get("PASSWORD"):
        info["password"] = db["PASSWORD"]
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})


class Terminator:
    """A second connection terminating, every ``interval`` seconds, every backend of this
    database whose ``application_name`` is ``name`` (the consumer's, nobody else's)."""

    def __init__(self, name: str, *, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.killed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(_conninfo(), autocommit=True) as killer:
            while not self._stop.wait(self.interval):
                rows = killer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = %s",
                    [self.name],
                ).fetchall()
                self.killed += sum(1 for (done,) in rows if done)

    def __enter__(self) -> "Terminator":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def named_connection():
    """Django's connection in this process, reconnected as ``application_name`` = the name
    returned; put back (and reconnected) afterwards."""
    name = f"points-consumer-{uuid.uuid4().hex[:8]}"
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = dict(options)
    connection.close()
    options["application_name"] = name
    yield name
    options.clear()
    options.update(saved)
    connection.close()


def _store(items: list[dict]) -> None:
    valid, rejected = transaction_items_validate(items)
    assert not rejected, rejected
    transactions_store(transactions=[item for _, item in valid], via="task")


@pytest.fixture
def no_wakeup(monkeypatch):
    """Store without waking the consumer (tasks run eagerly in these tests): the test runs it."""
    monkeypatch.setattr(ingest, "consumer_enqueue", lambda **kwargs: None)


def _items(count: int, members: int) -> list[dict]:
    people = [MemberFactory() for _ in range(members)]
    return [tx_item(people[i % members], amount=f"{20 + i % 7 * 20}.00") for i in range(count)]


def _assert_each_credited_once(items: list[dict]) -> None:
    assert Transaction.objects.exclude(status="processed").count() == 0
    per_transaction = (
        Entry.objects.filter(kind="earn").values("transaction_id").annotate(n=Count("id"))
    )
    assert len(per_transaction) == len(items)
    assert {row["n"] for row in per_transaction} == {1}
    expected = sum(int(item["amount"].split(".")[0]) // 20 for item in items)
    assert sum(Entry.objects.values_list("points", flat=True)) == expected
    assert points_reconcile()[1] == []


# -- what is transient -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_terminated_connection_is_transient_and_a_numeric_overflow_is_not(named_connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    with psycopg.connect(_conninfo(), autocommit=True) as killer:
        killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [named_connection],
        )
    with pytest.raises(OperationalError) as terminated, connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert transient_error(terminated.value)
    connection.close()
    with pytest.raises(DataError) as overflow, connection.cursor() as cursor:
        cursor.execute("SELECT 9223372036854775807::bigint + 1")
    assert not transient_error(overflow.value)


# -- connections terminated during consumption ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_consumer_whose_connection_is_terminated_repeatedly_credits_everything_once(
    named_connection, settings, no_wakeup
):
    EarningRuleFactory(code="card")
    items = _items(2000, 40)
    _store(items)
    settings.POINTS_CONSUMER_BATCH_SIZE = 50
    settings.POINTS_CONSUMER_TRANSIENT_ATTEMPTS = 50
    settings.POINTS_CONSUMER_TRANSIENT_BACKOFF = 0.01
    with Terminator(named_connection, interval=0.15) as terminator:
        transactions_process_all()
    connection.close()
    assert terminator.killed >= 3, terminator.killed
    assert not Transaction.objects.filter(status="failed").exists()
    _assert_each_credited_once(items)


@pytest.mark.django_db(transaction=True)
def test_a_lock_timeout_that_persists_leaves_rows_pending_not_failed(
    named_connection, settings, no_wakeup
):
    """A failure that keeps coming back (here the entry table locked by another session, with
    a lock_timeout) raises after the configured attempts; every row stays pending, and is
    credited by the next run once the cause is gone."""
    EarningRuleFactory(code="card")
    items = _items(30, 5)
    _store(items)
    settings.POINTS_CONSUMER_TRANSIENT_ATTEMPTS = 3
    settings.POINTS_CONSUMER_TRANSIENT_BACKOFF = 0.01
    connection.settings_dict["OPTIONS"]["options"] = "-c lock_timeout=100"
    connection.close()
    with psycopg.connect(_conninfo()) as holder:
        holder.execute(f"LOCK TABLE {Entry._meta.db_table} IN EXCLUSIVE MODE")
        with pytest.raises(OperationalError) as raised:
            transactions_process_all()
        assert transient_error(raised.value)
        assert raised.value.__cause__.sqlstate == "55P03"
        assert Transaction.objects.filter(status="pending").count() == 30
        assert not Entry.objects.exists()
        holder.rollback()
    assert transactions_process_task.apply(throw=True).get() == 30
    _assert_each_credited_once(items)


def test_consumer_tasks_are_retried_on_transient_database_errors():
    from points.tasks import transactions_ingest_task

    for task in (transactions_process_task, transactions_sweep_task, transactions_ingest_task):
        assert OperationalError in task.autoretry_for
        assert task.retry_backoff
        assert task.max_retries


# -- a row's own fault ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_row_that_fails_alone_is_failed_with_its_reason_and_the_rest_are_credited(no_wakeup):
    from decimal import Decimal

    # A misconfigured rule (a billion points per cent): a large amount earns more points than
    # a bigint holds, so PostgreSQL refuses that row's entry; small ones are credited.
    EarningRuleFactory(code="wild", amount_unit=Decimal("0.01"), points_per_unit=1_000_000_000)
    rich, normal = MemberFactory(), MemberFactory()
    items = [tx_item(normal, amount=f"0.0{i % 9 + 1}") for i in range(40)]
    items.insert(17, tx_item(rich, amount="99999999.99"))
    _store(items)
    transactions_process_all()
    failed = Transaction.objects.get(status="failed")
    assert failed.external_id == items[17]["external_id"]
    assert "out of range" in failed.status_reason
    assert Transaction.objects.filter(status="processed").count() == 40
    assert Entry.objects.filter(member=normal).count() == 40
    assert not Entry.objects.filter(member=rich).exists()
    assert points_reconcile()[1] == []


# -- the sweeper ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_sweeper_takes_a_pending_row_older_than_the_configured_age_and_not_a_younger_one(
    settings, no_wakeup
):
    settings.POINTS_SWEEP_AFTER_SECONDS = 30
    member = MemberFactory()
    old, young = tx_item(member), tx_item(member)
    _store([old, young])  # not consumed: on_commit never runs in this test's transaction
    Transaction.objects.filter(external_id=old["external_id"]).update(
        received_at=timezone.now() - dt.timedelta(seconds=31)
    )
    Transaction.objects.filter(external_id=young["external_id"]).update(
        received_at=timezone.now() - dt.timedelta(seconds=25)
    )
    assert transactions_sweep_task()["stale"] == 1
    settings.POINTS_SWEEP_AFTER_SECONDS = 20
    assert transactions_sweep_task()["stale"] == 2
    settings.POINTS_SWEEP_AFTER_SECONDS = 30
    assert transactions_sweep_task(older_than_seconds=0)["stale"] == 2  # asked explicitly


@pytest.mark.django_db
def test_beat_runs_the_sweeper_every_30_seconds():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="points.transactions_sweep")
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (30, "seconds")


# -- the admin -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_retries_thousands_of_failed_rows_and_lists_their_reason(
    admin_client, django_capture_on_commit_callbacks
):
    member = MemberFactory()
    _store([tx_item(member) for _ in range(2500)])
    young = tx_item(member)
    _store([young])
    Transaction.objects.exclude(external_id=young["external_id"]).update(
        status="failed", status_reason="DataError: integer out of range"
    )
    page = admin_client.get("/admin/points/transaction/?status__exact=failed")
    assert "DataError: integer out of range" in page.content.decode()

    one = Transaction.objects.first()
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            "/admin/points/transaction/",
            {
                "action": "retry",
                "select_across": "1",
                "_selected_action": [one.pk],
                "index": 0,
                "confirm": "yes",
            },
        )
    assert response.status_code == 302
    assert Transaction.objects.filter(status="pending").count() == 2501
    assert AuditLog.objects.count() >= 2500
    assert callbacks  # the consumer is enqueued

    # Only the young pending row selected: nothing to put back, the consumer is woken anyway.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        pk = Transaction.objects.get(external_id=young["external_id"]).pk
        admin_client.post(
            "/admin/points/transaction/",
            {"action": "retry", "_selected_action": [pk], "index": 0, "confirm": "yes"},
        )
    assert callbacks


# -- a real worker -------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_whose_connections_are_terminated_repeatedly_credits_everything_once(
    celery_worker_process,
):
    EarningRuleFactory(code="card")
    items = _items(3000, 40)
    name = f"points-worker-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{db['NAME']}?application_name={name}"
    )
    worker = celery_worker_process(
        DATABASE_URL=url, POINTS_CONSUMER_BATCH_SIZE=25, POINTS_CONSUMER_MAX_BATCHES=10
    )
    # Small batches and frequent kills: the work outlasts ten kills however fast the machine.
    with Terminator(name, interval=0.1) as terminator:
        _store(items)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and terminator.killed < 10:
            time.sleep(0.05)
    assert terminator.killed >= 10, worker.log_tail(60)
    # Beat's sweep, as it runs every 30 s; nobody retries anything by hand.
    deadline = time.monotonic() + TIMEOUT
    while Transaction.objects.filter(status="pending").exists():
        if time.monotonic() > deadline:
            pytest.fail(f"rows left pending; worker log:\n{worker.log_tail(80)}")
        transactions_sweep_task(older_than_seconds=5)
        time.sleep(1)
    assert not Transaction.objects.filter(status="failed").exists(), worker.log_tail(80)
    _assert_each_credited_once(items)
    assert "transient database failure" in worker.log_path.read_text()
