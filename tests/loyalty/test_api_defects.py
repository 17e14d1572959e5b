"""Regression tests for API defects: each test goes through the real URL routes; a request
refused (405, 403, 404, 400) changes nothing in the database."""

import base64
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from loyalty import roles
from members.authentication import member_token_issue
from members.models import Member
from members.services.members import member_close, member_freeze, member_unfreeze
from points.services.ledger import points_credit
from tests.factories import MemberFactory, UserFactory, database_state

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
REFRESH = "/api/v1/auth/token/refresh/"


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    assert body["detail"]
    return body


def _bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# 1. A frozen or closed member's (and an inactive user's) tokens are refused at once.


def test_frozen_members_access_and_refresh_tokens_are_refused_until_unfrozen(api):
    admin = UserFactory(roles=[roles.PROGRAMME_ADMIN])
    member = MemberFactory()
    refresh = member_token_issue(member=member)
    client = _bearer(refresh.access_token)
    assert client.get("/api/v1/me/").status_code == 200

    member_freeze(member=member, actor=admin)
    _problem(client.get("/api/v1/me/"), 401, "member_inactive")
    _problem(api.post(REFRESH, {"refresh": str(refresh)}, format="json"), 401, "member_inactive")

    member_unfreeze(member=Member.objects.get(pk=member.pk), actor=admin)
    assert client.get("/api/v1/me/").status_code == 200
    refreshed = api.post(REFRESH, {"refresh": str(refresh)}, format="json")
    assert refreshed.status_code == 200, refreshed.content
    assert set(refreshed.json()) == {"access"}
    assert _bearer(refreshed.json()["access"]).get("/api/v1/me/").status_code == 200


def test_closed_members_refresh_token_mints_nothing(api):
    member = MemberFactory()
    refresh = member_token_issue(member=member)
    member_close(member=member, actor=UserFactory(roles=[roles.PROGRAMME_ADMIN]))
    response = api.post(REFRESH, {"refresh": str(refresh)}, format="json")
    _problem(response, 401, "member_inactive")
    assert "access" not in response.json()
    _problem(_bearer(refresh.access_token).get("/api/v1/me/"), 401, "member_inactive")


def test_refresh_token_of_an_unknown_member_is_refused(api):
    refresh = RefreshToken()
    refresh["customer_no"] = "NO-SUCH-MEMBER"
    _problem(api.post(REFRESH, {"refresh": str(refresh)}, format="json"), 401, "member_inactive")


def test_member_refresh_looks_the_member_up_in_one_indexed_query(api):
    member = MemberFactory()
    refresh = str(member_token_issue(member=member))
    assert Member._meta.get_field("customer_no").unique  # a unique index
    with CaptureQueriesContext(connection) as queries:
        response = api.post(REFRESH, {"refresh": refresh}, format="json")
    assert response.status_code == 200, response.content
    assert len(queries) == 1, [query["sql"] for query in queries]
    assert '"customer_no" =' in queries[0]["sql"]


def test_inactive_staff_users_access_and_refresh_tokens_are_refused(api):
    user = UserFactory(roles=[roles.OPERATIONS])
    refresh = RefreshToken.for_user(user)
    client = _bearer(refresh.access_token)
    assert client.get("/api/v1/members/").status_code == 200
    user.is_active = False
    user.save()
    _problem(client.get("/api/v1/members/"), 401, "authentication_failed")
    response = api.post(REFRESH, {"refresh": str(refresh)}, format="json")
    _problem(response, 401, "authentication_failed")
    assert "access" not in response.json()


# 2. A method a path does not implement answers 405, for any authenticated caller.

UNSUPPORTED = [
    ("delete", "/api/v1/members/R0001/"),
    ("patch", "/api/v1/members/R0001/"),
    ("delete", "/api/v1/points/adjustments/"),
    ("patch", "/api/v1/points/adjustments/"),
    ("put", "/api/v1/points/adjustments/"),
    ("delete", "/api/v1/tiers/overrides/"),
    ("patch", "/api/v1/tiers/overrides/"),
    ("delete", "/api/v1/members/"),
    ("post", "/api/v1/tiers/"),
    ("delete", "/api/v1/me/"),
]


