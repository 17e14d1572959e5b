"""Two evaluation requests at the same moment: one run, the other request is told so."""

import threading
import uuid
from contextlib import contextmanager

import pytest
from django.db import connection

from config.celery import app as celery_app
from loyalty.models import AuditLog
from members.models import TierEvaluationRun, TierHistory
from members.services.evaluation import tier_evaluate
from tests.conftest import broker_keys_delete
from tests.factories import MemberFactory
from tests.members.tier_helpers import AS_OF, ladder, snapshots, tier_of


@contextmanager
def _own_broker_queue():
    """Tasks go to the real Redis broker, to a queue of this test's own that no worker consumes
    and that is deleted afterwards: never the shared default queue, which another test process
    (or its worker) may be using at the same moment."""
    saved = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    queue = f"test-{uuid.uuid4().hex[:10]}"
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved
        broker_keys_delete(queue)


@pytest.fixture
def broker_queue():
    """A run stays queued in Redis exactly as it would behind a busy worker (no worker consumes
    the test's queue); the queue is deleted afterwards."""
    with _own_broker_queue() as queue:
        yield queue


@pytest.mark.django_db(transaction=True)
def test_two_evaluation_requests_at_once_start_one_run(staff_client, broker_queue):
    ladder()
    member = MemberFactory()
    snapshots(member, "150000.00")
    clients = [staff_client("programme_admin") for _ in range(2)]
    barrier = threading.Barrier(2)
    responses = [None, None]

    def request(index):
        try:
            barrier.wait(timeout=10)
            responses[index] = clients[index].post(
                "/api/v1/tiers/evaluate/", {"as_of": AS_OF.isoformat()}, format="json"
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [202, 409], [r.content for r in responses]
    accepted = next(r for r in responses if r.status_code == 202).json()
    refused = next(r for r in responses if r.status_code == 409).json()
    assert refused["code"] == "evaluation_running"
    assert refused["run_id"] == accepted["run_id"]
    assert TierEvaluationRun.objects.count() == 1
    # Neither request evaluated anything: the accepted one queued its run, the refused one
    # nothing at all.
    assert TierEvaluationRun.objects.get().status == TierEvaluationRun.Status.QUEUED
    assert tier_of(member) == "STANDARD"
    assert not TierHistory.objects.exists()
    assert AuditLog.objects.filter(action="tier_evaluation.start").count() == 1

    # The worker picks the queued run up: it runs once and frees the slot.
    run = tier_evaluate(run_id=accepted["run_id"])
    assert run.status == TierEvaluationRun.Status.DONE
    assert tier_of(member) == "GOLD"
    again = clients[0].post("/api/v1/tiers/evaluate/", {"as_of": AS_OF.isoformat()}, format="json")
    assert again.status_code == 202


@pytest.mark.django_db(transaction=True)
def test_workers_sharing_a_run_evaluate_each_member_once():
    """Two workers on the same run at once (real threads, a connection each): both take
    chunks, every chunk is taken by one of them, the result is the same as one worker's."""
    from members.models import MemberTier, Message, TierEvaluationChunk
    from members.services.evaluation import tier_evaluation_start

    ladder()
    members = [MemberFactory() for _ in range(40)]
    for index, member in enumerate(members):
        snapshots(member, str(30000 * index))
    # Autocommit: the on-commit enqueue would run it eagerly; queue it through the broker.
    with _own_broker_queue():
        run = tier_evaluation_start(as_of=AS_OF, chunk_size=3)
    barrier = threading.Barrier(2)
    # Each worker, inside its first chunk's transaction (the chunk claimed and locked, not yet
    # evaluated), waits until the other holds a chunk too: two chunks locked at once, which only
    # SKIP LOCKED allows (a plain FOR UPDATE would leave the second worker waiting on the first
    # one's chunk, and this barrier would time out).
    both_hold_a_chunk = threading.Barrier(2)
    chunk_table = connection.ops.quote_name(TierEvaluationChunk._meta.db_table)
    took: dict[str, list[int]] = {}  # worker -> the chunks it marked done
    backends: dict[str, set[int]] = {}  # worker -> the backend pids its statements ran on
    errors = []

    def work(name):
        took[name], backends[name] = [], set()
        first_chunk = True

        def record(execute, sql, params, many, context):
            nonlocal first_chunk
            backends[name].add(context["connection"].connection.info.backend_pid)
            result = execute(sql, params, many, context)
            if first_chunk and "pg_advisory_xact_lock_shared" in sql:
                first_chunk = False
                both_hold_a_chunk.wait(timeout=10)
            if sql.startswith("UPDATE " + chunk_table) and '"done"' in sql:
                took[name].append(params[-1])  # marking a chunk done: ... WHERE id = %s
            return result

        try:
            barrier.wait(timeout=10)
            with connection.execute_wrapper(record):
                tier_evaluate(run_id=run.run_id)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (main_backend,) = cursor.fetchone()
    threads = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    run.refresh_from_db()
    assert run.status == TierEvaluationRun.Status.DONE
    assert run.processed == 40
    assert run.chunks.filter(done=True).count() == run.chunks.count() == 14
    # Both workers took chunks; between them every chunk, each once.
    assert {name: len(chunks) > 0 for name, chunks in took.items()} == {
        "worker-0": True,
        "worker-1": True,
    }, took
    assert sorted(took["worker-0"] + took["worker-1"]) == sorted(
        run.chunks.values_list("pk", flat=True)
    )
    # One connection per worker thread, neither the test's own nor the other worker's.
    assert [len(pids) for pids in backends.values()] == [1, 1], backends
    (first,), (second,) = backends.values()
    assert len({first, second, main_backend}) == 3
    moved = sum(1 for m in members if tier_of(m) != "STANDARD")
    assert run.upgraded == moved == TierHistory.objects.count() == Message.objects.count()
    assert MemberTier.objects.count() == moved
