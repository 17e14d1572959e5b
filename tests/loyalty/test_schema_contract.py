"""The OpenAPI schema is a contract a generated client can trust: every error is a documented
Problem, bodies and items are typed with the constraints the server enforces, and what every
response carries is required. Real responses are checked against it too."""

import re

import jsonschema
import openapi_spec_validator
import pytest
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.validation import validate_schema

from loyalty.api.exceptions import PROBLEM_CONTENT_TYPE
from loyalty.errors import LoyaltyError
from members.models import customer_no_validator
from tests.factories import MemberFactory

METHODS = {"get", "post", "put", "patch", "delete"}
PROBLEM_REF = "#/components/schemas/Problem"
CUSTOMER_NO_PATTERN = customer_no_validator.regex.pattern  # type: ignore[union-attr]  # compiled


@pytest.fixture(scope="module")
def schema() -> dict:
    generator = spectacular_settings.DEFAULT_GENERATOR_CLASS()
    return generator.get_schema(request=None, public=True)


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                yield method, path, operation


def _operation(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][path][method]


def _component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _body(schema: dict, method: str, path: str) -> dict:
    body = _operation(schema, method, path)["requestBody"]
    return _component(schema, body["content"]["application/json"]["schema"]["$ref"])


def _codes(response: dict) -> list[str]:
    return re.findall(r"`([a-z0-9_]+)`", response["description"].partition("one of:")[2])


def _errors(schema: dict, method: str, path: str) -> dict[int, list[str]]:
    responses = _operation(schema, method, path)["responses"]
    return {int(status): _codes(r) for status, r in responses.items() if int(status) >= 400}


# --- The document ------------------------------------------------------------------------------


def test_the_schema_is_valid_openapi(schema):
    validate_schema(schema)  # the OpenAPI 3.0 JSON Schema, shipped with drf-spectacular


def test_the_schema_passes_openapi_spec_validator(schema):
    openapi_spec_validator.validate(schema)


# --- Errors ------------------------------------------------------------------------------------


def test_every_operation_documents_its_errors_as_problems(schema):
    for method, path, operation in _operations(schema):
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert errors, (method, path)
        for status, response in errors.items():
            assert response["content"] == {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
            assert _codes(response), (method, path, status)


def test_the_problem_component_is_what_the_exception_handler_answers(schema):
    problem = _component(schema, PROBLEM_REF)
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert problem["properties"]["status"]["type"] == "integer"
    errors = problem["properties"]["errors"]
    assert errors["type"] == "array"
    field_error = _component(schema, errors["items"]["$ref"])
    assert set(field_error["required"]) == {"field", "code", "detail"}
    assert field_error["properties"]["field"]["nullable"] is True
    # A batch's rejected items hold the same errors.
    rejection = schema["components"]["schemas"]["BatchRejection"]
    assert set(rejection["required"]) == {"index", "errors"}
    assert rejection["properties"]["errors"]["items"] == errors["items"]


def test_authenticated_operations_document_401(schema):
    authenticated = 0
    for method, path, operation in _operations(schema):
        if any(operation.get("security", [])):
            authenticated += 1
            assert "401" in operation["responses"], (method, path)
            assert "not_authenticated" in _codes(operation["responses"]["401"])
    assert authenticated > 20


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        # The sign-in endpoints: no token needed, but wrong credentials and throttling.
        ("post", "/api/v1/auth/token/", {400, 401, 413, 415, 429, 503}),
        ("post", "/api/v1/auth/token/refresh/", {400, 401, 413, 415, 429, 503}),
        # Any authenticated caller, paged, no filter: 400 for a bad page, no 403.
        ("get", "/api/v1/tiers/", {400, 401, 404, 503}),
        # Members only, nothing in the path or query.
        ("get", "/api/v1/me/", {401, 403, 503}),
        ("get", "/api/v1/members/{customer_no}/", {401, 403, 404, 503}),
        ("put", "/api/v1/members/{customer_no}/", {400, 401, 403, 404, 409, 413, 415, 503}),
        ("post", "/api/v1/ingest/transactions/", {400, 401, 403, 413, 415, 503}),
        ("post", "/api/v1/ingest/asset-snapshots/", {400, 401, 403, 409, 413, 415, 503}),
        ("post", "/api/v1/me/messages/{message_id}/read/", {401, 403, 404, 503}),
        (
            "post",
            "/api/v1/points/adjustments/{adjustment_id}/approve/",
            {400, 401, 403, 404, 409, 413, 415, 422, 503},
        ),
        (
            "post",
            "/api/v1/points/adjustments/{adjustment_id}/reject/",
            {400, 401, 403, 404, 409, 413, 415, 503},
        ),
        ("post", "/api/v1/tiers/evaluate/", {400, 401, 403, 409, 413, 415, 503}),
    ],
)
def test_each_operation_documents_the_statuses_it_can_answer(schema, method, path, expected):
    # 503: any operation, while the database is away.
    assert set(_errors(schema, method, path)) == expected


