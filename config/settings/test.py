"""Test settings: PostgreSQL and Redis, as in production, unless overridden by the environment."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loyalty")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("DEBUG", "1")

from config.settings.base import *  # noqa: F403
from config.settings.base import CACHES, REST_FRAMEWORK, _env_bool

# Service-level tests run tasks in-process; tests about workers start a real worker on Redis
# (tests/conftest.py: celery_worker_process) and switch this off.
# A worker subprocess started by a test sets CELERY_TASK_ALWAYS_EAGER=0 in its environment.
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CACHES["default"]["KEY_PREFIX"] = f"loyalty-test-{os.getpid()}"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["rest_framework.renderers.JSONRenderer"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"auth": "1000/minute"}
SECURE_SSL_REDIRECT = False
