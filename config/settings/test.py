"""Test settings: PostgreSQL and Redis, as in production.

``DATABASE_URL`` and ``REDIS_URL`` name the servers; unset, they are the embedded ones that
``make test`` starts (``config/devservers.py``).

The cache is Redis, as in production (throttles and the consumer's coalescing marker are shared
between processes through it), in a database of its own per test process: ``REDIS_URL``'s
database + 1 + the pytest-xdist worker's index (gw0: + 1, gw1: + 2...), since every test clears
the cache (``FLUSHDB``) and two processes must never clear each other's. A process a test starts
(a Celery worker, a server) gets the test process's cache in ``TEST_CACHE_URL``.
"""

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

from config import devservers

# Test output is read by people: plain log lines unless a test asks for JSON (LOG_FORMAT=json).
os.environ.setdefault("LOG_FORMAT", "plain")

if not os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = devservers.REDIS_URL
os.environ.setdefault("DEBUG", "1")

from config.settings.default import *  # noqa: F403
from config.settings.default import CELERY_BROKER_TRANSPORT_OPTIONS, REST_FRAMEWORK, _env_bool

# Service-level tests run tasks in-process. A real worker started by a test (the `worker`
# marker) gets CELERY_TASK_ALWAYS_EAGER=0 in its environment and consumes from Redis.
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# A worker a test starts can be told to acknowledge on receipt instead (to see a test fail).
CELERY_TASK_ACKS_LATE = _env_bool("CELERY_TASK_ACKS_LATE", default=True)
if os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "").startswith("test-"):
    # A worker on a test's own queue keeps its unacknowledged messages under keys of that queue,
    # so a short visibility timeout restores only that test's messages, never those another
    # test's worker (another xdist process, same broker database) is working on; and it looks
    # for them every second instead of every 100 s.
    _queue = os.environ["CELERY_TASK_DEFAULT_QUEUE"]
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "unacked_key": f"unacked:{_queue}",
        "unacked_index_key": f"unacked_index:{_queue}",
        "unacked_mutex_key": f"unacked_mutex:{_queue}",
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

REDIS_DATABASES = int(os.environ.get("TEST_REDIS_DATABASES", "16"))


def _cache_url_for(redis_url: str, xdist_worker: str = "") -> str:
    """``redis_url`` with its database (the path, or ``?db=`` for a socket) replaced by
    that database + 1 + the index of the xdist worker (``gw0``, ``gw1``...; none counts as 0)."""
    parts = urlsplit(redis_url)
    query = dict(parse_qsl(parts.query))
    socket = parts.scheme == "unix"
    given = query.get("db", "0") if socket else (parts.path.strip("/") or query.get("db", "0"))
    index = xdist_worker[2:] if xdist_worker.startswith("gw") else "0"
    if not given.isdigit() or not index.isdigit():
        raise ImproperlyConfigured(f"cannot derive a cache database from {redis_url!r}")
    db = int(given) + 1 + int(index)
    if db >= REDIS_DATABASES:
        raise ImproperlyConfigured(
            f"the test cache would be Redis database {db}, past the server's {REDIS_DATABASES}: "
            "give REDIS_URL a lower database, run fewer xdist workers, or set "
            "TEST_REDIS_DATABASES to the server's `databases`."
        )
    if socket:
        query["db"] = str(db)
        return f"{redis_url.partition('?')[0]}?{urlencode(query)}"
    query.pop("db", None)
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


TEST_CACHE_URL = os.environ.get("TEST_CACHE_URL") or _cache_url_for(
    os.environ["REDIS_URL"], os.environ.get("PYTEST_XDIST_WORKER", "")
)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": TEST_CACHE_URL,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "loyalty"),
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["rest_framework.renderers.JSONRenderer"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "auth": "1000/minute",
    "auth_user": "1000/minute",
    "auth_refresh": "1000/minute",
}
SECURE_SSL_REDIRECT = False
