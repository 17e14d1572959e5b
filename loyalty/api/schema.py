"""Names for the serializers a view nests, as the OpenAPI schema shows them.

Every view nests its own ``InputSerializer`` and ``OutputSerializer``, so their class names
repeat across views; drf-spectacular would give them all the component ``Input``/``Output``
and warn about the collision. :func:`nested_components` names each one after its view instead
(``TierEvaluateApi.InputSerializer`` is ``TierEvaluateInput``). A nested name that only points
at a shared serializer (``OutputSerializer = AdjustmentOutputSerializer``) keeps the shared
one's own name.
"""

import re
from http import HTTPStatus
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.core.validators import RegexValidator
from drf_spectacular.extensions import (
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
    OpenApiViewExtension,
)
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated

from loyalty.api.batch import BatchErrorSerializer
from loyalty.api.exceptions import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX
from loyalty.errors import LoyaltyError

View = TypeVar("View", bound=type)


def nested_components(view: View) -> View:
    """Class decorator: name the serializers declared in ``view``'s body ``<View><Kind>``
    (``Api`` and a leading ``_`` dropped from the view's name, ``Serializer`` from the
    nested one's)."""
    prefix = view.__name__.lstrip("_").removesuffix("Api")
    for attribute, value in vars(view).items():
        if (
            isinstance(value, type)
            and issubclass(value, serializers.BaseSerializer)
            and value.__qualname__ == f"{view.__qualname__}.{attribute}"
        ):
            kind = attribute.removesuffix("Serializer")
            extend_schema_serializer(component_name=f"{prefix}{kind}")(value)
    return view


