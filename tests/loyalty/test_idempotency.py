"""Idempotency-Key: a retry returns the first response; another body with the key answers 409."""

import threading

import pytest
from django.db import connection

from loyalty.models import IdempotencyRecord
from members.models import AssetSnapshot
from tests.factories import MemberFactory

URL = "/api/v1/ingest/asset-snapshots/"


def _batch(deposits: str) -> dict:
    return {"snapshots": [{"customer_no": "IDEM1", "as_of": "2026-09-30", "deposits": deposits}]}


@pytest.mark.django_db
def test_replay_returns_the_first_response(integration_api):
    MemberFactory(customer_no="IDEM1")
    first = integration_api.post(URL, _batch("100.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 202
    assert first.json()["accepted"] == 1
    replay = integration_api.post(URL, _batch("100.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.status_code == 202
    assert replay.json() == first.json()  # not "duplicates: 1": the stored first answer
    assert replay["Idempotent-Replayed"] == "true"
    assert AssetSnapshot.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_answers_409_and_changes_nothing(integration_api):
    MemberFactory(customer_no="IDEM1")
    integration_api.post(URL, _batch("100.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = integration_api.post(
        URL, _batch("999.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"
    assert str(AssetSnapshot.objects.get().deposits) == "100.00"


@pytest.mark.django_db
def test_keys_are_scoped_per_caller(staff_client):
    MemberFactory(customer_no="IDEM1")
    one, two = staff_client("integration"), staff_client("integration")
    assert (
        one.post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code
        == 202
    )
    second = two.post(URL, _batch("2.00"), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert second.status_code == 202
    assert "Idempotent-Replayed" not in second
    assert IdempotencyRecord.objects.count() == 2


@pytest.mark.django_db
def test_a_client_error_is_replayed_too(integration_api):
    bad = {"snapshots": [{"customer_no": "NOBODY", "as_of": "2026-09-30"}]}
    first = integration_api.post(URL, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    replay = integration_api.post(URL, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert replay.json() == first.json()
    assert replay.json()["rejected"][0]["errors"][0]["code"] == "unknown_customer"


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "bad\nkey"])
def test_malformed_keys_are_refused(integration_api, key):
    response = integration_api.post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"


@pytest.mark.django_db(transaction=True)
def test_parallel_requests_with_one_key_run_once(staff_client):
    """Eight threads send the same keyed request at once: one runs, seven replay its answer."""
    MemberFactory(customer_no="IDEM1")
    client = staff_client("integration")
    barrier = threading.Barrier(8)
    results: list = []

    def send():
        try:
            barrier.wait()
            response = client.post(URL, _batch("5.00"), format="json", HTTP_IDEMPOTENCY_KEY="race")
            results.append(
                (response.status_code, response.json(), response.get("Idempotent-Replayed"))
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8
    assert {status for status, _, _ in results} == {202}
    assert sum(1 for *_, replayed in results if replayed is None) == 1
    assert all(body["accepted"] == 1 for _, body, _ in results)
    assert IdempotencyRecord.objects.count() == 1
