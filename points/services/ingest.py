"""The inbox: every way in stores transactions here first, once per ``(source, external_id)``.

Storing is ``INSERT ... ON CONFLICT DO NOTHING``: a transaction re-sent any number of times, by
any route, concurrently or not, is one row; the consumer is enqueued only after the commit, so it
never looks for rows that are not there yet. Points are credited later by the consumer
(:mod:`points.services.consumer`); the sweeper re-enqueues it for rows a lost message left behind.
"""

import datetime as dt
import logging
import math
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from redis.exceptions import RedisError

from loyalty.models import AuditAction
from loyalty.services import audit_log_record
from points.models import Transaction
from points.services.sql import raw_cursor

logger = logging.getLogger(__name__)

_COLUMNS = (
    *Transaction.DELIVERED_FIELDS,
    "member_id",
    "via",
    "received_at",
    "status",
    "status_reason",
    "points",
)


CONSUMER_SCHEDULED_KEY = "points:consumer-scheduled"
# What an unreachable Redis cache raises: logged, and the enqueue goes ahead without coalescing.
CACHE_ERRORS = (RedisError, OSError)


def consumer_enqueue(*, count: int = 1, coalesce: bool = False) -> None:
    """Ask the workers to process the inbox (``count`` consumer tasks, each claims its own rows).

    Call only after a commit (``transaction.on_commit``): a consumer started before would not
    see the rows. With ``coalesce``, the task starts after a short delay and no other is sent
    while it waits (a marker in the cache, cleared by the task as it starts, before it claims
    rows), so a stream of small ingests feeds one consumer batch instead of a task per request.
    Losing the marker or the message costs latency only: the sweeper re-enqueues. So a broker
    that cannot be reached is logged, never raised: the rows are committed, and the caller's
    answer (202) must say so.
    """
    from points.tasks import transactions_process_task

    countdown = None
    if coalesce:
        try:
            if not cache.add(CONSUMER_SCHEDULED_KEY, 1, timeout=consumer_coalesce_seconds()):
                return
            countdown = getattr(settings, "POINTS_CONSUMER_COALESCE_DELAY", 0.25)
        except CACHE_ERRORS:  # the cache is an optimisation; never lose an enqueue to it
            logger.warning("consumer coalescing unavailable", exc_info=True)
    try:
        for _ in range(max(1, count)):
            transactions_process_task.apply_async(countdown=countdown)
    except Exception:  # kombu and redis-py raise their own kinds; any of them costs latency only
        logger.warning("consumer wake-up not sent; the sweeper will take the rows", exc_info=True)


def consumer_scheduled_clear() -> None:
    """Called by a consumer task as it starts: later ingests must enqueue again."""
    try:
        cache.delete(CONSUMER_SCHEDULED_KEY)
    except CACHE_ERRORS:
        logger.warning("consumer coalescing unavailable", exc_info=True)


_ARRAY_TYPES = {
    "member_id": "bigint",
    "amount": "numeric",
    "occurred_at": "timestamptz",
    "received_at": "timestamptz",
    "points": "bigint",
}


def _values(item: dict[str, Any], *, via: str, now: dt.datetime) -> tuple:
    """An inbox row in ``_COLUMNS``' order from a validated item (which has every field)."""
    return (
        *(item[name] for name in Transaction.DELIVERED_FIELDS),
        item["member_id"],
        via,
        now,
        Transaction.Status.PENDING,
        "",
        0,
    )


def _insert(rows: list[tuple]) -> int:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in _COLUMNS)
    # A column with one value for every row (the channel, the status, the time received...)
    # is bound once; the others as one array each.
    selected, arrays, scalars, params = [], [], [], []
    for index, (name, values) in enumerate(zip(_COLUMNS, zip(*rows, strict=True), strict=True)):
        kind = _ARRAY_TYPES.get(name, "text")
        first = values[0]
        if all(value == first and type(value) is type(first) for value in values):
            selected.append(f"%b::{kind}")
            scalars.append(first)
        else:
            selected.append(f"u.c{index}")
            arrays.append((f"%b::{kind}[]", f"c{index}"))
            params.append(list(values))
    source = (
        f"FROM unnest({', '.join(array for array, _ in arrays)}) "
        f"AS u({', '.join(alias for _, alias in arrays)})"
        if arrays
        else f"FROM generate_series(1, {len(rows):d})"
    )
    sql = (
        f"INSERT INTO {quote(Transaction._meta.db_table)} ({columns}) "
        f"SELECT {', '.join(selected)} {source} "
        "ON CONFLICT (source, external_id) DO NOTHING"
    )
    with raw_cursor() as cursor:
        cursor.execute(sql, [*scalars, *params])
        return cursor.rowcount


