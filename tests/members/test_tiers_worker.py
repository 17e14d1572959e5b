"""The whole path with a real Celery worker process on Redis: API -> broker -> worker -> done."""

import time

import pytest

from members.models import TierEvaluationRun
from tests.factories import MemberFactory
from tests.members.tier_helpers import AS_OF, ladder, snapshots, tier_of


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
