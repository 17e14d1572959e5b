"""Who reaches what: the 401/403/404 rules of API.md, for every role and for members; a refused
request changes nothing and mints no token."""

import pytest

from loyalty import roles
from members.services.messages import member_message_send
from tests.factories import MemberFactory, UserFactory, database_state

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["detail"]
    return body


def test_no_token_answers_401_not_authenticated(api):
    _assert_problem(api.get("/api/v1/members/"), 401, "not_authenticated")
    _assert_problem(api.get("/api/v1/me/"), 401, "not_authenticated")


def test_garbage_token_answers_401(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    response = api.get("/api/v1/members/")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_staff_obtains_and_refreshes_a_token_with_password(api):
    UserFactory(username="ops", roles=[roles.OPERATIONS])
    response = api.post(
        "/api/v1/auth/token/",
        {"username": "ops", "password": "correct-horse-battery"},
        format="json",
    )
    assert response.status_code == 200, response.content
    tokens = response.json()
    refreshed = api.post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    assert api.get("/api/v1/members/").status_code == 200


def test_wrong_password_answers_401_without_a_token(api):
    UserFactory(username="ops")
    response = api.post(
        "/api/v1/auth/token/", {"username": "ops", "password": "nope"}, format="json"
    )
    _assert_problem(response, 401, "authentication_failed")
    assert "access" not in response.json()


def test_member_token_exchange_acts_as_that_member_only(api, integration_api):
    alice = MemberFactory(name="Alice")
    response = integration_api.post(
        "/api/v1/auth/member-token/", {"customer_no": alice.customer_no}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["customer_no"] == alice.customer_no
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    me = api.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["name"] == "Alice"
    _assert_problem(api.get("/api/v1/members/"), 403, "permission_denied")  # a member, not staff
    # The member token refreshes into another member token, still Alice's.
    refreshed = api.post("/api/v1/auth/token/refresh/", {"refresh": body["refresh"]}, format="json")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    assert api.get("/api/v1/me/").json()["customer_no"] == alice.customer_no


def test_member_token_for_unknown_customer_answers_404(integration_api):
    response = integration_api.post(
        "/api/v1/auth/member-token/", {"customer_no": "NOPE"}, format="json"
    )
    assert "access" not in _assert_problem(response, 404, "not_found")


def test_member_token_for_closed_member_is_refused(integration_api):
    member = MemberFactory(status="closed")
    response = integration_api.post(
        "/api/v1/auth/member-token/", {"customer_no": member.customer_no}, format="json"
    )
    assert "access" not in _assert_problem(response, 409, "member_inactive")


def test_existing_member_token_stops_working_once_the_member_is_closed(member_client):
    client = member_client()
    client.member.status = "closed"
    client.member.save()
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "member_inactive"


@pytest.mark.parametrize("path", ["/api/v1/members/", "/api/v1/ingest/asset-snapshots/"])
def test_member_token_never_reaches_staff_endpoints(member_client, path):
    client = member_client()
    # The member's own snapshot, a body the integration role would store.
    snapshot = {"customer_no": client.member.customer_no, "as_of": "2026-01-31", "deposits": "9"}
    before = database_state()
    if "ingest" in path:
        response = client.post(path, {"snapshots": [snapshot]}, format="json")
    else:
        response = client.get(path)
    _assert_problem(response, 403, "permission_denied")
    assert database_state() == before


@pytest.mark.parametrize("suffix", ["", "points/entries/"])
def test_member_token_on_a_members_staff_page_answers_403_with_nothing(member_client, suffix):
    alice, bob = MemberFactory(), MemberFactory(name="Bob Secret")
    client = member_client(alice)
    for member in (alice, bob):
        response = client.get(f"/api/v1/members/{member.customer_no}/{suffix}")
        _assert_problem(response, 403, "permission_denied")
        assert b"Bob" not in response.content


def test_member_token_cannot_issue_member_tokens(member_client):
    other = MemberFactory()
    client = member_client()
    before = database_state()
    response = client.post(
        "/api/v1/auth/member-token/", {"customer_no": other.customer_no}, format="json"
    )
    assert "access" not in _assert_problem(response, 403, "permission_denied")
    assert database_state() == before


def test_staff_token_does_not_reach_member_endpoints(admin_api):
    _assert_problem(admin_api.get("/api/v1/me/"), 403, "permission_denied")


# (method, path, body) -> the roles that may call it; every other role gets 403.
ENDPOINTS = [
    (
        "get",
        "/api/v1/members/",
        None,
        {roles.PROGRAMME_ADMIN, roles.OPERATIONS},
    ),
    ("head", "/api/v1/members/R0001/", None, {roles.PROGRAMME_ADMIN, roles.OPERATIONS}),
    ("options", "/api/v1/members/R0001/", None, set()),
    (
        "put",
        "/api/v1/members/R0001/",
        {"name": "Role Test"},
        {roles.PROGRAMME_ADMIN, roles.INTEGRATION},
    ),
    (
        "post",
        "/api/v1/ingest/asset-snapshots/",
        {"snapshots": [{"customer_no": "R0001", "as_of": "2026-01-31"}]},
        {roles.PROGRAMME_ADMIN, roles.INTEGRATION},
    ),
    (
        "post",
        "/api/v1/auth/member-token/",
        {"customer_no": "R0001"},
        {roles.PROGRAMME_ADMIN, roles.INTEGRATION},
    ),
]


@pytest.mark.parametrize("role", sorted(roles.ROLE_PERMISSIONS))
@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
def test_each_role_reaches_what_api_md_gives_it(staff_client, role, method, path, body, allowed):
    MemberFactory(customer_no="R0001")
    client = staff_client(role)
    before = database_state()
    if method in ("head", "options"):
        response = getattr(client, method)(path)
    else:
        response = getattr(client, method)(path, body, format="json")
    if role in allowed:
        assert response.status_code in (200, 201, 202), (role, path, response.content)
    else:
        assert response.status_code == 403, (role, method, path)
        if method != "head":
            assert "access" not in _assert_problem(response, 403, "permission_denied")
        assert b"R0001" not in response.content
        assert database_state() == before  # no member changed, no snapshot stored


def test_user_without_a_role_gets_403(staff_client):
    _assert_problem(staff_client().get("/api/v1/members/"), 403, "permission_denied")


def test_member_gets_404_and_nothing_for_another_members_message(member_client):
    alice, bob = MemberFactory(), MemberFactory()
    bobs = member_message_send(
        member=bob, kind="general", title="Secret of Bob", body="Bob only", dedupe_key="bob-1"
    )
    client = member_client(alice)
    response = client.post(f"/api/v1/me/messages/{bobs.id}/read/")
    body = _assert_problem(response, 404, "not_found")
    assert "Bob" not in response.content.decode()
    assert "Secret" not in str(body)
    listing = client.get("/api/v1/me/messages/").json()
    assert listing["results"] == []
    bobs.refresh_from_db()
    assert bobs.read_at is None


def test_member_reads_own_messages(member_client):
    client = member_client()
    message = member_message_send(
        member=client.member, kind="general", title="Hello", body="Welcome", dedupe_key="hello-1"
    )
    listing = client.get("/api/v1/me/messages/?unread=true").json()
    assert [row["id"] for row in listing["results"]] == [str(message.id)]
    assert client.post(f"/api/v1/me/messages/{message.id}/read/").json()["read"] is True
    assert client.get("/api/v1/me/messages/?unread=true").json()["results"] == []
    read = client.get("/api/v1/me/messages/?unread=false").json()
    assert [row["id"] for row in read["results"]] == [str(message.id)]


@pytest.mark.django_db(transaction=True)
def test_roles_and_their_permissions_come_back_after_a_database_flush():
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)
    groups = {group.name: group.permissions.count() for group in Group.objects.all()}
    assert set(groups) == set(roles.ROLE_PERMISSIONS)
    assert all(count > 0 for count in groups.values()), groups
