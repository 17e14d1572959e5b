"""The whole path with a real Celery worker process on Redis: API -> broker -> worker -> done;
and a worker SIGKILLed in the middle of a run, whose run is resumed and ends as one run would."""

import dataclasses
import datetime as dt
import json
import time
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from loyalty.models import AuditLog
from members.models import (
    AssetSnapshot,
    Member,
    MemberTier,
    Message,
    TierEvaluationChunk,
    TierEvaluationRun,
    TierHistory,
)
from tests.factories import MemberFactory, UserFactory
from tests.members.tier_helpers import AS_OF, LADDER, WINDOW, ladder, snapshots, tier_of


@pytest.mark.worker
def test_an_evaluation_requested_over_the_api_is_run_by_a_worker(celery_worker_process, admin_api):
    worker = celery_worker_process()
    ladder()
    member = MemberFactory()
    snapshots(member, "600000.00")
    response = admin_api.post(
        "/api/v1/tiers/evaluate/", {"as_of": AS_OF.isoformat()}, format="json"
    )
    assert response.status_code == 202, response.content
    run_id = response.json()["run_id"]
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        status = TierEvaluationRun.objects.get(run_id=run_id).status
        if status in ("done", "failed"):
            break
        assert worker.process.poll() is None, worker.log_tail()
        time.sleep(0.2)
    assert status == "done"
    assert tier_of(member) == "PLATINUM"
    body = admin_api.get(f"/api/v1/tiers/runs/{run_id}/").json()
    assert (body["processed"], body["upgraded"]) == (1, 1)


# --- A worker SIGKILLed in the middle of a run ------------------------------------------------

KILL_MEMBERS = 3000
KILL_CHUNK_SIZE = 15  # 200 chunks of a few milliseconds each: the run lasts long enough to kill
# Deposits on each month-end of the window (= the average AUM) and contribution per month
# (x3 over the window): a cent either side of thresholds, and well inside tiers.
KILL_AUMS = [
    "0.00",
    "1000.00",
    "99999.99",
    "100000.00",
    "250000.00",
    "499999.99",
    "500000.00",
    "5000000.00",
    "7000000.00",
    "9999999.99",
    "10000000.00",
]
KILL_CONTRIBUTIONS = ["0.00", "666.66", "666.67", "3333.33", "3333.34", "16666.67", "40000.00"]
# Where members stand before the run; None: no tier row yet (the lowest tier).
KILL_STARTS = [None, "STANDARD", "GOLD", "PLATINUM", "DIAMOND", "PRIVATE"]
KILL_CLOSED_EVERY = 97  # closed members: not evaluated, not counted


def _qualified(avg_aum: Decimal, contribution: Decimal) -> str:
    """The highest tier of LADDER whose thresholds either the average AUM or the window's
    contribution meets (the ladder's rule 'any'; a tier without thresholds takes everyone)."""
    best = LADDER[0][0]
    for code, _rank, min_aum, min_contribution, _multiplier in LADDER:
        met = [
            value >= Decimal(minimum)
            for value, minimum in ((avg_aum, min_aum), (contribution, min_contribution))
            if minimum is not None
        ]
        if not met or any(met):
            best = code
    return best


