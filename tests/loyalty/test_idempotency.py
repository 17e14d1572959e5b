"""Idempotency-Key: a retry returns the first response; another body with the key answers 409."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from loyalty import roles
from loyalty.models import IdempotencyRecord
from members.models import AssetSnapshot
from tests.factories import (
    MemberFactory,
    UserFactory,
    database_state,
    lock_queue,
    table_write_locked,
)

URL = "/api/v1/ingest/asset-snapshots/"


def _batch(deposits: str) -> dict:
    return {"snapshots": [{"customer_no": "IDEM1", "as_of": "2026-09-30", "deposits": deposits}]}


@pytest.mark.django_db
def test_replay_returns_the_first_response(integration_api):
    MemberFactory(customer_no="IDEM1")
    first = integration_api.post(URL, _batch("100.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 202
    assert first.json()["accepted"] == 1
    before = database_state()
    replay = integration_api.post(URL, _batch("100.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.status_code == 202
    assert replay.json() == first.json()  # not "duplicates: 1": the stored first answer
    assert replay["Idempotent-Replayed"] == "true"
    assert database_state() == before  # replayed, not run again
    assert AssetSnapshot.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_answers_409_and_changes_nothing(integration_api):
    MemberFactory(customer_no="IDEM1")
    integration_api.post(URL, _batch("100.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    before = database_state()
    response = integration_api.post(
        URL, _batch("999.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"
    assert database_state() == before  # no snapshot, no idempotency record changed
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
    assert str(AssetSnapshot.objects.get().deposits) == "2.00"  # the second one ran


@pytest.mark.django_db
def test_a_client_error_is_replayed_too(integration_api):
    bad = {"snapshots": [{"customer_no": "NOBODY", "as_of": "2026-09-30"}]}
    first = integration_api.post(URL, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    replay = integration_api.post(URL, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert replay.json()["rejected"][0]["errors"][0]["code"] == "unknown_customer"


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "bad\nkey"])
def test_malformed_keys_are_refused(integration_api, key):
    MemberFactory(customer_no="IDEM1")  # the body alone would be stored
    before = database_state()
    response = integration_api.post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert database_state() == before  # no snapshot, no idempotency record


@pytest.mark.django_db(transaction=True)
def test_parallel_requests_with_one_key_run_once():
    """Eight threads send the same keyed request at once, each on its own client (its own token
    of the one caller) and connection: one claims the key and runs, seven wait on its claim in
    PostgreSQL (the unique index) and then replay its answer.

    While the eight are in flight this test holds a lock on the snapshot table, so the one that
    claimed the key is stopped inside its transaction; it then observes that exactly one backend
    waits on that lock and the seven others wait behind it, before letting them go."""
    MemberFactory(customer_no="IDEM1")
    user = UserFactory(roles=[roles.INTEGRATION])
    barrier = threading.Barrier(8)
    results: list = []
    errors: list[BaseException] = []

    def send():
        try:
            client = APIClient()
            client.credentials(
                HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}"
            )
            barrier.wait(timeout=10)
            response = client.post(URL, _batch("5.00"), format="json", HTTP_IDEMPOTENCY_KEY="race")
            results.append(
                (response.status_code, response.json(), response.get("Idempotent-Replayed"))
            )
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    with table_write_locked(AssetSnapshot) as holder:
        for thread in threads:
            thread.start()
        claimed, replaying = lock_queue(holder=holder, waiters=8)
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert (len(claimed), len(replaying)) == (1, 7)  # the race was run, not eight in a row
    assert len(results) == 8
    assert {status for status, _, _ in results} == {202}
    assert sum(1 for *_, replayed in results if replayed is None) == 1
    assert all(body["accepted"] == 1 for _, body, _ in results)
    assert IdempotencyRecord.objects.count() == 1
    assert [str(row.deposits) for row in AssetSnapshot.objects.all()] == ["5.00"]
