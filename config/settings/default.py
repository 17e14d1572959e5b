"""Settings read from the environment (12-factor).

Development defaults need nothing installed: PostgreSQL is the embedded server ``make run`` and
``make test`` start (``config/devservers.py``), tasks run in-process, the cache is in memory.
Production is ``DEBUG=0`` with ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` and
``REDIS_URL`` set; :func:`_require` fails loudly at start-up when one is missing.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config import devservers

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")
    return value


# Off unless the environment turns it on (`make run` and the test settings do).
DEBUG = _env_bool("DEBUG", default=False)

LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
if DEBUG:
    SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-insecure-key-do-not-use-in-production"
    ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", ",".join(LOCAL_HOSTS))
    if not os.environ.get("SECRET_KEY") and set(ALLOWED_HOSTS) - set(LOCAL_HOSTS):
        # Serving real hosts with the public development key would let anyone forge tokens.
        raise ImproperlyConfigured("SECRET_KEY must be set to serve hosts other than localhost.")
else:
    SECRET_KEY = _require("SECRET_KEY")
    ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
    # Production runs on PostgreSQL with a Redis broker, never on the development fallbacks.
    _require("DATABASE_URL")
    _require("REDIS_URL")

CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # The staff console's theme (before django.contrib.admin, whose templates it replaces).
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.import_export",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "import_export",
    "django_prometheus",
    "loyalty.apps.AxesConfig",  # django-axes, its name translated
    "loyalty",
    "members",
    "points",
    "rewards",
    "events",
    "insights",
]

# Sign-in attempts are counted first (django-axes: locked out per username and per client
# address after AXES_FAILURE_LIMIT failures, for AXES_COOLOFF_MINUTES); then Django's model
# permissions, read in one query per request instead of two.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "loyalty.auth_backends.ModelPermissionsBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Proxies in front of the app: the client address is taken this many hops from the right of
# X-Forwarded-For, so a client cannot pick its own address (throttles and lockouts alike).
NUM_PROXIES = int(os.environ.get("NUM_PROXIES", "0" if DEBUG else "1"))
AXES_IPWARE_PROXY_COUNT = NUM_PROXIES

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # request latency, first and last
    "loyalty.observability.RequestIdMiddleware",  # every log line of a request names it
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "loyalty.middleware.ConsoleTimeZoneMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# /metrics answers a scraper that sends "Authorization: Bearer $METRICS_TOKEN" (insights.metrics).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project templates first: they override the theme's (the console's home, error pages).
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The staff console (django-unfold): branded, with a language switch, and "View site" leading
# to the console's own home rather than to a page the service does not have.
UNFOLD = {
    "SITE_TITLE": _("Loyalty console"),
    "SITE_HEADER": _("Loyalty console"),
    "SITE_SUBHEADER": _("Membership and rewards"),
    "SITE_SYMBOL": "loyalty",
    "SITE_URL": "/admin/",
    "SHOW_VIEW_ON_SITE": False,
    "SHOW_LANGUAGES": True,
    "SHOW_BACK_BUTTON": True,
    "SIDEBAR": {"show_search": True, "show_all_applications": True},
    # A bank's blue instead of the theme's purple.
    "COLORS": {
        "primary": {
            "50": "oklch(97% .014 254.604)",
            "100": "oklch(93.2% .032 255.585)",
            "200": "oklch(88.2% .059 254.128)",
            "300": "oklch(80.9% .105 251.813)",
            "400": "oklch(70.7% .165 254.624)",
            "500": "oklch(62.3% .214 259.815)",
            "600": "oklch(54.6% .245 262.881)",
            "700": "oklch(48.8% .243 264.376)",
            "800": "oklch(42.4% .199 265.638)",
            "900": "oklch(37.9% .146 265.522)",
            "950": "oklch(28.2% .091 267.935)",
        },
    },
    "DASHBOARD_CALLBACK": "insights.dashboard.dashboard_callback",
}
# Export needs the model's view permission, import its add permission.
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"

# PostgreSQL only: the ledger, tier evaluation and the integrity checks are PostgreSQL SQL.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or devservers.PG_URL,
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://...).")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalisation: English and Simplified Chinese, negotiated from Accept-Language.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
# The project's catalogue, then the console theme's zh-hans (the theme ships none).
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_theme"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
# The bank's calendar: where a day matters (expiry dates, daily caps, monthly runs).
BUSINESS_TIME_ZONE = os.environ.get("BUSINESS_TIME_ZONE", "Asia/Shanghai")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploads (reward images). The app serves them itself only with DEBUG=1; in production the proxy
# (or a bucket mounted there) serves MEDIA_ROOT at MEDIA_URL.
MEDIA_URL = os.environ.get("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
# WhiteNoise serves the admin's and the API docs' assets from STATIC_ROOT (after collectstatic),
# so a production process needs no separate static file server.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Caches: Redis when configured, else process memory. The cache lives in its own Redis database
# (CACHE_URL, by default the broker's database + 1) so clearing it never drops queued tasks.
REDIS_URL = os.environ.get("REDIS_URL", "")


def _next_redis_db(url: str) -> str:
    base, _, db = url.rpartition("/")
    if base.count("/") >= 2 and db.isdigit():
        return f"{base}/{int(db) + 1}"
    return url.rstrip("/") + "/1"


CACHE_URL = os.environ.get("CACHE_URL") or (_next_redis_db(REDIS_URL) if REDIS_URL else "")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "loyalty"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis broker with at-least-once delivery; eager in-process without REDIS_URL.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
# Longer than any task may run, so Redis never re-delivers a message that is still being worked on.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": int(os.environ.get("CELERY_BROKER_VISIBILITY_TIMEOUT", "7200"))
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A tier evaluation task stops taking chunks after this many seconds and re-enqueues itself.
TIER_EVALUATION_TIME_BUDGET = int(os.environ.get("TIER_EVALUATION_TIME_BUDGET", "600"))
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")

# Points consumer: inbox rows per database transaction, batches per task, sweeper delay.
POINTS_CONSUMER_BATCH_SIZE = int(os.environ.get("POINTS_CONSUMER_BATCH_SIZE", "1000"))
POINTS_CONSUMER_MAX_BATCHES = int(os.environ.get("POINTS_CONSUMER_MAX_BATCHES", "20"))
# The sweep task (beat, every 30 s) wakes the consumer for rows pending longer than this.
POINTS_SWEEP_AFTER_SECONDS = int(os.environ.get("POINTS_SWEEP_AFTER_SECONDS", "30"))

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["members.authentication.LoyaltyJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["loyalty.api.parsers.DecimalJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "loyalty.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "loyalty.api.exceptions.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Sign-in attempts and token refreshes are counted apart: failed sign-ins from a client must
    # not lock its apps out of refreshing the tokens they hold.
    "DEFAULT_THROTTLE_RATES": {
        # Per client address: a gateway's address carries many users, so it is generous;
        # per username: one account's guesses, from wherever they come.
        "auth": os.environ.get("THROTTLE_AUTH_RATE", "300/minute"),
        "auth_user": os.environ.get("THROTTLE_AUTH_USER_RATE", "10/minute"),
        "auth_refresh": os.environ.get("THROTTLE_REFRESH_RATE", "120/minute"),
    },
    "UNAUTHENTICATED_USER": None,
    # Proxies in front of the app: the client address for throttling is taken this many hops
    # from the right of X-Forwarded-For, so a client cannot pick its own address.
    "NUM_PROXIES": NUM_PROXIES,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "15"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=int(os.environ.get("JWT_REFRESH_HOURS", "24"))),
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY") or SECRET_KEY,
    "UPDATE_LAST_LOGIN": False,
    # Staff and service tokens carry a hash of the password they were issued under: a password
    # change refuses them at once (deactivation already does: inactive users are refused).
    "CHECK_REVOKE_TOKEN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Bank loyalty and membership API",
    "DESCRIPTION": "Tiers, points, rewards, events and KPIs. Errors are RFC 9457 problem details.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request and response bodies are separate components, so a response lists every field it
    # always carries as required (read-only ones by spectacular, the rest by the hook below).
    "COMPONENT_SPLIT_REQUEST": True,
    # Error responses, required response members and required PUT bodies: loyalty.api.schema.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "loyalty.api.schema.problem_responses_hook",
    ],
    # Several resources have a "status": give each its own, stable enum name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "MemberStatusEnum": "members.models.Member.Status",
        "GenderEnum": "members.models.Member.Gender",
        "RiskLevelEnum": "members.models.Member.RiskLevel",
        "AdjustmentStatusEnum": "points.models.Adjustment.Status",
        "TransactionStatusEnum": "points.models.Transaction.Status",
        "EventStatusEnum": "events.models.Event.Status",
        "InvitationStatusEnum": "events.models.Invitation.Status",
        "EventKindEnum": "events.models.EventKind",
        "RecommendationTypeEnum": "insights.models.Recommendation.ItemType",
        "TypeEnum": "points.models.TransactionType",
    },
}

# Request size: a batch of 1,000 items fits well under this; larger bodies answer 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(
    os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(5 * 1024 * 1024))
)

# Idempotency-Key records are kept this many days; a key reused later is a new request.
IDEMPOTENCY_RETENTION_DAYS = int(os.environ.get("IDEMPOTENCY_RETENTION_DAYS", "7"))

# Security. TLS terminates at the proxy, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# JSON lines in production (one object per line, with the request id a request and the tasks
# it enqueued share: loyalty.observability), plain lines for a person at a terminal.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "loyalty.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in ("plain", "json") else "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
MESSAGE_CHANNEL = os.environ.get("MESSAGE_CHANNEL", "log")
