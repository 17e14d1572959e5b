"""Throttles for the sign-in and refresh endpoints.

- Budgets are counted in the shared cache (Redis), so every process sees the same count. When the
  cache cannot be reached, each process counts in its own memory instead: the limit then holds
  per process, never disappears, and a cache outage never turns a sign-in into a 500.
- Sign-in is limited per client address (``auth``) and per username (``auth_user``), so one
  user's wrong passwords lock out that username, not everyone behind a shared gateway address;
  refresh has its own budget per address (``auth_refresh``).
"""

import hashlib
import logging
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import RedisError
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)

_LOCAL = LocMemCache("loyalty-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
CACHE_ERRORS = (RedisError, OSError)


class _FailOpenToLocal:
    """Counts in this process's memory while the shared cache is unreachable."""

    cache: Any

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]  # a mixin
        except CACHE_ERRORS:
            logger.warning("throttle cache unavailable; counting in this process", exc_info=True)
            self.cache = _LOCAL
            return super().allow_request(request, view)  # type: ignore[misc]  # a mixin


class AddressRateThrottle(_FailOpenToLocal, ScopedRateThrottle):
    """The view's ``throttle_scope`` budget per client address."""


class UsernameRateThrottle(_FailOpenToLocal, SimpleRateThrottle):
    """Sign-in attempts per username (``auth_user``), whatever address they come from."""

    scope = "auth_user"

    def get_cache_key(self, request, view) -> str | None:
        data = request.data if isinstance(request.data, dict) else {}
        username = data.get("username")
        if not isinstance(username, str) or not username:
            return None  # nothing to count against; the address budget still applies
        digest = hashlib.sha256(username.strip().casefold().encode("utf-8", "replace")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}
