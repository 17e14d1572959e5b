"""Sign-in limits per username as well as per address, counted in Redis (shared by every client
and connection, kept by Redis, not by a process), a throttle that survives its cache going away,
and a database outage answered as 503."""

import threading
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisSerializer
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from loyalty import roles
from loyalty.api import throttling
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
TOKEN = "/api/v1/auth/token/"
PASSWORD = "a-long-pass-phrase-1"


@pytest.fixture
def rates(monkeypatch):
    def set_rates(**scoped: str) -> None:
        for scope, rate in scoped.items():
            monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, rate)

    return set_rates


def _user(username: str):
    user: Any = UserFactory(username=username, roles=[roles.OPERATIONS])
    user.set_password(PASSWORD)
    user.save()
    return user


def test_wrong_passwords_lock_the_username_not_everyone_behind_the_address(api, rates):
    rates(auth="100/minute", auth_user="3/minute")
    _user("ops"), _user("other")
    for _ in range(3):
        wrong = api.post(TOKEN, {"username": "ops", "password": "wrong"}, format="json")
        assert wrong.status_code == 401
    locked = api.post(TOKEN, {"username": "OPS ", "password": PASSWORD}, format="json")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    # Another user from the same address signs in.
    other = api.post(TOKEN, {"username": "other", "password": PASSWORD}, format="json")
    assert other.status_code == 200, other.content


@pytest.mark.django_db(transaction=True)  # a second thread signs in on its own connection
def test_the_username_budget_is_counted_in_redis_across_clients_and_connections(rates, settings):
    rates(auth="100/minute", auth_user="10/minute")
    settings.AXES_FAILURE_LIMIT = 100  # the throttle is under test, not the lockout
    _user("ops"), _user("other")
    cache_db = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])

    def attempts(address: str, count: int) -> list[int]:
        client = APIClient(REMOTE_ADDR=address)
        return [
            client.post(TOKEN, {"username": "ops", "password": "wrong"}, format="json").status_code
            for _ in range(count)
        ]

    # Five wrong passwords from one client, five from another client, address and thread (a
    # cache of its own, so a Redis connection of its own).
    assert attempts("10.0.0.1", 5) == [401] * 5
    statuses: list[int] = []

    def elsewhere() -> None:
        try:
            statuses.extend(attempts("10.0.0.2", 5))
        finally:
            connection.close()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(timeout=30)
    assert statuses == [401] * 5
    # The count is in Redis itself: one list of ten attempt times under the username's key.
    (key,) = cache_db.keys("*throttle_auth_user_*")
    assert len(RedisSerializer().loads(cache_db.get(key))) == 10

    # A new cache connection in this process, nothing counted in its memory: the 11th attempt,
    # with the right password from a third address, is refused.
    del caches["default"]
    throttling._LOCAL.clear()
    eleventh = APIClient(REMOTE_ADDR="10.0.0.3").post(
        TOKEN, {"username": "ops", "password": PASSWORD}, format="json"
    )
    assert eleventh.status_code == 429, eleventh.content
    assert 0 < int(eleventh["Retry-After"]) <= 60
    # Another username from the same addresses is not held back.
    other = APIClient(REMOTE_ADDR="10.0.0.3").post(
        TOKEN, {"username": "other", "password": PASSWORD}, format="json"
    )
    assert other.status_code == 200, other.content
    # Deleted in Redis (not through Django), the count is gone: the username signs in.
    cache_db.delete(key)
    again = APIClient(REMOTE_ADDR="10.0.0.3").post(
        TOKEN, {"username": "ops", "password": PASSWORD}, format="json"
    )
    assert again.status_code == 200, again.content


def test_the_address_budget_still_holds_across_usernames(api, rates):
    rates(auth="2/minute", auth_user="100/minute")
    for name in ("a", "b"):
        api.post(TOKEN, {"username": name, "password": "wrong"}, format="json")
    assert api.post(TOKEN, {"username": "c", "password": "x"}, format="json").status_code == 429


def test_sign_in_works_with_the_cache_down_and_counts_in_process(api, rates, settings):
    rates(auth="100/minute", auth_user="2/minute")
    throttling._LOCAL.clear()
    _user("ops")
    # A Redis cache on a port nothing listens on: every call is refused.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
    signed_in = api.post(TOKEN, {"username": "ops", "password": PASSWORD}, format="json")
    assert signed_in.status_code == 200, signed_in.content
    assert (
        api.post(TOKEN, {"username": "ops", "password": "wrong"}, format="json").status_code == 401
    )
    # The local count still limits: the third attempt for the username is refused.
    third = api.post(TOKEN, {"username": "ops", "password": PASSWORD}, format="json")
    assert third.status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_answers_503_with_retry_after(admin_api):
    # The connection is pointed at a port nothing listens on, as when the server is down.
    connection.close()
    saved = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = 9
    try:
        response = admin_api.get("/api/v1/members/")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "database_unavailable"
    assert int(response["Retry-After"]) > 0
    assert admin_api.get("/api/v1/members/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_outside_the_api_views_answers_503_not_500(admin_user):
    # The console's session and user are read in middleware, before any DRF view: Django's
    # last-resort handler answers the same problem.
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    connection.close()
    saved = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = 9
    try:
        response = client.get("/admin/")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "database_unavailable"
    assert int(response["Retry-After"]) > 0
    assert client.get("/admin/").status_code == 200


def test_a_password_change_revokes_the_users_access_and_refresh_tokens(api):
    user = _user("ops")
    pair = api.post(TOKEN, {"username": "ops", "password": PASSWORD}, format="json").json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert api.get("/api/v1/tiers/").status_code == 200
    user.set_password("another-long-pass-phrase-2")
    user.save()
    refused = api.get("/api/v1/tiers/")
    assert refused.status_code == 401
    api.credentials()
    refresh = api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert refresh.status_code == 401
    # Signed in again with the new password, the user works.
    new = api.post(
        TOKEN, {"username": "ops", "password": "another-long-pass-phrase-2"}, format="json"
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {new.json()['access']}")
    assert api.get("/api/v1/tiers/").status_code == 200


def test_an_api_sign_in_locked_out_answers_a_problem_not_a_page(api, rates, settings):
    rates(auth="100/minute", auth_user="100/minute")
    settings.AXES_FAILURE_LIMIT = 3
    _user("ops")
    for _ in range(3):
        api.post(TOKEN, {"username": "ops", "password": "wrong"}, format="json")
    locked = api.post(TOKEN, {"username": "ops", "password": PASSWORD}, format="json")
    assert locked.status_code in (401, 429), locked.content
    assert locked["Content-Type"].startswith("application/problem+json")
    assert "access" not in locked.json()