@pytest.fixture
def superuser_api():
    user = UserFactory(is_superuser=True, is_staff=True)
    return _bearer(RefreshToken.for_user(user).access_token)


@pytest.mark.parametrize(("method", "path"), UNSUPPORTED)
@pytest.mark.parametrize("caller", ["superuser", "admin", "operations", "no_role", "member"])
def test_unsupported_method_answers_405_with_allow(
    caller, method, path, superuser_api, admin_api, staff_client, member_client
):
    MemberFactory(customer_no="R0001")
    client = {
        "superuser": lambda: superuser_api,
        "admin": lambda: admin_api,
        "operations": lambda: staff_client(roles.OPERATIONS),
        "no_role": lambda: staff_client(),
        "member": lambda: member_client(),
    }[caller]()
    before = database_state()
    response = getattr(client, method)(path, {}, format="json")
    _problem(response, 405, "method_not_allowed")
    assert database_state() == before
    allowed = {name.strip() for name in response["Allow"].split(",")}
    assert method.upper() not in allowed
    assert "OPTIONS" in allowed


@pytest.mark.parametrize(("method", "path"), UNSUPPORTED[:3])
def test_unsupported_method_without_a_token_still_answers_401(api, method, path):
    _problem(getattr(api, method)(path), 401, "not_authenticated")


def test_implemented_methods_keep_their_role_checks(staff_client):
    MemberFactory(customer_no="R0001")
    marketing = staff_client(roles.MARKETING)
    before = database_state()
    _problem(
        marketing.put("/api/v1/members/R0001/", {"name": "X"}, format="json"),
        403,
        "permission_denied",
    )
    _problem(marketing.options("/api/v1/members/R0001/"), 403, "permission_denied")
    assert database_state() == before  # the member keeps its name


# 3. A member token on any staff or integration endpoint answers 403, never 404.

# Read-only catalogue endpoints a member token may read (API.md): their other methods are staff's.
MEMBER_READABLE = {"tier-list", "rewards", "reward"}
HANDLERS = ("get", "post", "put", "patch", "delete")
_CONVERTER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_DUMMIES = {"uuid": "00000000-0000-4000-8000-000000000000", "int": "1", "slug": "x"}


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        else:
            yield route, entry


def _staff_operations() -> list[tuple[str, str, str]]:
    """Every (method, path, url name) under /api/v1/ but /me/... and the token endpoints, with
    path parameters filled by dummies (a real member's number for ``customer_no``)."""
    operations = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        rest = route.removeprefix("api/v1/")
        if rest.startswith(("me/", "auth/token/")) or rest == "me/":
            continue
        view_class = getattr(pattern.callback, "view_class", None) or pattern.callback.cls
        path = "/" + _CONVERTER.sub(
            lambda m: "R0001" if m["name"] == "customer_no" else _DUMMIES.get(m["converter"], "x"),
            route,
        )
        for method in HANDLERS:
            if not hasattr(view_class, method):
                continue
            if pattern.name in MEMBER_READABLE and method == "get":
                continue
            operations.append((method, path, pattern.name))
    return operations


STAFF_OPERATIONS = _staff_operations()


def test_the_walk_finds_the_staff_endpoints():
    names = {name for _, _, name in STAFF_OPERATIONS}
    assert {"member-list", "member-detail", "member-points-entries", "points-adjustments"} <= names
    assert {"tier-override-detail", "ingest-transactions", "auth-member-token"} <= names
    assert not any(path.startswith("/api/v1/me/") for _, path, _ in STAFF_OPERATIONS)


@pytest.mark.parametrize(("method", "path", "name"), STAFF_OPERATIONS)
def test_member_token_gets_403_on_every_staff_endpoint(member_client, method, path, name):
    MemberFactory(customer_no="R0001", name="Bob Secret")
    clients = (member_client(), member_client(Member.objects.get(customer_no="R0001")))
    before = database_state()
    for client in clients:
        response = getattr(client, method)(path, {}, format="json")
        _problem(response, 403, "permission_denied")
        assert b"Bob" not in response.content
    assert database_state() == before


# 4. A pagination parameter the list cannot use answers 400 naming it.


