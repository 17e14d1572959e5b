"""Two evaluation requests at the same moment: one run, the other request is told so."""

import threading

import pytest
from django.db import connection

from config.celery import app as celery_app
from members.models import TierEvaluationRun
from members.services.evaluation import tier_evaluate
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
def test_workers_sharing_a_run_evaluate_each_member_once():
    """Two workers on the same run at once (real threads, own connections): every chunk is
    claimed by one of them, the result is the same as one worker's."""
    from members.models import MemberTier, Message, TierHistory
    from members.services.evaluation import tier_evaluation_start

    ladder()
    members = [MemberFactory() for _ in range(40)]
    for index, member in enumerate(members):
        snapshots(member, str(30000 * index))
    # Autocommit: the on-commit enqueue would run it eagerly; queue it through the broker.
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        run = tier_evaluation_start(as_of=AS_OF, chunk_size=3)
    finally:
        celery_app.conf.task_always_eager = eager
        celery_app.control.purge()
    barrier = threading.Barrier(2)
    errors = []

    def work():
        try:
            barrier.wait(timeout=10)
            tier_evaluate(run_id=run.run_id)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    run.refresh_from_db()
    assert run.status == TierEvaluationRun.Status.DONE
    assert run.processed == 40
    assert run.chunks.filter(done=True).count() == run.chunks.count() == 14
    moved = sum(1 for m in members if tier_of(m) != "STANDARD")
    assert run.upgraded == moved == TierHistory.objects.count() == Message.objects.count()
    assert MemberTier.objects.count() == moved
