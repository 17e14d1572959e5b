"""The points liability: gross is the ledger's balance at the date times the point value; net
of breakage is estimated per earning cohort from older, resolved cohorts, and equals the figure
computed by hand from a constructed history; the monthly series and the KPIs agree with it."""

import datetime as dt
from decimal import Decimal as D

import pytest

from insights.services.kpis import kpis_compute
from insights.services.liability import (
    Cohort,
    breakage_rate,
    expected_redemptions,
    points_liability,
    points_liability_series,
    ultimate_rates,
)
from loyalty.models import ProgrammeSettings
from tests.insights import kpi_data as k

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    """Jan 2025: 1000 earned, 600 redeemed, 400 expired (resolved). Feb 2025: 500 earned, all
    redeemed (resolved). Sep 2026: 1000 earned, 200 redeemed, 800 held. Oct 2026: 300 held.
    A point is worth 0.50."""
    ProgrammeSettings.objects.update_or_create(pk=1, defaults={"point_value": D("0.50")})
    k.ladder()
    x, y, z, w = (k.member(joined=dt.date(2024, 12, 1)) for _ in range(4))
    k.lot_expires(k.earn(x, 1000, dt.date(2025, 1, 10)), dt.date(2026, 1, 31))
    k.redeem(x, 600, dt.date(2025, 6, 1))
    assert k.expire_due(dt.date(2026, 2, 1)) == {"lots": 1, "points": 400}
    k.earn(y, 500, dt.date(2025, 2, 10))
    k.redeem(y, 500, dt.date(2025, 3, 1))
    k.earn(z, 1000, dt.date(2026, 9, 5))
    k.redeem(z, 200, dt.date(2026, 9, 20))
    k.earn(w, 300, dt.date(2026, 10, 5))


def test_breakage_and_net_liability_equal_the_hand_computed_figures(history):
    # Resolved history: (600 + 500) / (1000 + 500) = 11/15 expected to be redeemed in all.
    # Sep 2026: min(800, 11/15 * 1000 - 200) = 533.33...; Oct 2026: min(300, 11/15 * 300) = 220
    # expected = 753.33...; breakage = 1 - 753.33 / 1100 = 0.3152; net = 0.5 * 753.33.
    figures = points_liability(as_of=dt.date(2026, 10, 31))
    assert figures == {
        "as_of": dt.date(2026, 10, 31),
        "points_outstanding": 1100,
        "points_liability": D("550.00"),
        "points_liability_net": D("376.67"),
        "breakage_rate": D("0.3152"),
    }


def test_the_kpis_carry_the_same_liability(history):
    kpis = kpis_compute(day_from=dt.date(2026, 10, 1), day_to=dt.date(2026, 10, 31))
    assert (kpis["points_liability"], kpis["points_liability_net"], kpis["breakage_rate"]) == (
        D("550.00"),
        D("376.67"),
        D("0.3152"),
    )
    standard = kpis["by_tier"]["STANDARD"]  # everyone holds the lowest tier
    assert standard["points_liability_net"] == D("376.67")


def test_the_monthly_series_gives_each_month_ends_gross_and_net(history):
    series = points_liability_series(
        first_month=dt.date(2026, 9, 1), last_month=dt.date(2026, 10, 9)
    )
    assert series == [
        {
            # 30 Sep: Z's 800 held, W not yet; Sep 2026 expects 533.33 of them
            "month": dt.date(2026, 9, 1),
            "points_outstanding": 800,
            "points_liability": D("400.00"),
            "points_liability_net": D("266.67"),
            "breakage_rate": D("0.3333"),
        },
        {
            "month": dt.date(2026, 10, 1),
            "points_outstanding": 1100,
            "points_liability": D("550.00"),
            "points_liability_net": D("376.67"),
            "breakage_rate": D("0.3152"),
        },
    ]


def test_before_any_points_the_liability_is_zero_and_breakage_null(history):
    assert points_liability(as_of=dt.date(2024, 12, 31)) == {
        "as_of": dt.date(2024, 12, 31),
        "points_outstanding": 0,
        "points_liability": D("0.00"),
        "points_liability_net": D("0.00"),
        "breakage_rate": None,
    }


def test_without_resolved_history_the_observed_rate_is_used():
    # Nothing resolved: of the points that left, 500 were redeemed and 300 expired: 5/8.
    # R = max(5/8, own 500/1000) = 0.625; expected = min(200, 625 - 500) = 125.
    cohorts = [Cohort(month=dt.date(2026, 1, 1), issued=1000, expired=300, outstanding=200)]
    rates = ultimate_rates(cohorts)
    assert rates == {dt.date(2026, 1, 1): D("0.625")}
    assert expected_redemptions(cohorts, rates) == D("125.000")
    assert breakage_rate(cohorts, rates) == D("0.3750")


def test_with_nothing_resolved_at_all_no_breakage_is_assumed():
    cohorts = [Cohort(month=dt.date(2026, 1, 1), issued=100, outstanding=100)]
    rates = ultimate_rates(cohorts)
    assert rates == {dt.date(2026, 1, 1): D(1)}
    assert breakage_rate(cohorts, rates) == D("0.0000")


def test_a_cohort_is_never_expected_to_redeem_less_than_it_already_has():
    # Older resolved cohort: 10% redeemed. The young one already redeemed 50%: R = 0.5.
    cohorts = [
        Cohort(month=dt.date(2025, 1, 1), issued=1000, expired=900),
        Cohort(month=dt.date(2026, 1, 1), issued=1000, outstanding=500),
    ]
    rates = ultimate_rates(cohorts)
    assert rates[dt.date(2026, 1, 1)] == D("0.5")
    assert expected_redemptions(cohorts, rates) == D("0")
    assert breakage_rate(cohorts, rates) == D("1.0000")
