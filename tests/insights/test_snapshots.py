"""Monthly KPI snapshots: one row overall and one per tier for a closed month, the figures the
live computation gives; running the refresh again rewrites the same rows; a month not yet over
is refused; the monthly task also refreshes the member values; the CSV export (command and
admin action) carries one row overall and one per tier."""

import csv
import datetime as dt
import io
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from insights.models import KpiSnapshot
from insights.selectors import KPI_FIELDS, kpi_snapshot_figures
from insights.services.kpis import kpi_snapshots_refresh, kpis_compute
from insights.tasks import kpi_snapshots_refresh_task
from members.models import MemberValue
from tests.factories import UserFactory
from tests.insights import kpi_data as k

pytestmark = pytest.mark.django_db

OCTOBER = dt.date(2026, 10, 1)


@pytest.fixture
def data():
    tiers = k.ladder()
    a = k.member(joined=dt.date(2025, 1, 1), tier=tiers["GOLD"])
    b = k.member(joined=dt.date(2026, 10, 3))
    k.earn(a, 400, dt.date(2026, 10, 2))
    k.earn(b, 50, dt.date(2026, 10, 9))
    k.redeem(a, 100, dt.date(2026, 10, 4))
    k.snapshot(a, dt.date(2026, 10, 31), "150000.00", "1500.00")
    return tiers


def _rows():
    return sorted(
        KpiSnapshot.objects.values_list("month", "tier_code", "figures"), key=lambda r: r[1]
    )


def test_a_closed_month_is_stored_overall_and_per_tier_as_computed(data):
    assert kpi_snapshots_refresh(month=dt.date(2026, 10, 17)) == {"month": OCTOBER, "rows": 3}
    assert [code for _month, code, _figures in _rows()] == ["", "GOLD", "STANDARD"]
    stored = kpi_snapshot_figures(month=OCTOBER)
    assert stored == kpis_compute(day_from=OCTOBER, day_to=dt.date(2026, 10, 31))
    assert stored is not None
    assert stored["points_issued"] == 450
    assert stored["redemption_rate"] == D("0.2222")
    overall = KpiSnapshot.objects.get(month=OCTOBER, tier_code="")
    assert overall.figures["redemption_rate"] == "0.2222"  # decimals kept as strings
    assert set(overall.figures) == set(KPI_FIELDS)


def test_the_refresh_run_twice_writes_the_same_rows(data):
    kpi_snapshots_refresh(month=OCTOBER)
    first = _rows()
    ids = set(KpiSnapshot.objects.values_list("pk", flat=True))
    kpi_snapshots_refresh(month=OCTOBER)
    assert _rows() == first
    assert set(KpiSnapshot.objects.values_list("pk", flat=True)) == ids


def test_a_month_not_yet_over_is_refused(data):
    with pytest.raises(ValueError, match="not over"):
        kpi_snapshots_refresh(month=dt.date(2099, 1, 1))
    assert not KpiSnapshot.objects.exists()


def test_the_monthly_task_stores_the_snapshots_and_refreshes_member_values(data):
    result = kpi_snapshots_refresh_task.delay("2026-10-01").get()
    assert result == {"month": "2026-10-01", "rows": 3, "members": 2}
    assert KpiSnapshot.objects.count() == 3
    assert set(MemberValue.objects.values_list("as_of", flat=True)) == {dt.date(2026, 10, 31)}


def test_export_kpis_writes_one_csv_row_overall_and_one_per_tier(data):
    out = io.StringIO()
    call_command("export_kpis", "--from", "2026-10-01", "--to", "2026-10-31", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["tier"] for row in rows] == ["", "STANDARD", "GOLD"]
    assert rows[0]["points_issued"] == "450"
    assert rows[0]["nps"] == ""
    assert rows[2]["redemption_rate"] == "0.2500"
    with pytest.raises(CommandError):
        call_command("export_kpis", "--from", "2026-10-31", "--to", "2026-10-01")


def test_the_admin_action_exports_the_selected_snapshots_as_csv(data):
    kpi_snapshots_refresh(month=OCTOBER)
    client = Client()
    client.force_login(UserFactory(is_superuser=True))
    response = client.post(
        "/admin/insights/kpisnapshot/",
        {
            "action": "export_csv",
            "_selected_action": list(KpiSnapshot.objects.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(row["month"], row["tier"]) for row in rows] == [
        ("2026-10-01", ""),
        ("2026-10-01", "GOLD"),
        ("2026-10-01", "STANDARD"),
    ]
    assert rows[0]["points_issued"] == "450"


def test_the_admin_lists_snapshots_and_customer_values_read_only(data):
    from insights.services.value import member_values_refresh

    kpi_snapshots_refresh(month=OCTOBER)
    member_values_refresh(as_of=dt.date(2026, 10, 31))
    client = Client()
    client.force_login(UserFactory(is_superuser=True))
    for url in ("/admin/insights/kpisnapshot/", "/admin/members/membervalue/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert f'href="{url}add/"'.encode() not in response.content  # the monthly task's only
