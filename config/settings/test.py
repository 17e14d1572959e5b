"""Test settings: PostgreSQL and Redis, as in production, unless overridden by the environment."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loyalty")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("DEBUG", "1")

from config.settings.default import *  # noqa: F403
from config.settings.default import REST_FRAMEWORK

# Service-level tests run tasks in-process; tests about workers start a real worker on Redis.
CELERY_TASK_ALWAYS_EAGER = True
# Throttle counters are per test process (xdist workers must not clear each other's).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["rest_framework.renderers.JSONRenderer"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"auth": "1000/minute"}
SECURE_SSL_REDIRECT = False
