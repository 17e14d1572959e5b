"""Idempotency-Key records expire after IDEMPOTENCY_RETENTION_DAYS: purged daily in chunks, and
a key reused after expiry is a new request."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.api.idempotency import idempotency_records_purge
from loyalty.models import IdempotencyRecord
from loyalty.tasks import IDEMPOTENCY_PURGE_TASK, idempotency_records_purge_task
from tests.factories import MemberFactory

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
def test_purge_deletes_records_older_than_the_retention_and_keeps_younger_ones(settings):
    settings.IDEMPOTENCY_RETENTION_DAYS = 3
    _record("old", age=timedelta(days=3, minutes=1))
    _record("older", age=timedelta(days=30))
    _record("young", age=timedelta(days=2, hours=23))
    _record("new", age=timedelta(0))
    assert idempotency_records_purge() == 2
    assert _keys() == {"young", "new"}


@pytest.mark.django_db
def test_the_retention_defaults_to_seven_days():
    _record("eight-days", age=timedelta(days=8))
    _record("six-days", age=timedelta(days=6))
    idempotency_records_purge()
    assert _keys() == {"six-days"}


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


@pytest.mark.django_db
def test_a_key_reused_after_expiry_is_new_before_the_purge_ran(integration_api):
    MemberFactory(customer_no="RET1")
    integration_api.post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY="stale")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=8))
    old = IdempotencyRecord.objects.get()
    again = integration_api.post(URL, _batch("2.00"), format="json", HTTP_IDEMPOTENCY_KEY="stale")
    assert again.status_code == 202, again.content
    assert "Idempotent-Replayed" not in again
    record = IdempotencyRecord.objects.get()
    assert record.pk != old.pk
    assert record.fingerprint != old.fingerprint
    assert record.created_at > timezone.now() - timedelta(minutes=1)
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
    conflict = integration_api.post(URL, _batch("9.00"), format="json", HTTP_IDEMPOTENCY_KEY="live")
    assert conflict.status_code == 409


@pytest.mark.django_db(transaction=True)
def test_parallel_reuse_of_an_expired_key_runs_once(staff_client):
    """Eight threads reuse an expired key at once: one replaces the record and runs, seven
    replay its answer."""
    MemberFactory(customer_no="RET1")
    client = staff_client("integration")
    client.post(URL, _batch("1.00"), format="json", HTTP_IDEMPOTENCY_KEY="race")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=8))
    barrier = threading.Barrier(8)
    results: list = []

    def send():
        try:
            barrier.wait()
            response = client.post(URL, _batch("5.00"), format="json", HTTP_IDEMPOTENCY_KEY="race")
            results.append((response.status_code, response.get("Idempotent-Replayed")))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8
    assert {status for status, _ in results} == {202}
    assert sum(1 for _, replayed in results if replayed is None) == 1
    assert IdempotencyRecord.objects.count() == 1
