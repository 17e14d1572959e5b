"""The service's own production checks, run by ``manage.py check --deploy``.

Each check is registered with ``deploy=True`` (from ``LoyaltyConfig.ready``), so it runs only in
a deploy check, and reports an :class:`~django.core.checks.Error` with a stable id that says
what to set:

* ``loyalty.E001``: ``ALLOWED_HOSTS`` holds no wildcard (``*`` or a pattern containing one),
  since a wildcard lets any ``Host`` header through (poisoned links, cache keys).
* ``loyalty.E002``: the JWT signing key (``SIMPLE_JWT["SIGNING_KEY"]``, from ``JWT_SIGNING_KEY``
  or else ``SECRET_KEY``) is at least :data:`JWT_SIGNING_KEY_MIN_LENGTH` characters, so tokens
  cannot be forged by guessing it.
* ``loyalty.E003``: every database is PostgreSQL; the ledger's triggers, the tier evaluation
  and the integrity checks are PostgreSQL SQL.
"""

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.translation import gettext as _

JWT_SIGNING_KEY_MIN_LENGTH = 32
POSTGRESQL_ENGINE = "django.db.backends.postgresql"


def allowed_hosts_no_wildcard(app_configs: Sequence[Any] | None = None, **kwargs: Any):
    wildcards = [host for host in settings.ALLOWED_HOSTS if "*" in host]
    if not wildcards:
        return []
    return [
        checks.Error(
            _("ALLOWED_HOSTS contains a wildcard: %(hosts)s.") % {"hosts": ", ".join(wildcards)},
            hint=_("Set ALLOWED_HOSTS to the service's own host names, comma-separated."),
            id="loyalty.E001",
        )
    ]


def jwt_signing_key_long(app_configs: Sequence[Any] | None = None, **kwargs: Any):
    key = getattr(settings, "SIMPLE_JWT", {}).get("SIGNING_KEY") or settings.SECRET_KEY
    if len(str(key)) >= JWT_SIGNING_KEY_MIN_LENGTH:
        return []
    return [
        checks.Error(
            _("The JWT signing key is shorter than %(length)d characters.")
            % {"length": JWT_SIGNING_KEY_MIN_LENGTH},
            hint=_(
                "Set JWT_SIGNING_KEY (or SECRET_KEY, which it defaults to) to a random value of "
                "at least %(length)d characters."
            )
            % {"length": JWT_SIGNING_KEY_MIN_LENGTH},
            id="loyalty.E002",
        )
    ]


def database_postgresql(app_configs: Sequence[Any] | None = None, **kwargs: Any):
    return [
        checks.Error(
            _("Database %(alias)s uses %(engine)s, not PostgreSQL.")
            % {"alias": alias, "engine": database.get("ENGINE", "")},
            hint=_("Set DATABASE_URL to a PostgreSQL database (postgres://...)."),
            id="loyalty.E003",
        )
        for alias, database in settings.DATABASES.items()
        if database.get("ENGINE") != POSTGRESQL_ENGINE
    ]


def deploy_checks_register() -> None:
    for check in (allowed_hosts_no_wildcard, jwt_signing_key_long, database_postgresql):
        checks.register(check, checks.Tags.security, deploy=True)
