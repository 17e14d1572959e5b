"""Prometheus metrics at ``/metrics``: request latency (django-prometheus), ingestion lag and
the state of the inbox, redemptions, invitations and tier runs (read from the database when
scraped), consumer throughput and task failures (counted by the worker that ran them).

What holds:

- The database figures are read at scrape time, so every web process reports the same values
  and nothing is lost when a process restarts; they are the inbox's aggregate of the console's
  dashboard (one statement) and a grouped count per table.
- ``loyalty_ingestion_lag_seconds`` is the age of the oldest inbox row still waiting to be
  credited (pending, or parked waiting for its original), 0 when none waits: what an operator
  alerts on before a customer misses points.
- Counters kept in memory (``loyalty_consumer_rows_total``, ``loyalty_task_failures_total``)
  belong to the worker process that counted them: a worker serves its own ``/metrics`` on
  ``WORKER_METRICS_PORT`` when that is set. Web processes under gunicorn share their request
  metrics through ``PROMETHEUS_MULTIPROC_DIR`` when it is set (prometheus_client's
  multiprocess mode).
- ``/metrics`` answers only with ``Authorization: Bearer $METRICS_TOKEN``; without a token
  configured it is served with DEBUG on only (404 otherwise, as if absent).
"""

import hmac
import os
from typing import Any

from celery.signals import task_failure, task_postrun, worker_ready
from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from events.models import Invitation
from insights.selectors import dashboard_inbox_figures
from members.models import TierEvaluationRun
from rewards.models import Redemption

CONSUMER_ROWS = Counter(
    "loyalty_consumer_rows", "Inbox rows the consumer settled (credited, skipped or failed)."
)
TASK_FAILURES = Counter(
    "loyalty_task_failures", "Celery tasks that ended in an exception.", labelnames=["task"]
)


def _by_status(model: Any) -> dict[str, int]:
    return dict(model.objects.values_list("status").annotate(count=Count("pk")))


DATABASE_METRICS = {
    "loyalty_ingestion_lag_seconds": "Age of the oldest inbox row waiting to be credited; 0 "
    "when none waits.",
    "loyalty_inbox_rows": "Inbox rows waiting or failed, by status.",
    "loyalty_redemptions": "Redemptions by status.",
    "loyalty_invitations": "Event invitations by status.",
    "loyalty_tier_runs": "Tier evaluation runs by status.",
}


class DatabaseCollector(Collector):
    """The figures read from the database at each scrape."""

    def describe(self):
        """The names only (the registry asks at registration, before any database exists)."""
        for name, text in DATABASE_METRICS.items():
            yield GaugeMetricFamily(name, text)

    def collect(self):
        now = timezone.now()
        inbox = dashboard_inbox_figures(now=now)
        oldest = inbox["oldest_waiting"]
        lag = GaugeMetricFamily(
            "loyalty_ingestion_lag_seconds", DATABASE_METRICS["loyalty_ingestion_lag_seconds"]
        )
        lag.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        yield lag
        rows = GaugeMetricFamily(
            "loyalty_inbox_rows", DATABASE_METRICS["loyalty_inbox_rows"], labels=["status"]
        )
        for status in ("pending", "parked", "failed"):
            rows.add_metric([status], inbox[status])
        yield rows
        for name, model, statuses in (
            ("loyalty_redemptions", Redemption, Redemption.Status),
            ("loyalty_invitations", Invitation, Invitation.Status),
            ("loyalty_tier_runs", TierEvaluationRun, TierEvaluationRun.Status),
        ):
            family = GaugeMetricFamily(name, DATABASE_METRICS[name], labels=["status"])
            counts = _by_status(model)
            for status in statuses:
                family.add_metric([status.value], counts.get(status.value, 0))
            yield family


_DATABASE = DatabaseCollector()
REGISTRY.register(_DATABASE)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(_DATABASE)
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Http404
    elif not settings.DEBUG:
        raise Http404
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


@task_postrun.connect(dispatch_uid="insights.metrics_consumer_rows")
def _consumer_rows(sender: Any = None, retval: Any = None, **kwargs: Any) -> None:
    if getattr(sender, "name", "") == "points.transactions_process" and isinstance(retval, int):
        CONSUMER_ROWS.inc(retval)


@task_failure.connect(dispatch_uid="insights.metrics_task_failures")
def _task_failed(sender: Any = None, **kwargs: Any) -> None:
    TASK_FAILURES.labels(task=getattr(sender, "name", "unknown")).inc()


@worker_ready.connect(dispatch_uid="insights.metrics_worker_port")
def _worker_metrics(**kwargs: Any) -> None:
    port = os.environ.get("WORKER_METRICS_PORT")
    if port:
        start_http_server(int(port))