# --- Errors: every error is a Problem -------------------------------------------------------
#
# Each operation documents the error statuses it can answer, each as ``application/problem+json``
# with the ``Problem`` component and a description naming the possible ``code`` values. The
# statuses every view shares are added here by :func:`problem_responses_hook`, from what the
# view is (its body, query filters, path ids, authentication, permission and throttle classes);
# a view adds its domain errors (409, 422, a body's 404...) with :func:`problems` in its own
# ``extend_schema(responses=...)``, and the hook merges the shared codes into those.


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, the body of every error (``application/problem+json``).
    ``code`` is stable; ``detail`` is translated. Validation errors list each failing field
    under ``errors``; some codes add their own members (``run_id``, ``limit``)."""

    # For the schema only: loyalty.api.exceptions builds the bodies.

    type = serializers.CharField(
        help_text="``urn:loyalty:problem:`` followed by the code.",
        validators=[RegexValidator(rf"^{PROBLEM_TYPE_PREFIX}[a-z0-9_]+$")],
    )
    title = serializers.CharField(help_text="The status's reason phrase.")
    status = serializers.IntegerField(min_value=400, max_value=599)
    detail = serializers.CharField(help_text="What went wrong, in the request's language.")
    code = serializers.CharField(help_text="Stable: the status's description lists them.")
    errors = BatchErrorSerializer(  # type: ignore[assignment]  # a field named like Serializer.errors
        many=True,
        required=False,
        help_text="``validation_error`` only: one item per failing field.",
    )
    run_id = serializers.CharField(
        required=False, help_text="``evaluation_running``: the run already queued or running."
    )
    limit = serializers.IntegerField(
        required=False, help_text="``batch_too_large``: the most items a batch may hold."
    )


PROBLEM_COMPONENT = "Problem"
# Components whose members vary by response: not every property is required (a segment's rule
# holds the keys it was given, members.segments).
_OPTIONAL_MEMBERS = {PROBLEM_COMPONENT, "SegmentRule"}
_CODES_INTRO = "`code` is one of:"
_CODE = re.compile(r"`([a-z0-9_]+)`")

ErrorSpec = type[LoyaltyError] | tuple[int, str]


def problems(*errors: ErrorSpec) -> dict[tuple[int, str], OpenApiResponse]:
    """The error responses of ``errors`` (``LoyaltyError`` classes, or ``(status, code)`` for
    DRF's own), grouped by status, for an ``extend_schema(responses={...})``:
    ``responses={201: Output, **problems(MemberInactive, IdempotencyConflict)}``."""
    codes: dict[int, list[str]] = {}
    for error in errors:
        status, code = error if isinstance(error, tuple) else (error.status, error.code)
        if code not in codes.setdefault(status, []):
            codes[status].append(code)
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            ProblemSerializer, description=_problem_description(status, listed)
        )
        for status, listed in sorted(codes.items())
    }


def _problem_description(status: int, codes: list[str]) -> str:
    return f"{HTTPStatus(status).phrase}. {_CODES_INTRO} " + ", ".join(f"`{c}`" for c in codes)


def _described_codes(description: str) -> list[str]:
    return _CODE.findall(description.partition(_CODES_INTRO)[2])


# Query parameters that page or order a list. An invalid ``ordering`` is ignored; the paging ones
# answer 400 with their own code (loyalty.api.pagination); a page past the last one is 404.
_PAGING_PARAMETERS = {"page", "page_size", "cursor", "ordering"}
_PAGING_CODES = {
    "page": "invalid_page",
    "cursor": "invalid_cursor",
    "page_size": "invalid_page_size",
}
_UNCHECKED_PERMISSIONS = (AllowAny, IsAuthenticated)
_401_CODES = ["not_authenticated", "authentication_failed", "token_not_valid", "member_inactive"]


def _shared_errors(operation: dict[str, Any], view: type | None) -> dict[int, list[str]]:
    """The statuses (and their codes) ``operation`` answers whatever its view does."""
    parameters = operation.get("parameters", [])
    query = {p["name"] for p in parameters if p["in"] == "query"}
    has_body = "requestBody" in operation
    codes: dict[int, list[str]] = {}
    if has_body:
        codes[400] = ["validation_error", "parse_error"]
    elif query - _PAGING_PARAMETERS:
        codes[400] = ["validation_error"]  # a filter's value is invalid
    paging = [code for name, code in _PAGING_CODES.items() if name in query]
    if paging:
        codes.setdefault(400, []).extend(paging)
    if any(requirement for requirement in operation.get("security", [])):
        codes[401] = list(_401_CODES)
    permissions = getattr(view, "permission_classes", ())
    if any(not issubclass(cls, _UNCHECKED_PERMISSIONS) for cls in permissions):
        codes[403] = ["permission_denied"]
    if any(p["in"] == "path" for p in parameters) or "page" in query:
        codes[404] = ["not_found"]  # the path's resource, or a page past the end
    if has_body:
        codes[413] = ["payload_too_large"]
        codes[415] = ["unsupported_media_type"]
    if getattr(view, "throttle_classes", ()):
        codes[429] = ["throttled"]
    codes[503] = ["database_unavailable"]  # any operation, while the database is away
    return codes


_HEADERS = {
    503: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "description": "Seconds to wait before trying again.",
        }
    },
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": "The scheme to authenticate with (``Bearer``).",
        }
    },
    429: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "description": "Seconds to wait before trying again.",
        }
    },
}


def _problem_response(status: int, codes: list[str]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _problem_description(status, codes),
        "content": {
            PROBLEM_CONTENT_TYPE: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_COMPONENT}"}}
        },
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def _refs(node: Any) -> set[str]:
    """The names of the schema components ``node`` references, directly."""
    if isinstance(node, dict):
        found = set()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*map(_refs, node)) if node else set()
    return set()


def _closure(names: set[str], schemas: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]))
    return seen


def problem_responses_hook(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``): the error
    responses every operation shares, the members every response carries marked required,
    and a ``PUT``'s body required."""
    schemas = result.get("components", {}).get("schemas", {})
    if PROBLEM_COMPONENT not in schemas:
        raise ImproperlyConfigured(
            "No operation references ProblemSerializer, so the schema has no Problem component."
        )
    views = {
        (path, method.lower()): callback.cls
        for path, _regex, method, callback in (generator.endpoints or [])
    }
    request_refs: set[str] = set()
    response_refs: set[str] = set()
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if method == "put" and "requestBody" in operation:
                operation["requestBody"]["required"] = True
            responses = operation["responses"]
            for status, codes in _shared_errors(operation, views.get((path, method))).items():
                existing = responses.get(str(status))
                if existing is None:
                    responses[str(status)] = _problem_response(status, codes)
                    continue
                declared = _described_codes(existing.get("description", ""))
                merged = [*codes, *(code for code in declared if code not in codes)]
                existing["description"] = _problem_description(status, merged)
                if status in _HEADERS:
                    existing.setdefault("headers", _HEADERS[status])
            operation["responses"] = dict(sorted(responses.items()))
            request_refs |= _refs(operation.get("requestBody")) | _refs(operation.get("parameters"))
            response_refs |= _refs(operation["responses"])
    # DRF renders every readable field of a serializer (a missing value falls back to the
    # field's default or null), so a response component lists all its properties as required.
    response_only = _closure(response_refs, schemas) - _closure(request_refs, schemas)
    for name in response_only - _OPTIONAL_MEMBERS:
        properties = schemas[name].get("properties")
        if properties:
            schemas[name]["required"] = sorted(properties)
    return result


# --- Request bodies that refuse unknown fields -----------------------------------------------


class StrictSerializerExtension(OpenApiSerializerExtension):
    """A :class:`~loyalty.api.serializers.StrictSerializer` body refuses fields it does not
    declare (400 ``unknown_field``): the schema says so with ``additionalProperties: false``."""

    target_class = "loyalty.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


class MoneyFieldExtension(OpenApiSerializerFieldExtension):
    """An amount of money: a decimal string matching the field's own pattern."""

    target_class = "loyalty.api.serializers.MoneyField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "format": "decimal", "pattern": self.target.pattern}


# --- The token views (loyalty.api.views), described from here --------------------------------


class TokenObtainOutputSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="A JWT access token (``Authorization: Bearer``).")
    refresh = serializers.CharField(help_text="A JWT refresh token for ``auth/token/refresh/``.")


class TokenRefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(help_text="A refresh token from ``auth/token/``.")


class TokenRefreshOutputSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="A new JWT access token.")


class TokenObtainSchema(OpenApiViewExtension):
    """Wrong credentials answer 401 ``authentication_failed``."""

    target_class = "loyalty.api.views.TokenObtainApi"

    def view_replacement(self):
        return extend_schema_view(
            post=extend_schema(
                responses={
                    200: TokenObtainOutputSerializer,
                    **problems((401, "authentication_failed")),
                }
            )
        )(_subclass(self.target))


class TokenRefreshSchema(OpenApiViewExtension):
    """The refresh answers ``{access}`` only (refresh tokens are not rotated), and an expired
    or forged refresh token answers 401 ``token_not_valid``."""

    target_class = "loyalty.api.views.TokenRefreshApi"

    def view_replacement(self):
        return extend_schema_view(
            post=extend_schema(
                request=TokenRefreshInputSerializer,
                responses={
                    200: TokenRefreshOutputSerializer,
                    **problems((401, "token_not_valid")),
                },
            )
        )(_subclass(self.target))


# ``str.isprintable()`` over a header's Latin-1 characters: not the controls, NBSP or SHY.
_PRINTABLE_HEADER = r"^[\x20-\x7E\xA1-\xAC\xAE-\xFF]+$"

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _PRINTABLE_HEADER},
    OpenApiParameter.HEADER,
    description=(
        "1 to 255 printable characters. A retry with the same key and body gets the first "
        "response back (header ``Idempotent-Replayed: true``); the same key with another body "
        "answers 409 ``idempotency_conflict``."
    ),
)
# Where the key is required (400 ``idempotency_key_required`` without it).
IDEMPOTENCY_KEY_REQUIRED = OpenApiParameter(
    IDEMPOTENCY_KEY.name,
    IDEMPOTENCY_KEY.type,
    IDEMPOTENCY_KEY.location,
    required=True,
    description=IDEMPOTENCY_KEY.description,
)


def _subclass(view: type) -> type:
    """A copy of ``view`` to annotate, so the view itself (serving requests) stays as it is."""
    return type(view.__name__, (view,), {"__doc__": view.__doc__, "__module__": view.__module__})