def transactions_store(*, transactions: list[dict[str, Any]], via: str) -> dict[str, int]:
    """Store validated transactions (each with ``member_id``) in the inbox, in one database
    transaction, and enqueue the consumer after it commits.

    Guarantees: a ``(source, external_id)`` already stored (or repeated within the call) is
    counted as a duplicate and changes nothing; a delivery of nothing new whose rows are still
    pending wakes a consumer, so resending is always a way to get them credited. Returns
    ``{"accepted", "duplicates"}``.
    """
    if not transactions:
        return {"accepted": 0, "duplicates": 0}
    now = timezone.now()
    rows = [_values(item, via=via, now=now) for item in transactions]
    with transaction.atomic():
        accepted = _insert(rows)
        if accepted:
            from points.services.ledger import accounts_create

            accounts_create(member_ids=[item["member_id"] for item in transactions])
            # Small deliveries share a queued consumer; a full batch gets a consumer of its own.
            coalesce = accepted < consumer_batch_size()
            transaction.on_commit(lambda: consumer_enqueue(coalesce=coalesce))
        elif _any_pending(transactions):
            # A resend of rows still waiting (its first wake-up lost): wake a consumer now, not
            # coalesced, since the lost wake-up's marker may still stand.
            transaction.on_commit(consumer_enqueue)
    return {"accepted": accepted, "duplicates": len(transactions) - accepted}


def _any_pending(transactions: list[dict[str, Any]]) -> bool:
    keys = {(item.get("source", "core"), item["external_id"]) for item in transactions}
    external_ids = sorted({external_id for _, external_id in keys})
    pending = Transaction.objects.filter(
        status=Transaction.Status.PENDING, external_id__any=external_ids
    ).values_list("source", "external_id")
    return any(key in keys for key in pending)


def transactions_sweep(*, older_than: dt.timedelta | None = None) -> dict[str, int]:
    """Re-enqueue the consumer for inbox rows left pending longer than ``older_than`` (a lost
    broker message, a killed worker), and release parked refunds whose original is now done
    (it was processed by a concurrent batch that could not see the refund yet).

    Safe to run any time and concurrently: the consumer claims rows with ``SKIP LOCKED``.
    """
    if older_than is None:
        older_than = sweep_after()
    done = [Transaction.Status.PROCESSED, Transaction.Status.SKIPPED, Transaction.Status.FAILED]
    original_done = Transaction.objects.filter(
        source=OuterRef("source"), external_id=OuterRef("reverses"), status__in=done
    )
    with transaction.atomic():
        released = (
            Transaction.objects.filter(status=Transaction.Status.PARKED)
            .filter(Exists(original_done))
            .update(status=Transaction.Status.PENDING, status_reason="")
        )
        stale = Transaction.objects.filter(
            status=Transaction.Status.PENDING, received_at__lt=timezone.now() - older_than
        ).count()
        waiting = stale + released
        tasks = 0
        if waiting:
            per_task = consumer_batch_size() * consumer_max_batches()
            tasks = min(
                math.ceil(waiting / per_task), getattr(settings, "POINTS_SWEEP_MAX_TASKS", 8)
            )
            transaction.on_commit(lambda: consumer_enqueue(count=tasks))
    if waiting:
        logger.info("sweep: %s stale, %s released, %s consumers enqueued", stale, released, tasks)
    return {"stale": stale, "released": released, "enqueued": tasks}


def transactions_retry(*, ids: list[int], actor: Any) -> int:
    """Put failed, skipped or parked inbox rows back to pending (an operator's retry) and
    enqueue the consumer. Processed rows are never touched: their points are in the ledger."""
    with transaction.atomic():
        rows = list(
            Transaction.objects.select_for_update()
            .filter(pk__in=ids)
            .exclude(status__in=[Transaction.Status.PROCESSED, Transaction.Status.PENDING])
            .order_by("pk")
        )
        for row in rows:
            audit_log_record(
                actor=actor,
                action=AuditAction.POINTS_TRANSACTION_RETRY,
                target=row,
                before={"status": row.status, "reason": row.status_reason},
                after={"status": Transaction.Status.PENDING},
            )
        count = Transaction.objects.filter(pk__in=[row.pk for row in rows]).update(
            status=Transaction.Status.PENDING, status_reason="", processed_at=None
        )
        if count:
            transaction.on_commit(consumer_enqueue)
    return count


def sweep_after() -> dt.timedelta:
    """How long a pending row waits before the sweeper wakes a consumer for it
    (``POINTS_SWEEP_AFTER_SECONDS``, 30 by default; beat sweeps as often)."""
    return dt.timedelta(seconds=int(settings.POINTS_SWEEP_AFTER_SECONDS))


def consumer_batch_size() -> int:
    return int(getattr(settings, "POINTS_CONSUMER_BATCH_SIZE", 1000))


def consumer_coalesce_seconds() -> int:
    return int(getattr(settings, "POINTS_CONSUMER_COALESCE_SECONDS", 10))


def consumer_max_batches() -> int:
    return int(getattr(settings, "POINTS_CONSUMER_MAX_BATCHES", 20))
