"""The console's dashboard (insights.dashboard): its figures equal hand-computed values on
constructed data, each block only for a user who may view its models, and a number of
statements that does not grow with the members."""

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from insights.dashboard import dashboard_callback
from insights.models import KpiSnapshot
from loyalty import roles
from loyalty.selectors import programme_settings_get
from members.models import Member, TierEvaluationRun, TierHistory
from members.services.overrides import tier_override_request
from points.models import Transaction
from points.services.adjustments import adjustment_request
from tests.factories import UserFactory
from tests.insights.kpi_data import close, ladder, member, transaction

pytestmark = pytest.mark.django_db


def dashboard_for(user) -> dict:
    request = RequestFactory().get("/admin/")
    request.user = user
    return dashboard_callback(request, {})["dashboard"]


def cards(dashboard: dict) -> dict[str, dict]:
    return {card["key"]: card for card in dashboard["cards"]}


def charts(dashboard: dict) -> dict[str, dict]:
    return {chart["key"]: json.loads(chart["data"]) for chart in dashboard["charts"]}


def user_with(*perms: str) -> Any:
    user: Any = UserFactory()
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    return user


def kpi_snapshot(month: dt.date, tier_code: str = "", **figures) -> KpiSnapshot:
    return KpiSnapshot.objects.create(
        month=month, tier_code=tier_code, figures={k: str(v) for k, v in figures.items()}
    )


def two_months() -> None:
    """October and November 2026, overall and per tier."""
    kpi_snapshot(
        dt.date(2026, 10, 1),
        members_total=5,
        members_new=2,
        retention_rate="0.9000",
        growth_rate="0.5000",
        points_issued=1_234_567,
        points_redeemed=1_000,
        points_expired=10,
        points_liability="12345.67",
        points_liability_net="11000.00",
        event_attendance_rate="0.7500",
        event_acceptance_rate="0.2000",
        satisfaction_avg="4.50",
        nps="20.00",
    )
    kpi_snapshot(dt.date(2026, 10, 1), "STANDARD", members_total=3)
    kpi_snapshot(dt.date(2026, 10, 1), "GOLD", members_total=2)
    kpi_snapshot(
        dt.date(2026, 11, 1),
        members_total=6,
        members_new=1,
        retention_rate="1.0000",
        growth_rate="0.2000",
        points_issued=2_000,
        points_redeemed=500,
        points_expired=0,
        points_liability="2345678.90",
        points_liability_net="2000000.00",
        event_attendance_rate="0.5000",
        event_acceptance_rate="0.1000",
    )
    kpi_snapshot(dt.date(2026, 11, 1), "STANDARD", members_total=4)
    kpi_snapshot(dt.date(2026, 11, 1), "GOLD", members_total=2)


# --- Members ---------------------------------------------------------------------------


def test_members_per_tier_counts_current_tiers_and_leaves_out_the_closed():
    tiers = ladder()
    for _ in range(3):
        member(joined=dt.date(2025, 1, 1), tier=tiers["GOLD"])
    member(joined=dt.date(2025, 1, 1))  # no tier state: the lowest tier
    member(joined=dt.date(2025, 1, 1), tier=tiers["STANDARD"])
    close(member(joined=dt.date(2025, 1, 1), tier=tiers["GOLD"]), dt.date(2026, 1, 5))
    member(joined=dt.date(2025, 1, 1), status=Member.Status.FROZEN)

    dashboard = dashboard_for(UserFactory(roles=[roles.PROGRAMME_ADMIN]))

    assert dashboard["members_table"]["rows"] == [
        ["Standard", "3", "50.0%"],
        ["Gold", "3", "50.0%"],
    ]
    assert cards(dashboard)["members"]["value"] == "6"


def test_members_per_tier_over_time_and_retention_come_from_the_snapshots():
    ladder()
    two_months()

    dashboard = dashboard_for(UserFactory(roles=[roles.PROGRAMME_ADMIN]))

    series = charts(dashboard)
    assert series["members_by_tier"]["labels"] == ["Oct 2026", "Nov 2026"]
    assert {d["label"]: d["data"] for d in series["members_by_tier"]["datasets"]} == {
        "Standard": [3, 4],
        "Gold": [2, 2],
    }
    retention = {d["label"]: d["data"] for d in series["retention"]["datasets"]}
    assert retention["Retention (%)"] == ["90.0", "100.0"]
    assert retention["Growth (%)"] == ["50.0", "20.0"]
    assert cards(dashboard)["retention"]["value"] == "100.0%"
    assert cards(dashboard)["members"]["detail"] == "1 joined in November 2026"