def _wait_for(condition, *, timeout: float, workers, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    logs = "\n".join(worker.log_tail(80) for worker in workers)
    pytest.fail(f"timed out after {timeout}s; worker logs:\n{logs}")


def _unacked(broker, queue: str) -> list[tuple[str, str]]:
    """``(task name, task id)`` of what a worker on ``queue`` received and never acknowledged:
    kombu's Redis transport keeps these under keys of the test's queue
    (``config/settings/test.py``) until the visibility timeout puts them back in the queue."""
    headers = [json.loads(raw)[0]["headers"] for raw in broker.hgetall(f"unacked:{queue}").values()]
    return [(header["task"], header["id"]) for header in headers]


@dataclasses.dataclass
class KilledRun:
    """A run whose worker was SIGKILLed in its middle, and what an uninterrupted run over the
    same data must end with."""

    run: TierEvaluationRun
    worker: Any  # the killed CeleryWorkerProcess
    broker: Any  # a Redis client on the broker's database
    queue: str
    killed_task_id: str
    members: list[Member]
    start: dict[int, str | None]  # member id -> tier code before the run (None: no tier row)
    expected: dict[int, str]  # evaluated member id -> the tier the ladder decides
    moves: dict[int, str]  # member id -> "upgrade" or "downgrade", for those who move


def _population(tiers) -> tuple[list[Member], dict, dict, dict]:
    """KILL_MEMBERS members with three month-ends of snapshots and a tier to start from; the
    tiers and moves the ladder's thresholds decide for them, computed here in Python."""
    members = Member.objects.bulk_create(
        Member(
            customer_no=f"K{index:08d}",
            name=f"Member {index}",
            preferred_language="en" if index % 2 else "zh-hans",
            joined_at=dt.date(2024, 1, 15),
            status="closed" if index % KILL_CLOSED_EVERY == 0 else "active",
        )
        for index in range(KILL_MEMBERS)
    )
    start, expected = {}, {}
    for index, member in enumerate(members):
        aum = Decimal(KILL_AUMS[index % len(KILL_AUMS)])
        contribution = Decimal(KILL_CONTRIBUTIONS[index % len(KILL_CONTRIBUTIONS)])
        start[member.pk] = KILL_STARTS[index % len(KILL_STARTS)]
        if member.status == "active":
            expected[member.pk] = _qualified(aum, 3 * contribution)
    AssetSnapshot.objects.bulk_create(
        AssetSnapshot(
            member=member,
            as_of=as_of,
            deposits=Decimal(KILL_AUMS[index % len(KILL_AUMS)]),
            contribution=Decimal(KILL_CONTRIBUTIONS[index % len(KILL_CONTRIBUTIONS)]),
        )
        for index, member in enumerate(members)
        for as_of in WINDOW
    )
    MemberTier.objects.bulk_create(
        MemberTier(
            member=member,
            tier=tiers[start[member.pk]],
            qualified_tier=tiers[start[member.pk]],
            last_as_of=dt.date(2026, 9, 30),
        )
        for member in members
        if start[member.pk] is not None
    )
    rank = {code: tier.rank for code, tier in tiers.items()}
    moves = {}
    for pk, code in expected.items():
        before = start[pk] or "STANDARD"
        if code != before:
            moves[pk] = "upgrade" if rank[code] > rank[before] else "downgrade"
    return members, start, expected, moves


def _kill_mid_run(celery_worker_process, admin_api, settings) -> KilledRun:
    """A run started over the API, its worker SIGKILLed with about a quarter of its chunks
    committed; what it left is checked here."""
    import redis

    from config.celery import app

    tiers = ladder(grace_periods=1, downgrade_mode="to_qualified")  # decided in one evaluation
    members, start, expected, moves = _population(tiers)
    evaluated = len(expected)
    upgraded = sum(1 for reason in moves.values() if reason == "upgrade")
    # The data reaches every case: moves both ways and members who stay.
    assert min(upgraded, len(moves) - upgraded, evaluated - len(moves)) > 300

    # One task for the run (the default is two, and the second would still be queued when the
    # first worker dies), so only the recovery under test can carry the run on.
    settings.TIER_EVALUATION_WORKERS = 1
    settings.TIER_EVALUATION_CHUNK_SIZE = KILL_CHUNK_SIZE
    worker = celery_worker_process()
    response = admin_api.post(
        "/api/v1/tiers/evaluate/", {"as_of": AS_OF.isoformat()}, format="json"
    )
    assert response.status_code == 202, response.content
    run = TierEvaluationRun.objects.get(run_id=response.json()["run_id"])
    assert (run.total, run.chunk_size) == (evaluated, KILL_CHUNK_SIZE)

    def processed() -> int:
        return TierEvaluationRun.objects.values_list("processed", flat=True).get(pk=run.pk)

    _wait_for(lambda: processed() >= evaluated // 4, timeout=30, workers=[worker], interval=0.01)
    worker.kill()

    run.refresh_from_db()
    chunks = TierEvaluationChunk.objects.filter(run=run)
    assert run.status == TierEvaluationRun.Status.RUNNING, worker.log_tail()
    assert 0 < run.processed < evaluated
    span = members[-1].pk - members[0].pk + 1
    assert 0 < chunks.filter(done=True).count() < chunks.count() == -(-span // KILL_CHUNK_SIZE)
    # What has committed is whole chunks: the run's progress is the sum of its done chunks',
    # and a history row stands for each change counted so far, no more.
    assert run.processed == sum(chunks.filter(done=True).values_list("processed", flat=True))
    changed = run.upgraded + run.downgraded
    assert TierHistory.objects.filter(run=run).count() == changed < len(moves)

    # The killed task was never acknowledged (acks_late): the broker holds it as delivered, and
    # nothing else is queued for the run.
    broker = redis.Redis.from_url(app.conf.broker_url)
    queue = celery_worker_process.queue
    [(task, killed_task_id)] = _unacked(broker, queue)
    assert task == "members.tier_evaluate"
    assert broker.llen(queue) == 0
    return KilledRun(
        run=run,
        worker=worker,
        broker=broker,
        queue=queue,
        killed_task_id=killed_task_id,
        members=members,
        start=start,
        expected=expected,
        moves=moves,
    )


def _wait_until_finished(killed: KilledRun, restarted) -> TierEvaluationRun:
    _wait_for(
        lambda: TierEvaluationRun.objects.get(pk=killed.run.pk).status != "running",
        timeout=30,
        workers=[killed.worker, restarted],
    )
    killed.run.refresh_from_db()
    return killed.run


def _assert_ends_as_one_run_would(killed: KilledRun, run: TierEvaluationRun) -> None:
    """Done, with the counts, tiers, history rows and messages an uninterrupted run over the
    same data ends with (as the ladder decides, computed in the test), each exactly once."""
    expected, moves, start = killed.expected, killed.moves, killed.start
    evaluated, upgraded = len(expected), sum(1 for r in moves.values() if r == "upgrade")
    assert run.status == TierEvaluationRun.Status.DONE, run.error
    assert (run.processed, run.total) == (evaluated, evaluated)
    assert (run.upgraded, run.downgraded, run.unchanged) == (
        upgraded,
        len(moves) - upgraded,
        evaluated - len(moves),
    )
    assert run.upgraded + run.downgraded + run.unchanged == evaluated
    chunks = TierEvaluationChunk.objects.filter(run=run)
    assert not chunks.filter(done=False).exists()
    assert sum(chunks.values_list("processed", flat=True)) == evaluated
    # Every member's tier: as the thresholds decide for the evaluated, untouched for the closed.
    tier_now = dict(MemberTier.objects.values_list("member_id", "tier__code"))
    assert {pk: tier_now.get(pk, "STANDARD") for pk in expected} == expected
    closed = [member.pk for member in killed.members if member.pk not in expected]
    assert {pk: tier_now.get(pk) for pk in closed} == {pk: start[pk] for pk in closed}
    # One history row and one message per member who moved, none for anyone else: nothing the
    # killed worker had done was done again, nothing it had not done was left out.
    history = list(
        TierHistory.objects.values_list("member_id", "from_tier__code", "to_tier__code", "reason")
    )
    assert sorted(history) == sorted(
        (pk, start[pk] or "STANDARD", expected[pk], reason) for pk, reason in moves.items()
    )
    assert TierHistory.objects.filter(run=run).count() == len(history) == len(moves)
    messages = Message.objects.filter(kind="tier_change").values_list("member_id", flat=True)
    assert sorted(messages) == sorted(moves)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_task_is_redelivered_to_a_restarted_worker_which_finishes_the_run(
    celery_worker_process, admin_api, settings
):
    """The broker gives the unacknowledged task to a restarted worker once its visibility
    timeout is over (one second for this worker instead of two hours); the task goes on with
    the chunks that had not committed."""
    killed = _kill_mid_run(celery_worker_process, admin_api, settings)
    restarted = celery_worker_process(CELERY_BROKER_VISIBILITY_TIMEOUT=1)
    run = _wait_until_finished(killed, restarted)
    # The restarted worker ran the very task the killed one had taken, and acknowledged it.
    assert f"members.tier_evaluate[{killed.killed_task_id}] received" in restarted.log_tail(400)
    _wait_for(lambda: _unacked(killed.broker, killed.queue) == [], timeout=10, workers=[restarted])
    _assert_ends_as_one_run_would(killed, run)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_was_killed_resumes_from_the_admin_and_ends_as_one_run_would(
    celery_worker_process, admin_api, settings
):
    """Before the visibility timeout (two hours) a restarted worker alone finds nothing to do;
    the admin's resume action gives the run a task of its own, which finishes it."""
    killed = _kill_mid_run(celery_worker_process, admin_api, settings)
    restarted = celery_worker_process()
    admin = Client()
    admin.force_login(UserFactory(is_superuser=True))
    answer = admin.post(
        "/admin/members/tierevaluationrun/",
        {"action": "resume", "_selected_action": [str(killed.run.pk)]},
    )
    assert answer.status_code == 302, answer.content
    run = _wait_until_finished(killed, restarted)
    assert f"members.tier_evaluate[{killed.killed_task_id}]" not in restarted.log_tail(400)
    # The resumed task is acknowledged once it returns, a moment after the run is marked done;
    # the killed worker's task stays unacknowledged (until the visibility timeout).
    left = [("members.tier_evaluate", killed.killed_task_id)]
    _wait_for(
        lambda: _unacked(killed.broker, killed.queue) == left, timeout=10, workers=[restarted]
    )
    assert AuditLog.objects.filter(action="tier_evaluation.resume").count() == 1
    _assert_ends_as_one_run_would(killed, run)