def _bad_parameter(response, code: str, field: str) -> None:
    body = _problem(response, 400, code)
    assert [(error["field"], error["code"]) for error in body["errors"]] == [(field, code)]


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", ""])
def test_bad_page_answers_400_invalid_page(admin_api, page):
    MemberFactory()
    _bad_parameter(admin_api.get(f"/api/v1/members/?page={page}"), "invalid_page", "page")


@pytest.mark.parametrize("size", ["0", "201", "abc", "-5", "", "1e2", "10.0"])
def test_bad_page_size_answers_400_invalid_page_size(admin_api, member_client, size):
    _bad_parameter(
        admin_api.get(f"/api/v1/members/?page_size={size}"), "invalid_page_size", "page_size"
    )
    _bad_parameter(
        member_client().get(f"/api/v1/me/points/entries/?page_size={size}"),
        "invalid_page_size",
        "page_size",
    )


def test_good_pages_and_page_sizes_still_work(admin_api):
    for n in range(3):
        MemberFactory(customer_no=f"P{n:04d}")
    body = admin_api.get("/api/v1/members/?page_size=2&page=2").json()
    assert [row["customer_no"] for row in body["results"]] == ["P0002"]
    assert admin_api.get("/api/v1/members/?page=last&page_size=2").status_code == 200
    assert admin_api.get("/api/v1/members/?page_size=200").status_code == 200
    # A page past the last one does not exist: 404, as for any unknown resource.
    _problem(admin_api.get("/api/v1/members/?page=99"), 404, "not_found")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        base64.b64encode(b"r=x").decode(),
        base64.b64encode(b"p=not-a-date").decode(),
        base64.b64encode(b"o=1&p=2026-13-45").decode(),
        "%C3%A9t%C3%A9",
    ],
)
def test_bad_cursor_answers_400_invalid_cursor(member_client, cursor):
    client = member_client()
    points_credit(member=client.member, points=5, idempotency_key="a")
    response = client.get(f"/api/v1/me/points/entries/?cursor={cursor}")
    _bad_parameter(response, "invalid_cursor", "cursor")


def test_the_next_cursor_still_pages_through_the_ledger(member_client):
    client = member_client()
    for n in range(3):
        points_credit(member=client.member, points=n + 1, idempotency_key=f"k{n}")
    first = client.get("/api/v1/me/points/entries/?page_size=2").json()
    assert len(first["results"]) == 2
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1
    assert second["next"] is None
    pages = [row["points"] for row in first["results"] + second["results"]]
    assert sorted(pages) == [1, 2, 3]  # every entry once, across the pages


# 5. Token refresh has its own throttle, apart from sign-in attempts.


def test_refresh_is_throttled_apart_from_sign_in(api, monkeypatch):
    from django.conf import settings
    from rest_framework.throttling import ScopedRateThrottle

    assert set(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]) >= {"auth", "auth_refresh"}
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "auth", "3/minute")
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "auth_refresh", "2/minute")
    refresh = str(RefreshToken.for_user(UserFactory(username="ops", roles=[roles.OPERATIONS])))
    wrong = {"username": "ops", "password": "wrong"}
    for _ in range(3):
        assert api.post("/api/v1/auth/token/", wrong, format="json").status_code == 401
    response = api.post("/api/v1/auth/token/", wrong, format="json")
    _problem(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # Failed sign-ins do not count against refreshes, which have their own rate.
    for _ in range(2):
        refreshed = api.post(REFRESH, {"refresh": refresh}, format="json")
        assert refreshed.status_code == 200, refreshed.content
        assert set(refreshed.json()) == {"access"}
    _problem(api.post(REFRESH, {"refresh": refresh}, format="json"), 429, "throttled")


def test_default_refresh_rate_comes_from_the_environment():
    import importlib
    import os

    from config.settings import default

    original = os.environ.get("THROTTLE_REFRESH_RATE")
    try:
        os.environ.pop("THROTTLE_REFRESH_RATE", None)
        rates = importlib.reload(default).REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        assert rates["auth_refresh"] == "120/minute"
        os.environ["THROTTLE_REFRESH_RATE"] = "7/minute"
        rates = importlib.reload(default).REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        assert rates["auth_refresh"] == "7/minute"
    finally:
        if original is None:
            os.environ.pop("THROTTLE_REFRESH_RATE", None)
        else:
            os.environ["THROTTLE_REFRESH_RATE"] = original
        importlib.reload(default)


# 6. Under /api/ every answer is a problem, DEBUG or not.


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/no-such-thing/",
        "/api/v1/no-such-thing",
        "/api/nothing",
        "/api/v1/tiers/runs/not-a-uuid/",
        "/api/v1/tiers/overrides/123/approve/",
        "/api/v1/points/adjustments/x/reject/",
    ],
)
def test_unknown_api_paths_answer_a_404_problem(admin_api, settings, debug, path):
    settings.DEBUG = debug
    before = database_state()
    for method in ("get", "post", "put", "patch", "delete"):
        response = getattr(admin_api, method)(path, {}, format="json")
        _problem(response, 404, "not_found")
    assert database_state() == before


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_a_path_without_its_trailing_slash_answers_a_404_problem_saying_so(
    integration_api, api, settings, debug, method
):
    settings.DEBUG = debug
    for client in (integration_api, api):  # with a token or without, no redirect, no 500
        response = getattr(client, method)("/api/v1/ingest/transactions", {}, format="json")
        body = _problem(response, 404, "not_found")
        assert "/api/v1/ingest/transactions/" in body["detail"]