@pytest.mark.parametrize(
    ("method", "path", "status", "codes"),
    [
        ("post", "/api/v1/auth/member-token/", 409, ["member_inactive"]),
        ("post", "/api/v1/auth/member-token/", 404, ["not_found"]),
        ("put", "/api/v1/members/{customer_no}/", 409, ["member_closed"]),
        ("post", "/api/v1/ingest/asset-snapshots/", 409, ["idempotency_conflict"]),
        (
            "post",
            "/api/v1/ingest/transactions/",
            413,
            ["payload_too_large", "batch_too_large"],
        ),
        (
            "post",
            "/api/v1/points/adjustments/",
            409,
            ["member_inactive", "idempotency_conflict"],
        ),
        (
            "post",
            "/api/v1/points/adjustments/{adjustment_id}/approve/",
            422,
            ["insufficient_points"],
        ),
        (
            "post",
            "/api/v1/points/adjustments/{adjustment_id}/approve/",
            403,
            ["permission_denied", "four_eyes_required"],
        ),
        ("post", "/api/v1/tiers/evaluate/", 409, ["evaluation_running", "no_active_tiers"]),
        ("post", "/api/v1/tiers/simulate/", 409, ["no_active_tiers"]),
        ("post", "/api/v1/tiers/overrides/", 409, ["member_closed", "override_pending"]),
        (
            "post",
            "/api/v1/tiers/overrides/{override_id}/approve/",
            409,
            ["override_not_pending", "override_expired", "member_closed"],
        ),
        ("post", "/api/v1/tiers/overrides/{override_id}/reject/", 409, ["override_not_pending"]),
        ("post", "/api/v1/auth/token/", 429, ["throttled"]),
    ],
)
def test_domain_errors_are_documented_with_their_codes(schema, method, path, status, codes):
    assert _errors(schema, method, path)[status] == codes


def _error_classes(cls: type[LoyaltyError]) -> list[type[LoyaltyError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _error_classes(child))]


def test_every_documented_domain_code_is_under_its_own_status(schema):
    statuses = {error.code: error.status for error in _error_classes(LoyaltyError)}
    for method, path, _ in _operations(schema):
        for status, codes in _errors(schema, method, path).items():
            for code in codes:
                # member_inactive is also the 401 of a frozen or closed member's token.
                if code in statuses and status != 401:
                    assert statuses[code] == status, (method, path, code)


def test_only_the_throttled_endpoints_document_429(schema):
    throttled = {(m, p) for m, p, o in _operations(schema) if "429" in o["responses"]}
    assert throttled == {("post", "/api/v1/auth/token/"), ("post", "/api/v1/auth/token/refresh/")}
    retry_after = _operation(schema, "post", "/api/v1/auth/token/")["responses"]["429"]
    assert "Retry-After" in retry_after["headers"]


