"""The admin sign-in is limited per username and per client address (django-axes)."""

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"
PASSWORD = "a-long-pass-phrase-1"


def _attempt(client, username: str, password: str, address: str):
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


@pytest.fixture
def staff(settings):
    settings.AXES_FAILURE_LIMIT = 5
    return User.objects.create_user("ops", password=PASSWORD, is_staff=True, is_superuser=True)


def test_wrong_passwords_from_many_addresses_lock_the_username(client, staff):
    for n in range(4):
        assert _attempt(client, "ops", "wrong", f"10.0.0.{n}").status_code == 200  # the form
    assert _attempt(client, "ops", "wrong", "10.0.0.4").status_code == 429  # the fifth locks
    locked = _attempt(client, "ops", PASSWORD, "10.0.0.99")
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_from_one_address_lock_the_address(client, staff):
    for n in range(5):
        _attempt(client, f"guess{n}", "wrong", "10.1.1.1")
    assert _attempt(client, "ops", PASSWORD, "10.1.1.1").status_code == 429
    # The same user from another address signs in.
    signed_in = _attempt(client, "ops", PASSWORD, "10.2.2.2")
    assert signed_in.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_a_right_password_before_the_limit_signs_in_and_resets_the_count(client, staff):
    for _ in range(4):
        _attempt(client, "ops", "wrong", "10.3.3.3")
    assert _attempt(client, "ops", PASSWORD, "10.3.3.3").status_code == 302
    client.logout()
    for _ in range(4):
        _attempt(client, "ops", "wrong", "10.3.3.3")
    assert _attempt(client, "ops", PASSWORD, "10.3.3.3").status_code == 302
