"""Celery tasks of the shared conventions: thin wrappers that call a service.

``loyalty.idempotency_records_purge`` runs daily on the beat schedule (registered by migration
``0005_idempotency_retention_schedule``, editable in the admin).
"""

import logging

from celery import shared_task

from loyalty.api.idempotency import idempotency_records_purge

logger = logging.getLogger(__name__)

IDEMPOTENCY_PURGE_TASK = "loyalty.idempotency_records_purge"


@shared_task(name=IDEMPOTENCY_PURGE_TASK)
def idempotency_records_purge_task() -> int:
    """Daily: delete the Idempotency-Key records older than the retention period."""
    deleted = idempotency_records_purge()
    logger.info("idempotency records purged: %s", deleted)
    return deleted
