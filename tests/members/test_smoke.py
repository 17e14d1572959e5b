import pytest

pytestmark = pytest.mark.django_db


def test_member_sees_own_profile_with_masked_phone(member_client):
    client = member_client()
    response = client.get("/api/v1/me/")
    assert response.status_code == 200, response.content
    assert response.json()["phone"][:3] == client.member.phone[:3]
    assert "****" in response.json()["phone"]


def test_integration_creates_member(integration_api):
    response = integration_api.put(
        "/api/v1/members/C1/", {"name": "张三", "phone": "13812345678"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["phone"] == "138****5678"
