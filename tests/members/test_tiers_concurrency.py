"""Two evaluation requests at the same moment: one run, the other request is told so."""

import threading

import pytest
from django.db import connection

from config.celery import app as celery_app
from members.models import TierEvaluationRun
from members.services import tier_evaluate
from tests.factories import MemberFactory
from tests.members.tier_helpers import AS_OF, ladder, snapshots, tier_of


@pytest.fixture
def broker_queue():
    """Tasks go to the real Redis broker (no worker consumes them in this test), so a run
    stays queued exactly as it would behind a busy worker; the queue is emptied afterwards."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = eager
    celery_app.control.purge()


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

    # The worker picks the queued run up: it runs once and frees the slot.
    run = tier_evaluate(run_id=accepted["run_id"])
    assert run.status == TierEvaluationRun.Status.DONE
    assert tier_of(member) == "GOLD"
    again = clients[0].post("/api/v1/tiers/evaluate/", {"as_of": AS_OF.isoformat()}, format="json")
    assert again.status_code == 202


@pytest.mark.django_db(transaction=True)
def test_a_run_being_processed_is_not_processed_twice_at_once():
    """A re-delivered task finds the run's advisory lock held and leaves the run alone."""
    from members.services import tier_evaluation_start
    from members.tier_sql import TIER_RUN_LOCK

    ladder()
    member = MemberFactory()
    snapshots(member, "150000.00")
    run = tier_evaluation_start(as_of=AS_OF)  # eager: processed on commit (autocommit here)
    run.refresh_from_db()
    assert run.status == TierEvaluationRun.Status.DONE

    holder_ready, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [TIER_RUN_LOCK])
                holder_ready.set()
                release.wait(timeout=10)
                cursor.execute("SELECT pg_advisory_unlock(%s)", [TIER_RUN_LOCK])
        finally:
            connection.close()

    TierEvaluationRun.objects.filter(pk=run.pk).update(
        status=TierEvaluationRun.Status.RUNNING, processed=0
    )
    holder = threading.Thread(target=hold_lock)
    holder.start()
    holder_ready.wait(timeout=10)
    try:
        untouched = tier_evaluate(run_id=run.run_id)
        assert untouched.status == TierEvaluationRun.Status.RUNNING
        assert untouched.processed == 0
    finally:
        release.set()
        holder.join(timeout=10)
    assert tier_evaluate(run_id=run.run_id).status == TierEvaluationRun.Status.DONE
