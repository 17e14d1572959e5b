"""The console shows times in the business time zone; the API keeps UTC."""

import datetime as dt

import pytest

from loyalty import roles
from points.models import Adjustment
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_admin_shows_business_time_and_the_api_utc(client, staff_client):
    user = UserFactory(roles=[roles.OPERATIONS])
    adjustment = Adjustment.objects.create(
        member=MemberFactory(), points=10, reason="x", requested_by=user
    )
    Adjustment.objects.filter(pk=adjustment.pk).update(
        created_at=dt.datetime(2026, 12, 1, 20, 30, tzinfo=dt.UTC)  # 04:30 on 2 Dec in Shanghai
    )
    client.force_login(user)
    page = client.get("/admin/points/adjustment/").content.decode()
    assert "Dec. 2, 2026, 4:30" in page
    assert "Dec. 1, 2026, 8:30" not in page
    body = staff_client(roles.OPERATIONS).get("/api/v1/points/adjustments/").json()
    assert body["results"][0]["created_at"].startswith("2026-12-01T20:30:00")