# --- Bodies and items --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key", "item_fields"),
    [
        (
            "/api/v1/ingest/transactions/",
            "transactions",
            {"external_id", "customer_no", "type", "amount", "occurred_at", "channel"},
        ),
        ("/api/v1/ingest/asset-snapshots/", "snapshots", {"customer_no", "as_of"}),
    ],
)
def test_batch_bodies_have_typed_items_and_size_limits(schema, path, key, item_fields):
    operation = _operation(schema, "post", path)
    assert operation["requestBody"]["required"] is True
    body = _body(schema, "post", path)
    assert body["required"] == [key]
    items = body["properties"][key]
    assert (items["minItems"], items["maxItems"]) == (1, 1000)
    item = _component(schema, items["items"]["$ref"])
    assert set(item["required"]) == item_fields
    assert item["properties"]["customer_no"]["pattern"] == CUSTOMER_NO_PATTERN
    for name, field in item["properties"].items():
        assert field.get("type") or field.get("$ref") or field.get("allOf") or field.get("oneOf"), (
            name
        )


def test_transaction_items_carry_their_validators(schema):
    body = _body(schema, "post", "/api/v1/ingest/transactions/")
    item = _component(schema, body["properties"]["transactions"]["items"]["$ref"])
    properties = item["properties"]
    assert properties["occurred_at"]["format"] == "date-time"
    assert "pattern" in properties["external_id"]
    assert "pattern" in properties["source"]
    assert properties["currency"]["pattern"] == "^[A-Z]{3}$"
    assert _component(schema, properties["type"]["$ref"])["enum"]
    assert _component(schema, properties["channel"]["$ref"])["enum"]


def test_the_simulators_tiers_are_typed(schema):
    body = _body(schema, "post", "/api/v1/tiers/simulate/")
    tiers = body["properties"]["tiers"]
    assert tiers["maxItems"] == 50
    proposal = _component(schema, tiers["items"]["$ref"])
    assert proposal["required"] == ["code"]
    assert proposal["additionalProperties"] is False
    assert proposal["properties"]["window_months"]["maximum"] == 24


def test_strict_bodies_refuse_unknown_fields(schema):
    strict = {
        ("put", "/api/v1/members/{customer_no}/"),
        ("post", "/api/v1/points/adjustments/"),
        ("post", "/api/v1/tiers/evaluate/"),
        ("post", "/api/v1/tiers/simulate/"),
        ("post", "/api/v1/tiers/overrides/"),
        ("post", "/api/v1/tiers/overrides/{override_id}/approve/"),
        ("post", "/api/v1/tiers/overrides/{override_id}/reject/"),
        ("post", "/api/v1/rewards/"),
        ("patch", "/api/v1/rewards/{reward_id}/"),
        ("post", "/api/v1/rewards/{reward_id}/codes/"),
        ("post", "/api/v1/me/redemptions/"),
        ("post", "/api/v1/redemptions/{redemption_id}/fulfil/"),
        ("post", "/api/v1/redemptions/{redemption_id}/cancel/"),
        ("post", "/api/v1/redemptions/{redemption_id}/cash-payment/"),
        ("post", "/api/v1/me/invitations/{invitation_id}/rsvp/"),
        ("post", "/api/v1/me/invitations/{invitation_id}/feedback/"),
        ("post", "/api/v1/events/"),
        ("patch", "/api/v1/events/{event_id}/"),
        ("post", "/api/v1/events/{event_id}/cancel/"),
        ("post", "/api/v1/events/{event_id}/check-in/"),
        ("post", "/api/v1/segments/"),
        ("patch", "/api/v1/segments/{segment_id}/"),
        ("post", "/api/v1/segments/preview/"),
        ("post", "/api/v1/surveys/"),
        ("post", "/api/v1/me/surveys/{response_id}/answer/"),
    }
    closed = {
        (method, path)
        for method, path, operation in _operations(schema)
        if "requestBody" in operation
        and _body(schema, method, path).get("additionalProperties") is False
    }
    # The others (batches, adjustment decisions, the member token) ignore fields they do not know.
    assert closed == strict


