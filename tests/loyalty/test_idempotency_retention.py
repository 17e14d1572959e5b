"""Idempotency-Key records expire after IDEMPOTENCY_RETENTION_DAYS: purged daily in chunks, and
a key reused after expiry is a new request."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from loyalty import roles
from loyalty.api.idempotency import idempotency_expired_before, idempotency_records_purge
from loyalty.models import IdempotencyRecord
from loyalty.tasks import IDEMPOTENCY_PURGE_TASK, idempotency_records_purge_task
from members.models import AssetSnapshot
from tests.factories import MemberFactory, UserFactory, lock_queue, table_write_locked

URL = "/api/v1/ingest/asset-snapshots/"


def _batch(deposits: str) -> dict:
    return {"snapshots": [{"customer_no": "RET1", "as_of": "2026-09-30", "deposits": deposits}]}


def _record(key: str, *, age: timedelta, caller: str = "user:1") -> IdempotencyRecord:
    return IdempotencyRecord.objects.create(
        caller=caller,
        key=key,
        method="POST",
        path=URL,
        fingerprint="f" * 64,
        response_status=202,
        response_body={"accepted": 1},
        created_at=timezone.now() - age,
    )


def _keys() -> set[str]:
    return set(IdempotencyRecord.objects.values_list("key", flat=True))


@pytest.mark.django_db
def test_purge_deletes_records_older_than_the_retention_and_keeps_younger_ones(
    settings, business_clock
):
    settings.IDEMPOTENCY_RETENTION_DAYS = 3
    _record("old", age=timedelta(days=3, microseconds=1))
    _record("older", age=timedelta(days=30))
    _record("exactly-three-days", age=timedelta(days=3))  # not older than the retention
    _record("young", age=timedelta(days=2, hours=23))
    _record("new", age=timedelta(0))
    assert idempotency_records_purge() == 2
    assert _keys() == {"exactly-three-days", "young", "new"}


@pytest.mark.django_db
def test_the_retention_defaults_to_seven_days(business_clock):
    _record("seven-days-and-a-moment", age=timedelta(days=7, microseconds=1))
    _record("seven-days", age=timedelta(days=7))
    _record("six-days", age=timedelta(days=6))
    assert idempotency_records_purge() == 1
    assert _keys() == {"seven-days", "six-days"}


@pytest.mark.django_db
def test_purge_runs_in_chunks_without_reading_the_rows():
    for number in range(5):
        _record(f"old-{number}", age=timedelta(days=10))
    _record("young", age=timedelta(days=1))
    with CaptureQueriesContext(connection) as queries:
        assert idempotency_records_purge(chunk_size=2) == 5
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert all("LIMIT 2" in sql for sql in deletes)
    assert not [q for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert _keys() == {"young"}


@pytest.mark.django_db
def test_the_daily_task_purges(settings):
    _record("old", age=timedelta(days=10))
    assert idempotency_records_purge_task.delay().get() == 1
    assert _keys() == set()


@pytest.mark.django_db
def test_the_purge_is_on_the_beat_schedule_daily():
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    entry = PeriodicTask.objects.get(task=IDEMPOTENCY_PURGE_TASK)
    assert entry.enabled
    assert (entry.crontab.day_of_month, entry.crontab.day_of_week) == ("*", "*")
    assert entry.crontab.hour.isdigit()
    assert entry.crontab.minute.isdigit()
    assert IDEMPOTENCY_PURGE_TASK in app.tasks


@pytest.mark.django_db
def test_a_key_reused_after_expiry_and_purge_is_a_new_request(integration_api, settings):
    MemberFactory(customer_no="RET1")
    first = integration_api.post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY="reuse")
    assert first.status_code == 202
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=8))
    assert idempotency_records_purge() == 1
    again = integration_api.post(URL, _batch("2.00"), format="json", HTTP_IDEMPOTENCY_KEY="reuse")
    assert again.status_code == 202, again.content  # not 409 idempotency_conflict
    assert "Idempotent-Replayed" not in again
    assert IdempotencyRecord.objects.count() == 1
    assert str(AssetSnapshot.objects.get().deposits) == "2.00"  # it ran


@pytest.mark.django_db
def test_a_key_reused_after_expiry_is_new_before_the_purge_ran(integration_api, business_clock):
    MemberFactory(customer_no="RET1")
    integration_api.post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY="stale")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=8))
    old = IdempotencyRecord.objects.get()
    again = integration_api.post(URL, _batch("2.00"), format="json", HTTP_IDEMPOTENCY_KEY="stale")
    assert again.status_code == 202, again.content
    assert "Idempotent-Replayed" not in again
    assert str(AssetSnapshot.objects.get().deposits) == "2.00"  # it ran
    record = IdempotencyRecord.objects.get()
    assert record.pk != old.pk
    assert record.fingerprint != old.fingerprint
    assert record.created_at == business_clock.now  # a new record, live
    assert record.created_at >= idempotency_expired_before()
    # And the new record is replayed like any other.
    replay = integration_api.post(URL, _batch("2.00"), format="json", HTTP_IDEMPOTENCY_KEY="stale")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == again.json()


@pytest.mark.django_db
def test_a_key_within_the_retention_is_still_replayed(integration_api):
    MemberFactory(customer_no="RET1")
    first = integration_api.post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY="live")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=6))
    idempotency_records_purge()
    replay = integration_api.post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY="live")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert IdempotencyRecord.objects.count() == 1
    conflict = integration_api.post(URL, _batch("9.00"), format="json", HTTP_IDEMPOTENCY_KEY="live")
    assert conflict.status_code == 409
    assert str(AssetSnapshot.objects.get().deposits) == "1.00"  # neither ran again


@pytest.mark.django_db(transaction=True)
def test_parallel_reuse_of_an_expired_key_runs_once():
    """Eight threads reuse an expired key at once, each on its own client (its own token of the
    one caller) and connection: one replaces the record and runs, seven wait on it in PostgreSQL
    (on the expired record's row or the new record's unique key) and then replay its answer.

    While the eight are in flight this test holds a lock on the snapshot table, so the one that
    replaced the record is stopped inside its transaction; it then observes that exactly one
    backend waits on that lock and the seven others wait behind it, before letting them go."""
    MemberFactory(customer_no="RET1")
    user = UserFactory(roles=[roles.INTEGRATION])

    def client_of_the_caller() -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client

    client_of_the_caller().post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY="race")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=8))
    expired = IdempotencyRecord.objects.get()
    barrier = threading.Barrier(8)
    results: list = []
    errors: list[BaseException] = []

    def send():
        try:
            client = client_of_the_caller()
            barrier.wait(timeout=10)
            response = client.post(URL, _batch("5.00"), format="json", HTTP_IDEMPOTENCY_KEY="race")
            results.append((response.status_code, response.get("Idempotent-Replayed")))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    with table_write_locked(AssetSnapshot) as holder:
        for thread in threads:
            thread.start()
        replaced, replaying = lock_queue(holder=holder, waiters=8)
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert (len(replaced), len(replaying)) == (1, 7)  # the race was run, not eight in a row
    assert len(results) == 8
    assert {status for status, _ in results} == {202}
    assert sum(1 for _, replayed in results if replayed is None) == 1
    record = IdempotencyRecord.objects.get()
    assert record.pk != expired.pk
    assert [str(row.deposits) for row in AssetSnapshot.objects.all()] == ["5.00"]
