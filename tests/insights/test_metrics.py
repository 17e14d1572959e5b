"""/metrics: guarded by its token, the database figures as stored when scraped (ingestion lag,
inbox, redemptions), request latency from django-prometheus, and a worker's own counters."""

import datetime as dt
import re

import pytest
from celery import shared_task
from django.utils import timezone

from insights.metrics import CONSUMER_ROWS, TASK_FAILURES
from points.models import Transaction
from points.services.ingest import transactions_store
from points.tasks import transactions_process_task
from points.validation import transaction_items_validate
from tests.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, tx_item

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-7c1e"


def _value(body: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", body, re.M)
    assert match, name
    return float(match.group(1))


def _pending(member, *, minutes_ago: int) -> None:
    """One transaction stored in the inbox as the ingest API stores it, received then."""
    item = tx_item(member)
    valid, rejected = transaction_items_validate([item])
    assert rejected == []
    transactions_store(transactions=[valid[0][1]], via=Transaction.Via.API)
    Transaction.objects.filter(external_id=item["external_id"]).update(
        received_at=timezone.now() - dt.timedelta(minutes=minutes_ago)
    )


def test_without_the_token_there_is_nothing_there(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 404
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404  # no token configured, DEBUG off


def test_the_lag_is_the_age_of_the_oldest_row_waiting(client, settings):
    settings.METRICS_TOKEN = TOKEN
    member = MemberFactory()
    _pending(member, minutes_ago=5)
    _pending(member, minutes_ago=1)
    client.get("/healthz")
    body = client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).content.decode()
    assert 300 <= _value(body, "loyalty_ingestion_lag_seconds") < 330
    assert _value(body, 'loyalty_inbox_rows{status="pending"}') == 2
    assert _value(body, 'loyalty_redemptions{status="pending"}') == 0
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in body

    Transaction.objects.update(status=Transaction.Status.PROCESSED)
    body = client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).content.decode()
    assert _value(body, "loyalty_ingestion_lag_seconds") == 0


@shared_task(name="tests.metrics_always_fails")
def _always_fails() -> None:
    raise RuntimeError("boom")


def test_a_worker_counts_the_rows_it_settled_and_the_tasks_that_failed():
    EarningRuleFactory(code="card")
    member = MemberFactory()
    _pending(member, minutes_ago=0)
    _pending(member, minutes_ago=0)
    settled = CONSUMER_ROWS._value.get()
    failed = TASK_FAILURES.labels(task="tests.metrics_always_fails")._value.get()
    assert transactions_process_task.apply().get() == 2
    _always_fails.apply(throw=False)
    assert CONSUMER_ROWS._value.get() == settled + 2
    assert TASK_FAILURES.labels(task="tests.metrics_always_fails")._value.get() == failed + 1
