"""The KPIs of a period equal what is computed by hand from a constructed programme: members
who were there, joined, left (also inside the period) or joined later; the ledger's movements
in and around the period; activity, assets, events, feedback and surveys; overall and per tier.
An empty period and one with no member at its start answer null rates."""

import datetime as dt
from decimal import Decimal as D

import pytest

from insights.services.kpis import kpis_compute
from tests.insights import kpi_data as k

# No member holds recommendations here (the uplift is tested with the recommendations).
NO_RECOMMENDATIONS = {
    "recommended_redemption_rate": None,
    "holdout_redemption_rate": None,
    "recommendation_uplift": None,
}

pytestmark = pytest.mark.django_db

OCT_1, OCT_31 = dt.date(2026, 10, 1), dt.date(2026, 10, 31)


@pytest.fixture
def programme():
    """October 2026 (see each line for what it adds to the hand computation)."""
    tiers = k.ladder()
    gold, standard = tiers["GOLD"], None  # no tier state: STANDARD, the lowest active tier
    a = k.member(joined=dt.date(2025, 1, 1), tier=gold)  # at start and end
    b = k.member(joined=dt.date(2025, 6, 1), tier=standard)  # at start and end
    c = k.member(joined=dt.date(2026, 10, 10), tier=standard)  # new, stays
    d = k.member(joined=dt.date(2026, 10, 5), tier=standard)  # new, leaves on 20 Oct
    e = k.member(joined=dt.date(2025, 3, 1), tier=gold)  # at start, leaves on 15 Oct
    f = k.member(joined=dt.date(2025, 2, 1), tier=gold)  # left on 10 Sep: not at start
    k.member(joined=dt.date(2026, 11, 5), tier=standard)  # joins after the period

    # Ledger. A: 400 (lot expiring 30 Sep, expired on 2 Oct), 1000 in Sep, redeems 300 on
    # 5 Oct, a 200 bonus on 10 Oct, 999 after the period. B: earns 500, redeems 100 and is
    # refunded. C: 50. D: 30. E: 100 in August.
    k.lot_expires(k.earn(a, 400, dt.date(2025, 10, 1)), dt.date(2026, 9, 30))
    k.earn(a, 1000, dt.date(2026, 9, 15))
    assert k.expire_due(dt.date(2026, 10, 2)) == {"lots": 1, "points": 400}
    a_redeem = k.redeem(a, 300, dt.date(2026, 10, 5))
    k.earn(a, 200, dt.date(2026, 10, 10), kind="bonus")
    k.earn(a, 999, dt.date(2026, 11, 2))
    k.earn(b, 500, dt.date(2026, 10, 3))
    k.refund(k.redeem(b, 100, dt.date(2026, 10, 12)), dt.date(2026, 10, 13))
    k.earn(c, 50, dt.date(2026, 10, 11))
    k.earn(d, 30, dt.date(2026, 10, 6))
    k.earn(e, 100, dt.date(2026, 8, 1))
    k.close(d, dt.date(2026, 10, 20))
    k.close(e, dt.date(2026, 10, 15))
    k.close(f, dt.date(2026, 9, 10))

    # Activity: A redeemed on 5 Oct, B transacted on 3 Oct; C's transaction is pending and
    # E's was in September.
    k.redemption(a, a_redeem, dt.date(2026, 10, 5))
    k.transaction(b, dt.date(2026, 10, 3))
    k.transaction(c, dt.date(2026, 10, 12), status="pending")
    k.transaction(e, dt.date(2026, 9, 20))

    # Assets: the latest snapshot by 31 Oct of the members at the end (A, B; C has none).
    k.snapshot(a, dt.date(2026, 9, 30), "100000.00", "1000.00")
    k.snapshot(a, dt.date(2026, 10, 31), "120000.00", "1200.00")
    k.snapshot(a, dt.date(2026, 11, 30), "999999.00", "9999.00")
    k.snapshot(b, dt.date(2026, 8, 31), "30000.00", "300.00")
    k.snapshot(e, dt.date(2026, 10, 31), "500000.00", "5000.00")  # closed by then

    # Events: one on 15 Oct, one in November (left out).
    october = k.event(dt.date(2026, 10, 15))
    attended = k.invite(october, a, "attended")
    k.invite(october, b, "accepted")
    no_show = k.invite(october, c, "no_show")
    k.invite(october, d, "declined")
    k.invite(october, e, "invited")
    k.invite(k.event(dt.date(2026, 11, 10)), a, "attended")

    # Scores: feedback 9 (A, rating 4) and 5 (C, rating 2); surveys 10 (B) and 7 (D) in the
    # period, 3 (A) after it, one unanswered.
    k.feedback(attended, rating=4, nps=9, day=dt.date(2026, 10, 16))
    k.feedback(no_show, rating=2, nps=5, day=dt.date(2026, 10, 16))
    k.survey_answer(b, 10, dt.date(2026, 10, 20))
    k.survey_answer(d, 7, dt.date(2026, 10, 21))
    k.survey_answer(a, 3, dt.date(2026, 11, 2))
    k.survey_answer(e, None, None)
    return tiers


