import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from loyalty import roles
from members.authentication import member_token_issue
from tests.factories import MemberFactory, UserFactory


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    """An API client with no credentials."""
    return APIClient()


def _client_for_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def staff_client(db):
    """``staff_client(role, ...)``: an API client holding a JWT of a user with those roles."""

    def make(*role_names: str, user=None) -> APIClient:
        from rest_framework_simplejwt.tokens import RefreshToken

        user = user or UserFactory(roles=list(role_names))
        client = _client_for_token(str(RefreshToken.for_user(user).access_token))
        client.user = user
        return client

    return make


@pytest.fixture
def member_client(db):
    """``member_client(member=None)``: an API client holding that member's token."""

    def make(member=None) -> APIClient:
        member = member or MemberFactory()
        client = _client_for_token(str(member_token_issue(member=member).access_token))
        client.member = member
        return client

    return make


@pytest.fixture
def admin_api(staff_client):
    return staff_client(roles.PROGRAMME_ADMIN)


@pytest.fixture
def integration_api(staff_client):
    return staff_client(roles.INTEGRATION)
