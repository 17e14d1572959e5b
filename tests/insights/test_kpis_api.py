"""``GET /api/v1/kpis/``: marketing and programme admins read the KPIs of a period; a missing
or bad parameter is a 400 problem naming it; roles without the permission and members get
403; the answer has every key, decimals as strings, per tier."""

import datetime as dt

import pytest

from insights.selectors import KPI_FIELDS
from insights.services.kpis import kpi_snapshots_refresh
from loyalty import roles
from tests.insights import kpi_data as k

pytestmark = pytest.mark.django_db

URL = "/api/v1/kpis/"


@pytest.fixture
def data():
    tiers = k.ladder()
    a = k.member(joined=dt.date(2025, 1, 1), tier=tiers["GOLD"])
    k.member(joined=dt.date(2026, 10, 3))
    k.earn(a, 400, dt.date(2026, 10, 2))
    k.redeem(a, 100, dt.date(2026, 10, 4))
    k.snapshot(a, dt.date(2026, 10, 31), "150000.00", "1500.00")
    return tiers


@pytest.mark.parametrize("role", [roles.MARKETING, roles.PROGRAMME_ADMIN])
def test_staff_with_the_permission_read_the_kpis_of_a_period(staff_client, data, role):
    response = staff_client(role).get(URL, {"from": "2026-10-01", "to": "2026-10-31"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {*KPI_FIELDS, "from", "to", "by_tier"}
    assert (body["from"], body["to"]) == ("2026-10-01", "2026-10-31")
    assert body["members_total"] == 2
    assert body["members_new"] == 1
    assert body["growth_rate"] == "1.0000"  # decimals are strings, 4 places for rates
    assert body["redemption_rate"] == "0.2500"
    assert body["avg_aum"] == "150000.00"
    assert body["points_liability"] == "3.00"
    assert body["nps"] is None
    assert list(body["by_tier"]) == ["STANDARD", "GOLD"]
    assert set(body["by_tier"]["GOLD"]) == set(KPI_FIELDS)
    assert body["by_tier"]["GOLD"]["points_issued"] == 400


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ({"to": "2026-10-31"}, "from", "required"),
        ({"from": "2026-10-01"}, "to", "required"),
        ({"from": "2026-13-01", "to": "2026-10-31"}, "from", "invalid"),
        ({"from": "2026-10-01", "to": "yesterday"}, "to", "invalid"),
        ({"from": "2026-10-31", "to": "2026-10-01"}, "to", "period_order"),
        ({"from": "1999-12-31", "to": "2026-10-01"}, "from", "too_early"),
        ({"from": "2000-01-01", "to": "2026-10-01"}, "to", "period_too_long"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "to", "too_late"),
    ],
)
def test_a_missing_or_bad_parameter_is_a_400_naming_it(admin_api, query, field, code):
    response = admin_api.get(URL, query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "validation_error"
    assert [error["field"] for error in body["errors"]] == [field]
    if code != "invalid":
        assert body["errors"][0]["code"] == code


@pytest.mark.parametrize("role", [roles.OPERATIONS, roles.APPROVER, roles.INTEGRATION])
def test_a_role_without_the_permission_gets_403(staff_client, role):
    response = staff_client(role).get(URL, {"from": "2026-10-01", "to": "2026-10-31"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_member_gets_403_and_no_token_401(member_client, api):
    response = member_client().get(URL, {"from": "2026-10-01", "to": "2026-10-31"})
    assert response.status_code == 403
    assert api.get(URL, {"from": "2026-10-01", "to": "2026-10-31"}).status_code == 401


def test_a_closed_month_with_a_snapshot_is_read_from_it(admin_api, data):
    from insights.models import KpiSnapshot

    kpi_snapshots_refresh(month=dt.date(2026, 10, 1))
    live = admin_api.get(URL, {"from": "2026-10-01", "to": "2026-10-31"}).json()
    overall = KpiSnapshot.objects.get(month=dt.date(2026, 10, 1), tier_code="")
    overall.figures = {**overall.figures, "members_total": 99}
    overall.save()
    stored = admin_api.get(URL, {"from": "2026-10-01", "to": "2026-10-31"}).json()
    assert stored == {**live, "members_total": 99}
    assert list(stored["by_tier"]) == ["STANDARD", "GOLD"]
    # Any other period is computed.
    assert (
        admin_api.get(URL, {"from": "2026-10-01", "to": "2026-10-30"}).json()["members_total"] == 2
    )