def test_each_kpi_of_the_period_equals_the_hand_computed_figure(programme):
    kpis = kpis_compute(day_from=OCT_1, day_to=OCT_31)
    by_tier = kpis.pop("by_tier")
    assert kpis == {
        # start: A, B, E (F closed before); end: A, B, C; new: C, D (D left)
        "members_total": 3,
        "members_new": 2,
        "growth_rate": D("0.6667"),  # 2 / 3
        "members_active": 2,  # A (redemption), B (transaction)
        "retention_rate": D("0.6667"),  # (3 - 1 new still there) / 3
        "avg_aum": D("75000.00"),  # (120000 + 30000) / 2
        "avg_contribution": D("750.00"),
        "points_issued": 780,  # 500 + 50 + 30 + 200 bonus
        "points_redeemed": 300,  # A 300; B 100 refunded
        "points_expired": 400,
        "points_outstanding": 1580,  # A 900, B 500, C 50, D 30, E 100
        "points_liability": D("15.80"),
        # The one resolved cohort (Oct 2025) was redeemed 0%: nothing more is expected.
        "points_liability_net": D("0.00"),
        "breakage_rate": D("1.0000"),
        "redemption_rate": D("0.3846"),  # 300 / 780
        "event_acceptance_rate": D("0.6000"),  # 3 / 5
        "event_attendance_rate": D("0.3333"),  # 1 / 3
        "satisfaction_avg": D("3.00"),  # (4 + 2) / 2
        "nps": D("25.00"),  # promoters 9, 10; detractor 5; passive 7
        **NO_RECOMMENDATIONS,
    }
    assert list(by_tier) == ["STANDARD", "GOLD"]
    assert by_tier["GOLD"] == {
        "members_total": 1,
        "members_new": 0,
        "growth_rate": D("0.0000"),
        "members_active": 1,
        "retention_rate": D("0.5000"),  # A of A, E
        "avg_aum": D("120000.00"),
        "avg_contribution": D("1200.00"),
        "points_issued": 200,
        "points_redeemed": 300,
        "points_expired": 400,
        "points_outstanding": 1000,  # A 900, E 100
        "points_liability": D("10.00"),
        "points_liability_net": D("0.00"),
        "breakage_rate": D("1.0000"),
        "redemption_rate": D("1.5000"),
        "event_acceptance_rate": D("0.5000"),
        "event_attendance_rate": D("1.0000"),
        "satisfaction_avg": D("4.00"),
        "nps": D("100.00"),
        **NO_RECOMMENDATIONS,
    }
    assert by_tier["STANDARD"] == {
        "members_total": 2,
        "members_new": 2,
        "growth_rate": D("2.0000"),
        "members_active": 1,
        "retention_rate": D("1.0000"),  # B of B
        "avg_aum": D("30000.00"),
        "avg_contribution": D("300.00"),
        "points_issued": 580,
        "points_redeemed": 0,
        "points_expired": 0,
        "points_outstanding": 580,
        "points_liability": D("5.80"),
        "points_liability_net": D("0.00"),
        "breakage_rate": D("1.0000"),
        "redemption_rate": D("0.0000"),
        "event_acceptance_rate": D("0.6667"),
        "event_attendance_rate": D("0.0000"),
        "satisfaction_avg": D("2.00"),
        "nps": D("0.00"),  # 10 and 5 (7 passive)
        **NO_RECOMMENDATIONS,
    }


