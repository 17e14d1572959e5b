"""Every error is RFC 9457 problem details with a stable code and a translated detail."""

import pytest
from django.test import override_settings

from loyalty import roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(code)
    assert "Traceback" not in response.content.decode()
    return body


def test_unknown_api_url_is_a_404_problem(admin_api):
    _problem(admin_api.get("/api/v1/no-such-thing/"), 404, "not_found")


def test_unknown_member_is_a_404_problem(admin_api):
    _problem(admin_api.get("/api/v1/members/NOPE/"), 404, "not_found")


def test_wrong_method_is_a_405_problem(admin_api):
    _problem(admin_api.delete("/api/v1/members/"), 405, "method_not_allowed")


def test_wrong_content_type_is_a_415_problem(integration_api):
    response = integration_api.post(
        "/api/v1/ingest/asset-snapshots/",
        "snapshots=1",
        content_type="application/x-www-form-urlencoded",
    )
    _problem(response, 415, "unsupported_media_type")


def test_malformed_json_is_a_400_problem(integration_api):
    response = integration_api.put(
        "/api/v1/members/C1/", '{"name": "x",', content_type="application/json"
    )
    _problem(response, 400, "parse_error")


def test_validation_errors_list_each_field(integration_api):
    response = integration_api.put(
        "/api/v1/members/C1/",
        {"name": "x", "gender": "robot", "risk_level": "R9", "email": "not-an-email"},
        format="json",
    )
    body = _problem(response, 400, "validation_error")
    fields = {error["field"]: error["code"] for error in body["errors"]}
    assert fields == {
        "gender": "invalid_choice",
        "risk_level": "invalid_choice",
        "email": "invalid",
    }
    assert all(error["detail"] for error in body["errors"])


def test_detail_is_chinese_with_accept_language_zh_hans(api):
    response = api.get("/api/v1/members/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    body = _problem(response, 401, "not_authenticated")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), body["detail"]
    english = api.get("/api/v1/members/", HTTP_ACCEPT_LANGUAGE="en").json()
    assert english["detail"] == "Authentication credentials were not provided."
    assert english["code"] == body["code"]


def test_our_own_error_details_are_translated_too(integration_api):
    response = integration_api.post(
        "/api/v1/ingest/asset-snapshots/",
        {"snapshots": [{}] * 1001},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    body = _problem(response, 413, "batch_too_large")
    assert "1000" in body["detail"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), body["detail"]


def test_validation_error_details_are_translated(integration_api):
    response = integration_api.put(
        "/api/v1/members/C1/", {"gender": "robot"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    body = _problem(response, 400, "validation_error")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"])
    assert any("\u4e00" <= ch <= "\u9fff" for error in body["errors"] for ch in error["detail"])


@override_settings(
    REST_FRAMEWORK={
        **__import__("django.conf").conf.settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"auth": "2/minute", "auth_user": "100/minute"},
    }
)
def test_too_many_sign_in_attempts_is_a_429_problem(api):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    saved = SimpleRateThrottle.THROTTLE_RATES
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        UserFactory(username="ops", roles=[roles.OPERATIONS])
        for _ in range(2):
            api.post("/api/v1/auth/token/", {"username": "ops", "password": "bad"}, format="json")
        response = api.post(
            "/api/v1/auth/token/", {"username": "ops", "password": "bad"}, format="json"
        )
        _problem(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0
    finally:
        # The override is still active here: put back the rates the throttles had before it
        # (reloading now would keep the override's, which lack the other scopes).
        api_settings.reload()
        SimpleRateThrottle.THROTTLE_RATES = saved


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b'{"name": "x"}', "application/json; charset=zlib_codec", "parse_error"),
        # Django ignores a charset it does not know and reads UTF-8: the fields are then missing.
        (b'{"name": "x"}', "application/json; charset=no-such-charset", "validation_error"),
        (b"[" * 100_000, "application/json", "parse_error"),
        (b'{"name": "\xff\xfe"}', "application/json", "parse_error"),
    ],
)
def test_hostile_bodies_answer_400_not_500(api, body, content_type, code):
    response = api.post("/api/v1/auth/token/", body, content_type=content_type)
    _problem(response, 400, code)


def test_parse_error_detail_is_translated(api):
    response = api.post(
        "/api/v1/auth/token/",
        b"{oops",
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    body = _problem(response, 400, "parse_error")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"])


def test_refresh_token_of_a_deleted_user_answers_401(api):
    from rest_framework_simplejwt.tokens import RefreshToken

    user = UserFactory(username="gone")
    refresh = str(RefreshToken.for_user(user))
    user.delete()
    response = api.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
    _problem(response, 401, "token_not_valid")
