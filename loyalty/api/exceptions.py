"""RFC 9457 problem details for every error the API can answer.

Domain errors (:class:`loyalty.errors.LoyaltyError`), DRF's own exceptions and Django's
``Http404``, ``PermissionDenied`` and ``ValidationError`` all come out as
``application/problem+json`` with a stable ``code`` and a translated ``detail``. A database that
cannot be reached (or drops the connection mid-request) is 503 ``database_unavailable`` with
``Retry-After``: the client may try again, and nothing was half-written (each write is one
transaction).
"""

import logging
import sys
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.encoding import force_str
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework_simplejwt.exceptions import InvalidToken

from loyalty.errors import LoyaltyError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:loyalty:problem:"

# DRF's exception classes -> our stable codes (DRF's default codes, made explicit here so a
# DRF upgrade cannot rename them under the apps).
_DRF_CODES: list[tuple[type[drf.APIException], str]] = [
    (drf.ValidationError, "validation_error"),
    (drf.ParseError, "parse_error"),
    (drf.NotAuthenticated, "not_authenticated"),
    # An expired or forged JWT: the app should refresh or sign in again.
    (InvalidToken, "token_not_valid"),
    (drf.AuthenticationFailed, "authentication_failed"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
]


# Seconds a client is asked to wait when the database is away.
DATABASE_RETRY_AFTER = 5
_DATABASE_UNAVAILABLE = gettext_lazy(
    "The service is briefly unavailable. Please try again shortly."
)

# Authentication failures whose own code tells the app what to do next.
_KEPT_AUTH_CODES = {"member_inactive"}


def problem(
    *, status: int, code: str, detail: Any, errors: list[dict] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": force_str(detail),
        "code": code,
    }
    if errors:
        body["errors"] = errors
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def flatten_errors(details: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Serializer errors (nested dicts and lists) as ``[{field, code, detail}]``.

    Nested fields are joined with dots: ``snapshots.3.as_of``.
    """
    if isinstance(details, dict) and "message" in details and "code" in details:
        return [
            {
                "field": prefix or None,
                "code": str(details["code"]),
                "detail": force_str(details["message"]),
            }
        ]
    errors: list[dict[str, Any]] = []
    if isinstance(details, dict):
        for key, value in details.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            errors.extend(
                flatten_errors(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
            )
    elif isinstance(details, list):
        for index, value in enumerate(details):
            # Lists of messages belong to the field; lists of objects are indexed items.
            child = (
                f"{prefix}.{index}"
                if isinstance(value, dict) and "message" not in value
                else prefix
            )
            errors.extend(flatten_errors(value, child))
    return errors


def _api_exception_problem(exc: drf.APIException) -> tuple[int, dict[str, Any]]:
    status = exc.status_code
    code = next((code for cls, code in _DRF_CODES if isinstance(exc, cls)), None)
    detail: Any
    if isinstance(exc, drf.ValidationError):
        errors = flatten_errors(exc.get_full_details())
        detail = _("The request has invalid fields.")
        if len(errors) == 1 and errors[0]["field"] is None:
            detail = errors[0]["detail"]
        return status, problem(status=status, code="validation_error", detail=detail, errors=errors)
    # simplejwt puts its message and code in a dict: {"detail": ..., "code": ...}.
    detail = exc.detail.get("detail") if isinstance(exc.detail, dict) else exc.detail
    own_code = exc.detail.get("code") if isinstance(exc.detail, dict) else None
    if own_code is not None and str(own_code) in _KEPT_AUTH_CODES:
        code = str(own_code)
    if code is None:
        detail_code = exc.get_codes()
        code = detail_code if isinstance(detail_code, str) else exc.default_code
    if not isinstance(detail, str):
        detail = exc.default_detail
    return status, problem(status=status, code=code, detail=detail)


def _to_known(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return drf.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return drf.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return drf.ValidationError(as_serializer_error(exc))
    if isinstance(exc, RequestDataTooBig):
        return _PayloadTooLarge()
    return exc


class _PayloadTooLarge(drf.APIException):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = "Request body too large."


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _to_known(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, LoyaltyError):
        status = exc.status
        body = problem(status=status, code=exc.code, detail=exc.detail, **exc.extra)
    elif isinstance(exc, drf.APIException):
        status, body = _api_exception_problem(exc)
        if isinstance(exc, _PayloadTooLarge):
            body["detail"] = _("The request body is too large.")
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]  # getattr above
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]  # getattr above
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", exc)
        status = 503
        body = problem(status=503, code="database_unavailable", detail=_DATABASE_UNAVAILABLE)
        headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    else:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        status = 500
        body = problem(status=500, code="server_error", detail=_("An unexpected error occurred."))
    request = context.get("request")
    if request is not None:
        # A problem is JSON whatever renderer the request negotiated (the browsable API's HTML
        # with DEBUG on, say): the response's Content-Type says application/problem+json.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_response(*, status: int, code: str, detail: str) -> JsonResponse:
    """A problem response outside DRF (URL not found, server error, health checks)."""
    return JsonResponse(
        problem(status=status, code=code, detail=detail),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        json_dumps_params={"ensure_ascii": False},
    )


def handler400(request, exception=None):
    return problem_response(status=400, code="bad_request", detail=_("Bad request."))


def handler403(request, exception=None):
    return problem_response(
        status=403,
        code="permission_denied",
        detail=_("You do not have permission to perform this action."),
    )


def handler404(request, exception=None):
    return problem_response(status=404, code="not_found", detail=_("Not found."))


@csrf_exempt  # any method reaches it; there is nothing to protect
def api_not_found(request, *args, **kwargs):
    """The last route under ``/api/``: a path no API view answers is a 404 problem, with DEBUG
    on too (Django's debug page would answer HTML), for any method. Being a route, it also keeps
    ``APPEND_SLASH`` from redirecting (or, with DEBUG on, failing on) a POST that left out the
    trailing slash: that answer says where the slash goes instead."""
    detail = _("Not found.")
    if not request.path_info.endswith("/"):
        try:
            match = resolve(f"{request.path_info}/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            detail = _("Not found. API paths end with a slash: %(path)s") % {
                "path": f"{request.path}/"
            }
    return problem_response(status=404, code="not_found", detail=detail)


def handler500(request):
    """Django's last resort. A database that went away outside a view (in a middleware, say)
    is the same 503 ``database_unavailable`` the views answer, never a 500."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        response = problem_response(
            status=503, code="database_unavailable", detail=_DATABASE_UNAVAILABLE
        )
        response["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response
    return problem_response(
        status=500, code="server_error", detail=_("An unexpected error occurred.")
    )