def test_customer_numbers_carry_their_pattern(schema):
    paths = 0
    for method, path, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] == "customer_no":
                paths += 1
                assert parameter["schema"]["pattern"] == CUSTOMER_NO_PATTERN, (method, path)
        if "requestBody" in operation:
            body = _body(schema, method, path)
            if "customer_no" in body["properties"]:
                assert body["properties"]["customer_no"]["pattern"] == CUSTOMER_NO_PATTERN
    assert paths == 3  # the member's GET and PUT, and the member's ledger


@pytest.mark.parametrize(
    "path", ["/api/v1/me/points/entries/", "/api/v1/members/{customer_no}/points/entries/"]
)
def test_ledger_dates_are_dates(schema, path):
    parameters = {p["name"]: p for p in _operation(schema, "get", path)["parameters"]}
    assert parameters["from"]["schema"] == {"type": "string", "format": "date"}
    assert parameters["to"]["schema"] == {"type": "string", "format": "date"}


def test_the_refresh_answers_an_access_token_only(schema):
    body = _body(schema, "post", "/api/v1/auth/token/refresh/")
    assert body["required"] == ["refresh"]
    response = _operation(schema, "post", "/api/v1/auth/token/refresh/")["responses"]["200"]
    answer = _component(schema, response["content"]["application/json"]["schema"]["$ref"])
    assert set(answer["properties"]) == {"access"}
    assert answer["required"] == ["access"]


def test_a_put_body_is_required(schema):
    operation = _operation(schema, "put", "/api/v1/members/{customer_no}/")
    assert operation["requestBody"]["required"] is True


# --- Responses ---------------------------------------------------------------------------------


def test_what_every_response_carries_is_required(schema):
    detail = schema["components"]["schemas"]["MemberDetailOutput"]
    assert {
        "customer_no",
        "name",
        "gender",
        "birth_date",
        "status",
        "joined_at",
        "marketing_consent",
        "tier",
        "snapshots",
        "tier_history",
        "points",
    } <= set(detail["required"])
    for name, component in schema["components"]["schemas"].items():
        if name.endswith("Request") or "properties" not in component:
            continue
        if name in {"Problem", "SegmentRule"}:  # members vary: the keys a rule was given
            assert "required" not in component or set(component["required"]) < set(
                component["properties"]
            ), name
            continue
        assert set(component["required"]) == set(component["properties"]), name


def test_the_member_detail_snapshots_are_typed(schema):
    snapshots = schema["components"]["schemas"]["MemberDetailOutput"]["properties"]["snapshots"]
    snapshot = _component(schema, snapshots["items"]["$ref"])
    assert {"as_of", "deposits", "aum", "contribution"} <= set(snapshot["required"])


# --- Real responses against the schema ---------------------------------------------------------


def _json_schema(node):
    """OpenAPI 3.0's ``nullable`` as JSON Schema's null type."""
    if isinstance(node, dict):
        converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
        return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") else converted
    if isinstance(node, list):
        return [_json_schema(value) for value in node]
    return node


def _assert_matches(schema: dict, response, method: str, path: str) -> None:
    documented = _operation(schema, method, path)["responses"][str(response.status_code)]
    (media_type, content), *_ = documented["content"].items()
    assert response["Content-Type"].startswith(media_type)
    target = {**content["schema"], "components": _json_schema(schema["components"])}
    jsonschema.Draft202012Validator(target).validate(response.json())


