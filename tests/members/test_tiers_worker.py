"""The whole path with a real Celery worker process on Redis: API -> broker -> worker -> done."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from members.models import TierEvaluationRun
from tests.factories import MemberFactory
from tests.members.tier_helpers import AS_OF, ladder, snapshots, tier_of

ROOT = Path(__file__).resolve().parents[2]


def _log(log) -> str:
    log.seek(0)
    return log.read()


def _routes_set(routes) -> None:
    """Route tasks anew: the producer's router keeps the routes it was built with."""
    celery_app.conf.task_routes = routes
    celery_app.amqp.flush_routes()
    celery_app.amqp.__dict__.pop("router", None)


@pytest.fixture
def tier_worker(transactional_db, tmp_path):
    """A Celery worker process on a queue of its own, against this test's database; tier
    evaluation tasks are routed to that queue (not run in-process) while the test runs."""
    queue = f"tiers-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.default",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    # Publish only once the worker answers: its queue exists then, so no message is dropped.
    deadline = time.monotonic() + 60
    while not celery_app.control.ping(timeout=0.5):
        assert worker.poll() is None, _log(log)
        assert time.monotonic() < deadline, _log(log)
    eager, routes = celery_app.conf.task_always_eager, celery_app.conf.task_routes
    celery_app.conf.task_always_eager = False
    _routes_set({"members.tier_evaluate": {"queue": queue}})
    try:
        yield worker
    finally:
        celery_app.conf.task_always_eager = eager
        _routes_set(routes)
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        with celery_app.connection_for_write() as broker:
            broker.default_channel.queue_purge(queue)  # the idle second worker's message
        log.close()
        connection.close()


@pytest.mark.worker
def test_an_evaluation_requested_over_the_api_is_run_by_a_worker(tier_worker, admin_api):
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
        assert tier_worker.poll() is None, "the worker stopped"
        time.sleep(0.2)
    assert status == "done"
    assert tier_of(member) == "PLATINUM"
    body = admin_api.get(f"/api/v1/tiers/runs/{run_id}/").json()
    assert (body["processed"], body["upgraded"]) == (1, 1)
