"""Request ids: answered in X-Request-ID, on every log line of the request (JSON lines in
production), and carried into the Celery tasks the request enqueues, through a real worker."""

import json
import logging
import re
import time

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from loyalty.observability import RequestIdFilter
from points.models import Transaction
from tests.factories import MemberFactory
from tests.points.factories import EarningRuleFactory, tx_item

INGEST = "/api/v1/ingest/transactions/"


def test_a_plausible_caller_id_is_kept_and_answered(client):
    response = client.get("/healthz", headers={"x-request-id": "bank-app.7f3a_01"})
    assert response["X-Request-ID"] == "bank-app.7f3a_01"


@pytest.mark.parametrize("given", ["", "has spaces", "x" * 65, "semi;colon", "ünïcode"])
def test_anything_else_gets_a_new_id(client, given):
    response = client.get("/healthz", headers={"x-request-id": given})
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert response["X-Request-ID"] != given


def test_every_log_line_of_a_request_names_it_as_json(client):
    """The production formatter and filter (settings.LOGGING), on Django's own request log."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    json_format = settings.LOGGING["formatters"]["json"]
    handler = Collect()
    handler.setFormatter(
        JsonFormatter(json_format["fmt"], rename_fields=json_format["rename_fields"])
    )
    handler.addFilter(RequestIdFilter())
    django_request = logging.getLogger("django.request")
    django_request.addHandler(handler)
    try:
        client.get("/api/v1/no-such-thing/", headers={"x-request-id": "req-404-check"})
    finally:
        django_request.removeHandler(handler)
    record = json.loads(lines[-1])
    assert record["request_id"] == "req-404-check"
    assert (record["level"], record["logger"]) == ("WARNING", "django.request")
    assert "Not Found" in record["message"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_the_consumer_under_the_id_of_the_request_that_enqueued_it(
    celery_worker_process, integration_api
):
    EarningRuleFactory(code="card")
    member = MemberFactory()
    worker = celery_worker_process(LOG_FORMAT="json")
    answer = integration_api.post(
        INGEST,
        {"transactions": [tx_item(member)]},
        format="json",
        headers={"x-request-id": "core-banking-batch-42"},
    )
    assert answer.status_code == 202
    assert answer["X-Request-ID"] == "core-banking-batch-42"
    deadline = time.monotonic() + 30
    while Transaction.objects.filter(status="pending").exists():
        assert time.monotonic() < deadline, worker.log_tail(2000)
        time.sleep(0.2)
    records = [
        json.loads(line)
        for line in worker.log_path.read_text(errors="replace").splitlines()
        if line.startswith("{")
    ]
    started = [r for r in records if r["message"] == "task points.transactions_process started"]
    assert started, worker.log_tail(2000)
    assert started[0]["request_id"] == "core-banking-batch-42"
    assert all(r["request_id"] != "-" for r in records if r["logger"].startswith("points"))
