"""``Idempotency-Key`` support for writes that move points or stock.

The first request with a key runs and its response is stored; a retry with the same key and the
same request gets that response back (header ``Idempotent-Replayed: true``); the same key with a
different request answers 409 ``idempotency_conflict``. Keys are scoped per caller.

Concurrent requests with one key are serialised by PostgreSQL itself: the record is inserted
first, inside the request's transaction, so a second INSERT of the same ``(caller, key)`` waits on
the unique index until the first commits, then replays its response. Responses of 5xx are not
kept (the whole transaction rolls back), so a retry after a crash runs again.
"""

import functools
import hashlib
import json
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from rest_framework.response import Response

from loyalty.api.exceptions import problem_exception_handler
from loyalty.errors import IdempotencyConflict, IdempotencyKeyInvalid, IdempotencyKeyRequired
from loyalty.models import IdempotencyRecord

HEADER = "Idempotency-Key"


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
                try:
                    with transaction.atomic():
                        record = IdempotencyRecord.objects.create(
                            caller=caller,
                            key=key,
                            method=request.method,
                            path=request.path[:512],
                            fingerprint=fingerprint,
                        )
                except IntegrityError:
                    record = IdempotencyRecord.objects.get(caller=caller, key=key)
                    if record.fingerprint != fingerprint:
                        raise IdempotencyConflict() from None
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
