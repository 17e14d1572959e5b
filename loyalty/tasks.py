"""Celery tasks of the shared conventions: thin wrappers that call a service.

``loyalty.idempotency_records_purge`` runs daily on the beat schedule (registered by migration
``0005_idempotency_retention_schedule``, editable in the admin).
"""

import logging
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from loyalty.api.idempotency import idempotency_records_purge


def transient_retry(*, max_retries: int) -> dict[str, Any]:
    """Options for a task whose work is idempotent: on a transient database failure
    (``OperationalError``, ``InterfaceError``; what its transaction wrote rolled back) it is
    retried, not dropped, as a new message after 1, 2, 4... seconds (at most a minute apart,
    with jitter so the retries of many tasks spread out)."""
    return {
        "autoretry_for": (OperationalError, InterfaceError),
        "retry_backoff": 1,
        "retry_backoff_max": 60,
        "retry_jitter": True,
        "max_retries": max_retries,
    }


logger = logging.getLogger(__name__)

IDEMPOTENCY_PURGE_TASK = "loyalty.idempotency_records_purge"


@shared_task(name=IDEMPOTENCY_PURGE_TASK)
def idempotency_records_purge_task() -> int:
    """Daily: delete the Idempotency-Key records older than the retention period."""
    deleted = idempotency_records_purge()
    logger.info("idempotency records purged: %s", deleted)
    return deleted
