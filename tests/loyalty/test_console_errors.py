"""403 and 404 inside the console are pages in its own look; the API keeps problem details."""

import pytest

from loyalty import roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_page_the_role_may_not_see_is_a_console_403(client):
    client.force_login(UserFactory(roles=[roles.MARKETING]))
    response = client.get("/admin/points/adjustment/")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert 'data-error-status="403"' in body
    assert "Your role does not allow this page or action." in body
    assert 'href="/admin/"' in body  # the console's navigation, not a bare body


def test_an_unknown_console_page_is_a_console_404(client):
    client.force_login(UserFactory(roles=[roles.OPERATIONS]))
    response = client.get("/admin/no-such-page/")
    assert response.status_code == 404
    assert 'data-error-status="404"' in response.content.decode()


def test_the_api_keeps_problem_details(client):
    response = client.get("/api/v1/no-such-path/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_the_site_root_leads_to_the_console(client):
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/admin/")