def test_the_slash_hint_names_the_path_in_any_language(api, settings):
    settings.DEBUG = True
    response = api.post("/api/v1/members", {}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    body = _problem(response, 404, "not_found")
    assert "/api/v1/members/" in body["detail"]


def test_paths_outside_the_api_keep_djangos_pages(client, settings):
    settings.DEBUG = False
    response = client.get("/healthz")
    assert response.status_code == 200


def test_problems_are_json_even_when_the_browsable_api_was_negotiated(admin_api, monkeypatch):
    from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer

    from members.api.views import MemberListApi

    monkeypatch.setattr(MemberListApi, "renderer_classes", [JSONRenderer, BrowsableAPIRenderer])
    response = admin_api.get("/api/v1/members/?status=nope", HTTP_ACCEPT="text/html")
    _problem(response, 400, "validation_error")


# 7. A filter value the list cannot use answers 400 naming it, never a silently unfiltered list.


@pytest.mark.parametrize("unread", ["2", "AAA", "0.5", "null", "True", "1"])
def test_a_boolean_filter_accepts_only_true_or_false(member_client, unread):
    body = _problem(
        member_client().get(f"/api/v1/me/messages/?unread={unread}"), 400, "validation_error"
    )
    assert [error["field"] for error in body["errors"]] == ["unread"]


@pytest.mark.parametrize(("name", "value"), [("aum_min", "1e17"), ("aum_max", "-1e17")])
def test_a_money_filter_past_any_amount_answers_400(admin_api, name, value):
    body = _problem(admin_api.get(f"/api/v1/members/?{name}={value}"), 400, "validation_error")
    assert [error["field"] for error in body["errors"]] == [name]
    assert admin_api.get(f"/api/v1/members/?{name}=1e15").status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [("marketing_consent", 0), ("marketing_consent", "yes"), ("city", 0), ("name", False)],
)
def test_a_body_value_of_the_wrong_json_type_answers_400(integration_api, field, value):
    member = MemberFactory(city="Beijing", marketing_consent=True)
    before = database_state()
    answer = integration_api.put(
        f"/api/v1/members/{member.customer_no}/", {field: value}, format="json"
    )
    body = _problem(answer, 400, "validation_error")
    assert [(error["field"], error["code"]) for error in body["errors"]] == [(field, "invalid")]
    assert database_state() == before  # the member as it was, no audit row


def test_a_put_without_a_body_answers_400_and_changes_nothing(integration_api):
    member = MemberFactory(city="Beijing")
    path = f"/api/v1/members/{member.customer_no}/"
    before = database_state()
    _problem(integration_api.put(path), 400, "parse_error")
    _problem(integration_api.put("/api/v1/members/NEW0001/"), 400, "parse_error")
    assert database_state() == before  # no member created, none changed
    assert integration_api.put(path, {}, format="json").status_code == 200
