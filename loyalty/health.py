"""Liveness and readiness for the load balancer and the orchestrator.

Probes send GET or HEAD. The answer names a failed dependency, never its error text (which can
carry host names and user names); the error goes to the log.
"""

import logging

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


@require_safe
def healthz(request):
    """200 while the process can answer at all."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:  # what Django raises for any driver error: "not ready"
        logger.exception("readyz: database check failed")
        return "unavailable"
    return None


def _broker_ok() -> str | None:
    if not settings.REDIS_URL:
        return None  # tasks run in-process: there is no broker to wait for
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        client.ping()
    except (RedisError, OSError):  # unreachable, refused, timed out: "not ready"
        logger.exception("readyz: broker check failed")
        return "unavailable"
    return None


@require_safe
def readyz(request):
    """200 when the database and (if configured) the broker answer; else 503 naming which."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    failed = {name: error for name, error in checks.items() if error}
    if failed:
        return JsonResponse(
            {
                "type": "urn:loyalty:problem:not_ready",
                "title": "Service Unavailable",
                "status": 503,
                "code": "not_ready",
                "detail": "Not ready: " + ", ".join(sorted(failed)),
                "failed": failed,
            },
            status=503,
            content_type="application/problem+json",
        )
    configured = {"database": True, "broker": bool(settings.REDIS_URL)}
    return JsonResponse(
        {
            "status": "ready",
            "checks": {name: "ok" if configured[name] else "not configured" for name in checks},
        }
    )