@pytest.mark.django_db
def test_real_responses_match_the_schema(schema, admin_api, integration_api, member_client):
    member = MemberFactory()
    detail = admin_api.get(f"/api/v1/members/{member.customer_no}/")
    assert detail.status_code == 200
    _assert_matches(schema, detail, "get", "/api/v1/members/{customer_no}/")

    me = member_client(member).get("/api/v1/me/")
    _assert_matches(schema, me, "get", "/api/v1/me/")

    invalid = admin_api.post("/api/v1/points/adjustments/", {"points": "x"}, format="json")
    assert invalid.status_code == 400
    assert invalid.json()["errors"]
    _assert_matches(schema, invalid, "post", "/api/v1/points/adjustments/")

    batch = integration_api.post(
        "/api/v1/ingest/transactions/", {"transactions": [{"external_id": 1}]}, format="json"
    )
    assert batch.status_code == 202
    assert batch.json()["rejected"][0]["index"] == 0
    _assert_matches(schema, batch, "post", "/api/v1/ingest/transactions/")

    snapshots = integration_api.post(
        "/api/v1/ingest/asset-snapshots/",
        {"snapshots": [{"customer_no": member.customer_no, "as_of": "2020-01-31"}, {}]},
        format="json",
    )
    assert snapshots.status_code == 202
    _assert_matches(schema, snapshots, "post", "/api/v1/ingest/asset-snapshots/")


@pytest.mark.django_db
def test_real_refresh_answers_match_the_schema(schema, api):
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.factories import UserFactory

    refresh = str(RefreshToken.for_user(UserFactory()))
    answer = api.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert answer.status_code == 200
    assert set(answer.json()) == {"access"}
    _assert_matches(schema, answer, "post", "/api/v1/auth/token/refresh/")
    refused = api.post("/api/v1/auth/token/refresh/", {"refresh": "forged"}, format="json")
    assert refused.status_code == 401
    _assert_matches(schema, refused, "post", "/api/v1/auth/token/refresh/")


@pytest.mark.django_db
def test_the_documented_statuses_of_lists_are_the_real_ones(schema, admin_api):
    # A page past the end is 404; a paging parameter the list cannot use is 400 with its own
    # code, and so is a filter's bad value.
    past = admin_api.get("/api/v1/tiers/?page=999")
    assert past.status_code == 404
    _assert_matches(schema, past, "get", "/api/v1/tiers/")
    for query, code in [("page_size=many", "invalid_page_size"), ("page=0", "invalid_page")]:
        bad_page = admin_api.get(f"/api/v1/tiers/?{query}")
        assert bad_page.status_code == 400
        assert bad_page.json()["code"] == code
        assert code in _errors(schema, "get", "/api/v1/tiers/")[400]
        _assert_matches(schema, bad_page, "get", "/api/v1/tiers/")
    member = MemberFactory()
    entries = f"/api/v1/members/{member.customer_no}/points/entries/"
    bad_cursor = admin_api.get(f"{entries}?cursor=nope")
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["code"] == "invalid_cursor"
    assert (
        "invalid_cursor"
        in _errors(schema, "get", "/api/v1/members/{customer_no}/points/entries/")[400]
    )
    _assert_matches(schema, bad_cursor, "get", "/api/v1/members/{customer_no}/points/entries/")
    bad_filter = admin_api.get("/api/v1/members/?status=nope")
    assert bad_filter.status_code == 400
    _assert_matches(schema, bad_filter, "get", "/api/v1/members/")


def test_idempotent_writes_document_their_key(schema):
    idempotent = {
        ("post", "/api/v1/ingest/asset-snapshots/"),
        ("post", "/api/v1/points/adjustments/"),
        ("post", "/api/v1/points/adjustments/{adjustment_id}/approve/"),
        ("post", "/api/v1/points/adjustments/{adjustment_id}/reject/"),
    }
    for method, path in idempotent:
        (key,) = [
            p
            for p in _operation(schema, method, path)["parameters"]
            if p["name"] == "Idempotency-Key"
        ]
        assert key["in"] == "header"
        assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
        assert "idempotency_conflict" in _errors(schema, method, path)[409]
        assert "idempotency_key_invalid" in _errors(schema, method, path)[400]
    # The pattern is the server's own rule (str.isprintable) over a header's Latin-1.
    pattern = re.compile(key["schema"]["pattern"])
    assert all(bool(pattern.fullmatch(chr(code))) == chr(code).isprintable() for code in range(256))
