"""Celery tasks: thin wrappers that take plain arguments and call services.

``points.ingest_transactions`` is the name upstream systems send to; the others run on the
workers (``points.transactions_process``) or on the beat schedule (sweep, expiry, reconcile).

A task that fails for a transient database reason (``OperationalError``, ``InterfaceError``:
the connection lost, a deadlock, the server restarting) is retried with exponential backoff
instead of being acknowledged and dropped; the consumer leaves its rows pending meanwhile.
"""

import datetime as dt
import logging
from typing import Any

from celery import shared_task

from loyalty.tasks import transient_retry
from points.models import Transaction
from points.services.consumer import transactions_process
from points.services.expiry import points_expire_due, points_expiry_warn
from points.services.ingest import (
    consumer_enqueue,
    consumer_scheduled_clear,
    transactions_store,
    transactions_sweep,
)
from points.services.reconciliation import ledger_reconcile
from points.validation import transaction_items_validate

logger = logging.getLogger(__name__)

_TRANSIENT_RETRY = transient_retry(max_retries=10)


@shared_task(name="points.ingest_transactions", **_TRANSIENT_RETRY)
def transactions_ingest_task(transactions: list[dict[str, Any]]) -> dict[str, Any]:
    """Store transactions sent as a Celery message (the same items as the ingest API).

    Returns ``{accepted, duplicates, rejected: [{index, errors}]}``; rejected items are also
    logged, since the sender usually does not wait for the result.
    """
    if not isinstance(transactions, list):
        logger.error("points.ingest_transactions: expected a list, got %s", type(transactions))
        return {"accepted": 0, "duplicates": 0, "rejected": [{"index": None, "errors": []}]}
    valid, rejected = transaction_items_validate(transactions)
    counts = transactions_store(transactions=[item for _, item in valid], via=Transaction.Via.TASK)
    for item in rejected:
        logger.warning("points.ingest_transactions rejected item %s: %s", item["index"], item)
    return {**counts, "rejected": rejected}


@shared_task(name="points.transactions_process", **_TRANSIENT_RETRY)
def transactions_process_task(max_batches: int | None = None) -> int:
    """Consume pending inbox rows, a batch per database transaction (acknowledged late).

    A task stops after ``max_batches`` so no message runs for long; if rows are still pending
    it enqueues a successor (coalesced: rows that arrived while it ran have already woken one),
    so a backlog drains without waiting for the sweeper.
    """
    consumer_scheduled_clear()
    processed = transactions_process(max_batches=max_batches)
    if processed and Transaction.objects.filter(status=Transaction.Status.PENDING).exists():
        consumer_enqueue(coalesce=True)
    return processed


@shared_task(name="points.transactions_sweep", **_TRANSIENT_RETRY)
def transactions_sweep_task(older_than_seconds: float | None = None) -> dict[str, int]:
    """Re-enqueue the consumer for rows pending longer than ``older_than_seconds`` (by default
    ``POINTS_SWEEP_AFTER_SECONDS``; ``0`` takes every pending row, however young). Beat runs it
    every 30 seconds, so a lost wake-up costs seconds."""
    if older_than_seconds is None:
        return transactions_sweep()
    return transactions_sweep(older_than=dt.timedelta(seconds=max(0.0, older_than_seconds)))


@shared_task(name="points.expire_due")
def points_expire_due_task() -> dict[str, int]:
    """Daily: expire due lots, then warn members of points expiring soon."""
    result = points_expire_due()
    result["warned"] = points_expiry_warn()
    return result


@shared_task(name="points.reconcile")
def points_reconcile_task() -> dict[str, Any]:
    """Nightly: check every account against its ledger and every debit against its lot
    consumptions, and log the outcome."""
    report = ledger_reconcile()
    for line in report.lines():
        logger.error("points reconciliation: %s", line)
    if report.consistent:
        logger.info(
            "points reconciliation: %s accounts, %s debits, all consistent",
            report.accounts,
            report.debits,
        )
    return {
        "checked": report.accounts,
        "debits": report.debits,
        "discrepancies": len(report.account_discrepancies) + len(report.debit_discrepancies),
    }