def test_only_the_latest_twelve_months_are_charted():
    ladder()
    for month in range(1, 13):
        kpi_snapshot(dt.date(2025, month, 1), points_issued=month)
    kpi_snapshot(dt.date(2026, 1, 1), points_issued=13)

    series = charts(dashboard_for(UserFactory(roles=[roles.PROGRAMME_ADMIN])))

    issued = next(d for d in series["points_flow"]["datasets"] if d["label"] == "Issued")
    assert issued["data"] == list(range(2, 14))
    assert series["points_flow"]["labels"][0] == "Feb 2025"


# --- Points ----------------------------------------------------------------------------


def test_points_series_and_liability_in_the_programme_currency():
    ladder()
    two_months()
    settings = programme_settings_get()
    settings.currency = "HKD"
    settings.save()

    dashboard = dashboard_for(UserFactory(roles=[roles.PROGRAMME_ADMIN]))

    flow = {d["label"]: d["data"] for d in charts(dashboard)["points_flow"]["datasets"]}
    assert flow == {"Issued": [1_234_567, 2_000], "Redeemed": [1_000, 500], "Expired": [10, 0]}
    liability = {d["label"]: d["data"] for d in charts(dashboard)["liability"]["datasets"]}
    assert liability == {
        "Gross": ["12345.67", "2345678.90"],
        "Net of breakage": ["11000.00", "2000000.00"],
    }
    card = cards(dashboard)["liability"]
    assert card["value"] == "HKD 2,345,678.90"
    assert card["detail"] == "Net of breakage HKD 2,000,000.00, end of November 2026"


def test_inbox_backlog_and_failures():
    holder = member(joined=dt.date(2025, 1, 1))
    day = dt.date(2026, 11, 2)
    for index in range(2):
        transaction(holder, day, status="pending", amount=f"{index + 1}.00")
    transaction(holder, day, status="parked")
    transaction(holder, day, status="processed")
    failed = [transaction(holder, day, status="failed", amount=f"{i + 1}.00") for i in range(3)]
    long_ago = timezone.now() - dt.timedelta(days=10)
    Transaction.objects.filter(pk=failed[0].pk).update(received_at=long_ago)
    Transaction.objects.filter(status="pending").update(received_at=long_ago)

    dashboard = dashboard_for(UserFactory(roles=[roles.OPERATIONS]))

    assert [row[:2] for row in dashboard["inbox"]["rows"]] == [
        ("Pending", "2"),
        ("Waiting for the original", "1"),
        ("Failed", "3"),
        ("Failed in the last 7 days", "2"),
    ]
    card = cards(dashboard)["inbox"]
    assert (card["value"], card["detail"], card["alert"]) == (
        "3",
        "3 failed, 2 in the last 7 days",
        "danger",
    )
    assert card["href"].endswith("?status__exact=failed")
    assert dashboard["inbox"]["oldest"]


# --- Waiting for me --------------------------------------------------------------------


def requests_by(requester, *, tiers, count: int) -> None:
    for index in range(count):
        holder = member(joined=dt.date(2025, 1, 1))
        adjustment_request(member=holder, points=100 + index, reason="Goodwill", actor=requester)
        tier_override_request(
            member=holder,
            tier=tiers["GOLD"],
            reason="Retention offer",
            expires_at=timezone.now() + dt.timedelta(days=90),
            actor=requester,
        )


def test_waiting_for_me_lists_what_others_asked_and_never_my_own_requests():
    tiers = ladder()
    me = UserFactory(username="checker", roles=[roles.APPROVER])
    operator = UserFactory(username="operator", roles=[roles.OPERATIONS])
    requests_by(operator, tiers=tiers, count=2)
    requests_by(me, tiers=tiers, count=1)  # a checker who asked for something themselves

    dashboard = dashboard_for(me)

    approvals = dashboard["approvals"]
    assert approvals["total"] == 4
    kinds = [str(row[0]) for row in approvals["table"]["rows"]]
    assert sum("Points adjustment" in kind for kind in kinds) == 2
    assert sum("Tier override" in kind for kind in kinds) == 2
    assert {row[3] for row in approvals["table"]["rows"]} == {"operator"}
    assert "/admin/points/adjustment/" in kinds[0]
    assert cards(dashboard)["approvals"]["value"] == "4"
    # The other checker sees all six.
    assert dashboard_for(UserFactory(roles=[roles.APPROVER]))["approvals"]["total"] == 6


