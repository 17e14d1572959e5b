"""Celery task of the recommendations: a thin wrapper on the nightly schedule.

The refresh replaces each chunk of members' rows in its own transaction and runs once at a
time, so a task that fails for a transient database reason (``OperationalError``,
``InterfaceError``) is retried with backoff: a retry recomputes every member from the data.
"""

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from insights.services.recommendations import recommendations_refresh

_TRANSIENT_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="insights.recommendations_refresh", **_TRANSIENT_RETRY)
def recommendations_refresh_task() -> dict[str, Any] | None:
    """Nightly: rank every active member's rewards and events; the run's counts, or ``None``
    when another run was in progress."""
    run = recommendations_refresh()
    if run is None:
        return None
    return {"run": run.pk, "members": run.members, "items": run.items}
