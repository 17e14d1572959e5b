"""Celery tasks of the insights app: thin wrappers that call services.

``insights.kpi_snapshots_refresh`` runs monthly (early on the 1st, Asia/Shanghai): it stores
the closed month's KPI snapshots and refreshes every member's value and churn risk with them.
``insights.member_values_refresh`` refreshes the values alone (on demand).
``insights.recommendations_refresh`` runs nightly: every active member's recommendations, one
chunk of members per transaction, one run at a time. Each service rewrites the same rows
however often it runs, so a task that fails for a transient database reason is retried with
backoff.
"""

import datetime as dt
from typing import Any

from celery import shared_task

from insights.services.kpis import kpi_snapshots_refresh
from insights.services.recommendations import recommendations_refresh
from insights.services.value import member_values_refresh
from loyalty.tasks import transient_retry
from loyalty.timeutils import month_end

_TRANSIENT_RETRY = transient_retry(max_retries=5)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


@shared_task(name="insights.kpi_snapshots_refresh", **_TRANSIENT_RETRY)
def kpi_snapshots_refresh_task(month: str | None = None) -> dict[str, Any]:
    """Monthly: the KPI snapshots of ``month`` (ISO date of any day of it; default the month
    just closed), then the member values as of that month's last day."""
    result = kpi_snapshots_refresh(month=_date(month))
    values = member_values_refresh(as_of=month_end(result["month"]))
    return {
        "month": result["month"].isoformat(),
        "rows": result["rows"],
        "members": values["members"],
    }


@shared_task(name="insights.member_values_refresh", **_TRANSIENT_RETRY)
def member_values_refresh_task(as_of: str | None = None) -> dict[str, Any]:
    """Every member's value and churn risk as of ``as_of`` (ISO date; default today)."""
    result = member_values_refresh(as_of=_date(as_of))
    return {**result, "as_of": result["as_of"].isoformat()}


@shared_task(name="insights.recommendations_refresh", **_TRANSIENT_RETRY)
def recommendations_refresh_task() -> dict[str, Any] | None:
    """Nightly: rank every active member's rewards and events; the run's counts, or ``None``
    when another run was in progress."""
    run = recommendations_refresh()
    if run is None:
        return None
    return {"run": run.pk, "members": run.members, "items": run.items}