def test_waiting_for_me_counts_beyond_the_rows_shown():
    tiers = ladder()
    operator = UserFactory(roles=[roles.OPERATIONS])
    requests_by(operator, tiers=tiers, count=12)

    approvals = dashboard_for(UserFactory(roles=[roles.APPROVER]))["approvals"]

    assert approvals["total"] == 24
    assert len(approvals["table"]["rows"]) == 20  # ten of each, oldest first


def test_waiting_for_me_is_absent_for_a_role_without_the_approve_permission():
    tiers = ladder()
    requests_by(UserFactory(roles=[roles.OPERATIONS]), tiers=tiers, count=2)

    dashboard = dashboard_for(UserFactory(roles=[roles.OPERATIONS]))

    assert "approvals" not in dashboard
    assert "approvals" not in cards(dashboard)


def test_waiting_for_me_with_only_one_approve_permission_lists_only_that_kind():
    tiers = ladder()
    requests_by(UserFactory(roles=[roles.OPERATIONS]), tiers=tiers, count=2)

    dashboard = dashboard_for(user_with("points.approve_adjustment", "points.view_adjustment"))

    rows = dashboard["approvals"]["table"]["rows"]
    assert len(rows) == 2
    assert all("Points adjustment" in str(row[0]) for row in rows)


# --- Tier moves ------------------------------------------------------------------------


def test_tier_migration_matrix_of_the_latest_finished_run():
    tiers = ladder()
    standard, gold = tiers["STANDARD"], tiers["GOLD"]
    old = TierEvaluationRun.objects.create(
        as_of=dt.date(2026, 9, 30), status="done", finished_at=timezone.now() - dt.timedelta(30)
    )
    latest = TierEvaluationRun.objects.create(
        as_of=dt.date(2026, 10, 31),
        status="done",
        finished_at=timezone.now(),
        upgraded=3,
        downgraded=1,
        unchanged=1_234,
    )
    TierEvaluationRun.objects.create(as_of=dt.date(2026, 11, 30), status="failed")
    members = [member(joined=dt.date(2025, 1, 1)) for _ in range(6)]
    for holder in members[:2]:  # no tier state before: from the lowest tier
        TierHistory.objects.create(
            member=holder, from_tier=None, to_tier=gold, reason="upgrade", run=latest
        )
    TierHistory.objects.create(
        member=members[2], from_tier=standard, to_tier=gold, reason="upgrade", run=latest
    )
    TierHistory.objects.create(
        member=members[3], from_tier=gold, to_tier=standard, reason="downgrade", run=latest
    )
    for holder in members[4:]:
        TierHistory.objects.create(
            member=holder, from_tier=gold, to_tier=standard, reason="downgrade", run=old
        )

    migration = dashboard_for(UserFactory(roles=[roles.PROGRAMME_ADMIN]))["migration"]

    cells = [[str(cell) for cell in row] for row in migration["table"]["rows"]]
    assert "Standard" in cells[0][0]
    assert ">3<" in cells[0][2]  # two without a state, one from Standard
    assert "green" in cells[0][2]
    assert "Gold" in cells[1][0]
    assert ">1<" in cells[1][1]
    assert "red" in cells[1][1]
    assert "—" in cells[0][1]  # staying is not a move
    assert "—" in cells[1][2]
    assert migration["summary"] == (
        "Evaluation as of Oct. 31, 2026: 3 upgraded, 1 downgraded, 1,234 unchanged."
    )


def test_no_finished_run_says_so():
    ladder()
    TierEvaluationRun.objects.create(as_of=dt.date(2026, 11, 30), status="running")

    assert dashboard_for(UserFactory(roles=[roles.PROGRAMME_ADMIN]))["migration"] == {"empty": True}


# --- Permissions -----------------------------------------------------------------------


