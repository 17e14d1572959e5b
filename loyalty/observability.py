"""Request ids in logs, carried into the Celery tasks a request enqueues.

What holds:

- Every request has an id: the caller's ``X-Request-ID`` when it is a plausible one (1 to 64
  letters, digits, ``.``, ``_`` or ``-``), else a new random one. The response carries it back
  in ``X-Request-ID``, and every log line written while the request runs names it
  (``request_id``; ``-`` outside a request).
- A task enqueued while a request runs carries the id in its message headers; the worker runs
  the task under that id, so its log lines name the request that caused it. A task enqueued
  outside a request (beat, another task without one) gets an id of its own when it starts.
- Logs are JSON lines (one object per line: time, level, logger, message, request id and
  whatever ``extra`` a call passes) unless ``LOG_FORMAT=plain`` (the default with DEBUG on).
"""

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

logger = logging.getLogger(__name__)


def request_id_get() -> str | None:
    """The id of the request (or task) running now; ``None`` outside one."""
    return _request_id.get()


def _new_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request's id for its logs and answers it in ``X-Request-ID``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(HEADER, "")
        _request_id.set(given if _VALID.match(given) else _new_id())
        response = self.get_response(request)
        response[HEADER] = _request_id.get()
        return response


@receiver(request_finished, dispatch_uid="loyalty.request_id_finished")
def _request_id_clear(**kwargs: Any) -> None:
    """Kept until the response is sent, not only while the middleware runs: Django logs a
    4xx or 5xx answer after the middleware chain has returned."""
    _request_id.set(None)


class RequestIdFilter(logging.Filter):
    """Puts the running request's (or task's) id on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        return True


@before_task_publish.connect(dispatch_uid="loyalty.request_id_publish")
def _request_id_into_task(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    current = _request_id.get()
    if headers is not None and current:
        headers.setdefault("request_id", current)


_task_tokens: dict[str, Any] = {}


@task_prerun.connect(dispatch_uid="loyalty.request_id_prerun")
def _request_id_from_task(task_id: str, task: Any, **kwargs: Any) -> None:
    carried = getattr(task.request, "request_id", None)
    if not (isinstance(carried, str) and _VALID.match(carried)):
        carried = _request_id.get() or _new_id()  # run eagerly inside a request: its id
    _task_tokens[task_id] = _request_id.set(carried)
    logger.info("task %s started", task.name, extra={"task_id": task_id})


@task_postrun.connect(dispatch_uid="loyalty.request_id_postrun")
def _request_id_task_done(task_id: str, **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _request_id.reset(token)