def test_per_tier_counts_and_points_add_up_to_the_programme(programme):
    kpis = kpis_compute(day_from=OCT_1, day_to=OCT_31)
    for key in ("members_total", "members_new", "members_active", "points_issued"):
        assert kpis[key] == sum(tier[key] for tier in kpis["by_tier"].values()), key
    assert kpis["points_outstanding"] == sum(
        tier["points_outstanding"] for tier in kpis["by_tier"].values()
    )


def test_a_period_of_one_day_counts_that_day_in_business_time(programme):
    # 5 October, Asia/Shanghai: A's redemption; D joined.
    kpis = kpis_compute(day_from=dt.date(2026, 10, 5), day_to=dt.date(2026, 10, 5))
    assert (kpis["points_redeemed"], kpis["members_new"], kpis["members_active"]) == (300, 1, 1)


def test_an_empty_period_answers_zero_counts_and_null_rates():
    k.ladder()
    k.member(joined=dt.date(2026, 1, 1))
    kpis = kpis_compute(day_from=dt.date(2020, 3, 1), day_to=dt.date(2020, 3, 31))
    by_tier = kpis.pop("by_tier")
    assert set(by_tier) == {"STANDARD", "GOLD"}
    counts = {key: value for key, value in kpis.items() if isinstance(value, int)}
    assert set(counts.values()) == {0}
    nulls = {key for key, value in kpis.items() if value is None}
    assert nulls == {
        "growth_rate",
        "retention_rate",
        "avg_aum",
        "avg_contribution",
        "breakage_rate",
        "redemption_rate",
        "event_acceptance_rate",
        "event_attendance_rate",
        "satisfaction_avg",
        "nps",
        *NO_RECOMMENDATIONS,
    }
    assert kpis["points_liability"] == kpis["points_liability_net"] == D("0.00")
    assert by_tier["GOLD"] == kpis


def test_a_period_with_no_member_at_its_start_has_null_growth_and_retention():
    tiers = k.ladder()
    first = k.member(joined=dt.date(2026, 10, 3))
    k.member(joined=dt.date(2026, 10, 4), tier=tiers["GOLD"])
    k.earn(first, 100, dt.date(2026, 10, 3))
    kpis = kpis_compute(day_from=OCT_1, day_to=OCT_31)
    assert (kpis["members_total"], kpis["members_new"]) == (2, 2)
    assert kpis["growth_rate"] is None
    assert kpis["retention_rate"] is None
    assert kpis["points_issued"] == 100
    assert kpis["redemption_rate"] == D("0.0000")
    assert kpis["by_tier"]["GOLD"]["members_total"] == 1


def test_members_who_join_and_leave_inside_the_period_are_new_but_not_at_the_end():
    k.ladder()
    k.member(joined=dt.date(2026, 9, 1))
    k.member(joined=dt.date(2026, 9, 2))
    gone = k.member(joined=dt.date(2026, 10, 2))
    k.close(gone, dt.date(2026, 10, 30))
    kept = k.member(joined=dt.date(2026, 10, 3))
    late_closed = k.member(joined=dt.date(2026, 10, 4))
    k.close(late_closed, dt.date(2026, 11, 1), hour=0)  # just after the period (Shanghai)
    kpis = kpis_compute(day_from=OCT_1, day_to=OCT_31)
    assert kept
    assert (kpis["members_total"], kpis["members_new"]) == (4, 3)
    assert kpis["growth_rate"] == D("1.5000")  # 3 / 2
    assert kpis["retention_rate"] == D("1.0000")  # (4 - 2 new still there) / 2


def test_rates_are_decimals_never_floats(programme):
    kpis = kpis_compute(day_from=OCT_1, day_to=OCT_31)
    for group in (kpis, *kpis["by_tier"].values()):
        for key, value in group.items():
            if key != "by_tier":
                assert isinstance(value, int | D | None), (key, value)
                assert not isinstance(value, float), key
