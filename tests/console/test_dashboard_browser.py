"""The console's dashboard in a real browser: a programme admin's home page draws every chart
(Chart.js instances on sized canvases), fits 1,280 px without a horizontal scroll and leads to
the requests waiting for them; marketing's shows no ledger figure; a fresh install explains
why there are no charts yet."""

import datetime as dt

import pytest
from django.utils import timezone

from insights.models import KpiSnapshot
from loyalty import roles
from members.models import TierEvaluationRun, TierHistory
from points.services.adjustments import adjustment_request
from tests.factories import UserFactory
from tests.insights.kpi_data import ladder, member, transaction

pytestmark = pytest.mark.django_db(transaction=True)

CHARTS = ["members_by_tier", "retention", "points_flow", "liability", "events", "satisfaction"]


def programme() -> dict:
    """Three months of snapshots, members in two tiers, a finished evaluation, a pending
    adjustment by an operator and a failed transaction."""
    tiers = ladder()
    for index, month in enumerate(
        [dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)]
    ):
        KpiSnapshot.objects.create(
            month=month,
            figures={
                "members_total": 1_200 + index * 40,
                "members_new": 40,
                "retention_rate": "0.9800",
                "growth_rate": "0.0340",
                "points_issued": 1_500_000 + index * 100_000,
                "points_redeemed": 600_000,
                "points_expired": 25_000 * index,
                "points_liability": f"{180000 + index * 9000}.00",
                "points_liability_net": f"{150000 + index * 7000}.00",
                "event_acceptance_rate": "0.3100",
                "event_attendance_rate": "0.8200",
                "satisfaction_avg": "4.40",
                "nps": "36.00",
            },
        )
        KpiSnapshot.objects.create(
            month=month, tier_code="STANDARD", figures={"members_total": 900 + index * 30}
        )
        KpiSnapshot.objects.create(
            month=month, tier_code="GOLD", figures={"members_total": 300 + index * 10}
        )
    members = [member(joined=dt.date(2025, 3, 1)) for _ in range(4)]
    member(joined=dt.date(2025, 3, 1), tier=tiers["GOLD"])
    run = TierEvaluationRun.objects.create(
        as_of=dt.date(2026, 11, 30), status="done", finished_at=timezone.now(), upgraded=2
    )
    for holder in members[:2]:
        TierHistory.objects.create(member=holder, to_tier=tiers["GOLD"], reason="upgrade", run=run)
    operator = UserFactory(username="operator", roles=[roles.OPERATIONS])
    adjustment = adjustment_request(
        member=members[0], points=2_500, reason="Goodwill: branch queue", actor=operator
    )
    transaction(members[1], dt.date(2026, 11, 20), status="failed")
    return {"adjustment": adjustment}


def chart_states(page) -> dict[str, dict]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-chart]')].map(box => {
            const canvas = box.querySelector('canvas');
            const chart = canvas && window.Chart ? Chart.getChart(canvas) : null;
            return [box.dataset.chart, {
                chart: !!chart,
                datasets: chart ? chart.data.datasets.length : 0,
                width: canvas ? canvas.getBoundingClientRect().width : 0,
                height: canvas ? canvas.getBoundingClientRect().height : 0,
            }];
        }))"""
    )


def test_a_programme_admin_sees_every_chart_drawn_and_the_requests_waiting(console):
    data = programme()
    admin = UserFactory(username="programme", roles=[roles.PROGRAMME_ADMIN])

    page = console(admin)
    page.get_by_text("Programme overview").wait_for()
    states = chart_states(page)
    assert list(states) == CHARTS
    for key, state in states.items():
        assert state["chart"], key
        assert state["datasets"] >= 1, key
        assert state["width"] > 200, key
        assert state["height"] > 200, key
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    liability = page.locator("[data-card=liability]")
    assert "CNY 198,000.00" in liability.inner_text()
    assert "1" in page.locator("[data-card=approvals]").inner_text()
    assert "Standard" in page.locator("[data-block=tier-migration]").inner_text()
    page.shot("dashboard")

    page.locator("[data-block=approvals] a", has_text="Points adjustment").first.click()
    page.wait_for_url(f"**/admin/points/adjustment/{data['adjustment'].pk}/change/")
    page.get_by_text("Goodwill: branch queue").wait_for()


def test_marketing_sees_event_charts_and_no_ledger_figure(console):
    programme()
    marketing = UserFactory(username="campaigns", roles=[roles.MARKETING])

    page = console(marketing)
    page.get_by_text("Programme overview").wait_for()
    assert list(chart_states(page)) == ["events", "satisfaction"]
    text = page.locator("#dashboard").inner_text()
    for hidden in ("Points liability", "CNY", "Inbox backlog", "Waiting for your approval"):
        assert hidden not in text
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.shot("dashboard-marketing")


def test_a_fresh_install_explains_the_missing_charts(console):
    admin = UserFactory(username="first-admin", roles=[roles.PROGRAMME_ADMIN])

    page = console(admin)
    page.get_by_text("No monthly figures yet").wait_for()
    assert chart_states(page) == {}
    assert page.locator("[data-testid=no-snapshots]").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.shot("dashboard-empty")