def test_marketing_sees_events_but_no_ledger_member_or_inbox_figures(client):
    ladder()
    two_months()
    marketing = UserFactory(roles=[roles.MARKETING])

    dashboard = dashboard_for(marketing)

    assert set(cards(dashboard)) == {"events"}
    assert set(charts(dashboard)) == {"events", "satisfaction"}
    for block in ("members_table", "migration", "inbox", "approvals"):
        assert block not in dashboard
    client.force_login(marketing)
    page = client.get("/admin/").content.decode()
    assert "Event acceptance and attendance per month" in page
    for hidden in ("Points liability", "12,345", "Inbox backlog", "Members per tier"):
        assert hidden not in page


def test_each_block_needs_its_own_view_permission():
    ladder()
    two_months()

    ledger_only = dashboard_for(user_with("insights.view_kpisnapshot", "points.view_entry"))
    assert set(cards(ledger_only)) == {"liability"}
    assert set(charts(ledger_only)) == {"points_flow", "liability"}

    # Ledger permission without the snapshots' permission: no monthly figure at all.
    no_snapshots = dashboard_for(user_with("points.view_entry", "members.view_member"))
    assert set(cards(no_snapshots)) == {"members"}
    assert charts(no_snapshots) == {}

    ratings_only = dashboard_for(user_with("insights.view_kpisnapshot", "events.view_feedback"))
    assert set(charts(ratings_only)) == {"satisfaction"}
    datasets = charts(ratings_only)["satisfaction"]["datasets"]
    assert [d["label"] for d in datasets] == ["Event rating (1-5)"]  # NPS needs surveys too
    assert cards(ratings_only)["events"]["title"] == "Event satisfaction"

    nothing = dashboard_for(UserFactory())
    assert (nothing["cards"], nothing["charts"], nothing["anything"]) == ([], [], False)


# --- Empty install, cost ---------------------------------------------------------------


def test_a_fresh_install_renders_with_explanations(client):
    client.force_login(UserFactory(roles=[roles.PROGRAMME_ADMIN]))

    response = client.get("/admin/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "No monthly figures yet" in page
    assert "No tier evaluation has finished yet" in page
    assert "Nothing is waiting for you" in page
    assert "Nothing is waiting to be processed" in page
    assert 'class="chart"' not in page


def populate(*, members: int, tiers) -> None:
    operator = UserFactory(roles=[roles.OPERATIONS])
    requests_by(operator, tiers=tiers, count=members // 4 + 1)
    for index in range(members):
        holder = member(joined=dt.date(2025, 1, 1), tier=tiers["GOLD"] if index % 2 else None)
        transaction(holder, dt.date(2026, 11, 2), status=["pending", "failed"][index % 2])
    run = TierEvaluationRun.objects.filter(status="done").first() or (
        TierEvaluationRun.objects.create(
            as_of=dt.date(2026, 10, 31), status="done", finished_at=timezone.now()
        )
    )
    for holder in Member.objects.filter(tier_history__isnull=True)[: members // 2]:
        TierHistory.objects.create(member=holder, to_tier=tiers["GOLD"], reason="upgrade", run=run)


def test_the_number_of_statements_does_not_grow_with_the_members(
    client, django_assert_max_num_queries
):
    tiers = ladder()
    two_months()
    client.force_login(UserFactory(roles=[roles.PROGRAMME_ADMIN]))
    populate(members=4, tiers=tiers)
    client.get("/admin/")  # sessions, permissions cached per request anyway
    with CaptureQueriesContext(connection) as few:
        assert client.get("/admin/").status_code == 200

    populate(members=60, tiers=tiers)
    for month in range(1, 10):
        kpi_snapshot(dt.date(2026, month, 1), members_total=month, points_issued=month)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/admin/")

    assert response.status_code == 200
    assert len(json.loads(response.context["dashboard"]["charts"][0]["data"])["labels"]) == 11
    assert response.context["dashboard"]["approvals"]["total"] > 20


def test_figures_are_formatted_for_people():
    ladder()
    two_months()
    KpiSnapshot.objects.filter(tier_code="", month=dt.date(2026, 11, 1)).update(
        figures={"members_new": 12_345, "retention_rate": "0.98765"}
    )

    dashboard = dashboard_for(UserFactory(roles=[roles.PROGRAMME_ADMIN]))

    assert cards(dashboard)["members"]["detail"] == "12,345 joined in November 2026"
    assert cards(dashboard)["retention"]["value"] == "98.8%"
    assert cards(dashboard)["liability"]["value"] == "—"  # not in that snapshot
