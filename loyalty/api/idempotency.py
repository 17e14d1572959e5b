"""``Idempotency-Key`` support for writes that move points or stock.

The first request with a key runs and its response is stored; a retry with the same key and the
same request gets that response back (header ``Idempotent-Replayed: true``); the same key with a
different request answers 409 ``idempotency_conflict``. Keys are scoped per caller.

Concurrent requests with one key are serialised by PostgreSQL itself: the record is inserted
first, inside the request's transaction, so a second INSERT of the same ``(caller, key)`` waits on
the unique index until the first commits, then replays its response. Responses of 5xx are not
kept (the whole transaction rolls back), so a retry after a crash runs again.

Records are kept ``IDEMPOTENCY_RETENTION_DAYS`` (default 7). A key reused after that is a new
request, whether or not its old record has been deleted yet: the expired record is replaced.
:func:`idempotency_records_purge` (daily, ``loyalty.idempotency_records_purge`` on the beat
schedule) deletes expired records in chunks of one statement and one transaction each, never
loading them into Python, and skips rows a request holds locked. The records are not part of
the append-only ledger: no trigger protects them from DELETE.
"""

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.response import Response

from loyalty.api.exceptions import problem_exception_handler
from loyalty.errors import IdempotencyConflict, IdempotencyKeyInvalid, IdempotencyKeyRequired
from loyalty.models import IdempotencyRecord

HEADER = "Idempotency-Key"
PURGE_CHUNK_SIZE = 5000


def idempotency_expired_before(*, now: datetime | None = None) -> datetime:
    """Records created before this moment have expired."""
    return (now or timezone.now()) - timedelta(days=settings.IDEMPOTENCY_RETENTION_DAYS)


def idempotency_records_purge(*, chunk_size: int = PURGE_CHUNK_SIZE) -> int:
    """Delete the expired records, ``chunk_size`` per statement and transaction; the number
    deleted. Rows locked by a request in flight are skipped (the next run takes them)."""
    table = connection.ops.quote_name(IdempotencyRecord._meta.db_table)
    cutoff = idempotency_expired_before()
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN ("  # noqa: S608 - the table name is ours
                f"SELECT id FROM {table} WHERE created_at < %s "
                "ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED)",
                [cutoff, chunk_size],
            )
            count = cursor.rowcount
        deleted += count
        if count < chunk_size:
            return deleted


def _record_claim(
    *, caller: str, key: str, method: str, path: str, fingerprint: str
) -> tuple[IdempotencyRecord, bool]:
    """``(record, created)``: a new record for the key, or the one a live earlier request
    made. An expired record is deleted and the key claimed anew."""
    for _attempt in range(2):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    caller=caller, key=key, method=method, path=path, fingerprint=fingerprint
                )
            return record, True
        except IntegrityError:
            earlier = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
            if earlier is None:  # purged meanwhile
                continue
            if earlier.created_at >= idempotency_expired_before():
                return earlier, False
            # Concurrent requests serialise on the row lock; the second finds the new record.
            IdempotencyRecord.objects.filter(pk=earlier.pk, created_at=earlier.created_at).delete()
    record = IdempotencyRecord.objects.get(caller=caller, key=key)
    return record, False


def idempotency_caller(user) -> str:
    scope = getattr(user, "idempotency_scope", None)
    return scope or f"user:{user.pk}"


def request_fingerprint(request) -> str:
    payload = json.dumps(request.data, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.path.encode())
    digest.update(b"\0")
    digest.update(payload.encode())
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.response_status)
    response["Idempotent-Replayed"] = "true"
    if record.response_status and record.response_status >= 400:
        response.content_type = "application/problem+json"
    return response


def idempotent(*, required: bool = False) -> Callable:
    """Decorate an API view's handler method (``post``) to honour ``Idempotency-Key``."""

    def decorator(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(view, request, *args, **kwargs):
            key = request.headers.get(HEADER)
            if key is None:
                if required:
                    raise IdempotencyKeyRequired()
                return handler(view, request, *args, **kwargs)
            if not 0 < len(key) <= 255 or not key.isprintable():
                raise IdempotencyKeyInvalid()
            caller = idempotency_caller(request.user)
            fingerprint = request_fingerprint(request)
            with transaction.atomic():
                record, created = _record_claim(
                    caller=caller,
                    key=key,
                    method=request.method,
                    path=request.path[:512],
                    fingerprint=fingerprint,
                )
                if not created:
                    if record.fingerprint != fingerprint:
                        raise IdempotencyConflict()
                    return _replay(record)
                try:
                    with transaction.atomic():
                        response = handler(view, request, *args, **kwargs)
                except Exception as exc:
                    response = problem_exception_handler(exc, {"view": view, "request": request})
                    if response is None or response.status_code >= 500:
                        raise
                record.response_status = response.status_code
                record.response_body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
                record.save(update_fields=["response_status", "response_body"])
                return response

        return wrapper

    return decorator
