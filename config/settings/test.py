"""Test settings: PostgreSQL and Redis, as in production.

``DATABASE_URL`` and ``REDIS_URL`` name the servers; unset, they are the embedded ones that
``make test`` starts (``config/devservers.py``).
"""

import os

from config import devservers

os.environ.setdefault("REDIS_URL", devservers.REDIS_URL)
os.environ.setdefault("DEBUG", "1")

from config.settings.default import *  # noqa: F403
from config.settings.default import REST_FRAMEWORK, _env_bool

# Service-level tests run tasks in-process. A real worker started by a test (the `worker`
# marker) gets CELERY_TASK_ALWAYS_EAGER=0 in its environment and consumes from Redis.
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# Throttle counters are per test process (xdist workers must not clear each other's).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["rest_framework.renderers.JSONRenderer"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "auth": "1000/minute",
    "auth_user": "1000/minute",
    "auth_refresh": "1000/minute",
}
SECURE_SSL_REDIRECT = False
