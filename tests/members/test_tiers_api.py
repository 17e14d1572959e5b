"""The tiers endpoints: who may call them, what they answer, and 4xx problems for bad input."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from members.models import Message, TierBenefit, TierEvaluationRun, TierOverride
from tests.factories import MemberFactory
from tests.members.tier_helpers import (
    AS_OF,
    evaluate,
    ladder,
    members_state,
    month_ends,
    snapshots,
    tier_of,
)

pytestmark = pytest.mark.django_db

NOV = dt.date(2026, 11, 30)


@pytest.fixture
def tiers():
    tiers = ladder()
    TierBenefit.objects.create(
        tier=tiers["GOLD"],
        kind=TierBenefit.Kind.FEE_WAIVER,
        text_en="No transfer fees",
        text_zh_hans="免转账手续费",
    )
    return tiers


def _problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    return body


@pytest.fixture
def evaluated(tiers):
    """A Gold member, an evaluation behind them, and a member who qualifies for Platinum now
    but has not been evaluated since: a request that ran an evaluation would move them."""
    gold = MemberFactory()
    snapshots(gold, "150000.00")
    evaluate()
    waiting = MemberFactory()
    snapshots(waiting, "600000.00")
    assert (tier_of(gold), tier_of(waiting)) == ("GOLD", "STANDARD")
    return gold, waiting


# --- GET /api/v1/tiers/ -------------------------------------------------------------------


def test_members_and_staff_see_the_ladder_by_rank_with_money_as_strings(
    tiers, member_client, staff_client
):
    for client in (member_client(), staff_client("marketing"), staff_client("operations")):
        response = client.get("/api/v1/tiers/")
        assert response.status_code == 200, response.content
        results = response.json()["results"]
        assert [t["code"] for t in results] == [
            "STANDARD",
            "GOLD",
            "PLATINUM",
            "DIAMOND",
            "PRIVATE",
        ]
        gold = results[1]
        assert gold["min_avg_aum"] == "100000.00"
        assert gold["min_contribution"] == "2000.00"
        assert gold["multiplier"] == "1.20"
        assert gold["benefits"] == [{"kind": "fee_waiver", "text": "No transfer fees"}]
        assert results[0]["min_avg_aum"] is None


def test_tier_names_follow_accept_language(tiers, member_client):
    response = member_client().get("/api/v1/tiers/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    gold = response.json()["results"][1]
    assert gold["name"] == "GOLD-中文"
    assert gold["benefits"][0]["text"] == "免转账手续费"


def test_the_ladder_needs_a_token(tiers, api):
    _problem(api.get("/api/v1/tiers/"), 401, "not_authenticated")


# --- evaluation runs ----------------------------------------------------------------------


def test_programme_admin_starts_a_run_and_follows_it(
    tiers, admin_api, django_capture_on_commit_callbacks
):
    member = MemberFactory()
    snapshots(member, "600000.00")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(
            "/api/v1/tiers/evaluate/", {"as_of": AS_OF.isoformat()}, format="json"
        )
    assert response.status_code == 202, response.content
    run_id = response.json()["run_id"]
    run = admin_api.get(f"/api/v1/tiers/runs/{run_id}/").json()
    assert run["status"] == "done"
    assert (run["total"], run["processed"], run["upgraded"], run["unchanged"]) == (1, 1, 1, 0)
    assert admin_api.get("/api/v1/tiers/runs/").json()["results"][0]["run_id"] == run_id


def test_evaluate_defaults_to_the_end_of_the_previous_month(tiers, admin_api, business_clock):
    response = admin_api.post("/api/v1/tiers/evaluate/", {}, format="json")
    assert response.status_code == 202, response.content
    expected = business_clock.today.replace(day=1) - dt.timedelta(days=1)
    assert response.json()["as_of"] == expected.isoformat()
    assert TierEvaluationRun.objects.get().as_of == expected


def test_a_second_request_while_a_run_is_queued_is_told_which_run(evaluated, admin_api):
    first = admin_api.post("/api/v1/tiers/evaluate/", {}, format="json").json()
    before = members_state(*evaluated)
    body = _problem(
        admin_api.post("/api/v1/tiers/evaluate/", {}, format="json"), 409, "evaluation_running"
    )
    assert body["run_id"] == first["run_id"]
    assert members_state(*evaluated) == before
    assert TierEvaluationRun.objects.filter(status="queued").count() == 1


@pytest.mark.parametrize("role", ["operations", "marketing", "approver", "integration"])
def test_only_programme_admin_may_start_a_run(evaluated, staff_client, role):
    client = staff_client(role)
    before = members_state(*evaluated)
    _problem(client.post("/api/v1/tiers/evaluate/", {}, format="json"), 403, "permission_denied")
    assert members_state(*evaluated) == before


def test_members_cannot_start_or_read_runs(evaluated, member_client):
    client = member_client(evaluated[1])
    before = members_state(*evaluated)
    _problem(client.post("/api/v1/tiers/evaluate/", {}, format="json"), 403, "permission_denied")
    _problem(client.get(f"/api/v1/tiers/runs/{uuid.uuid4()}/"), 403, "permission_denied")
    assert members_state(*evaluated) == before


def test_an_unknown_run_answers_404(tiers, admin_api):
    _problem(admin_api.get(f"/api/v1/tiers/runs/{uuid.uuid4()}/"), 404, "not_found")
    _problem(admin_api.get("/api/v1/tiers/runs/not-a-uuid/"), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (lambda today: {"as_of": "2026-13-45"}, "as_of", "invalid"),
        (lambda today: {"as_of": str(today + dt.timedelta(days=1))}, "as_of", "future_date"),
        (lambda today: {"as_of": 20261031}, "as_of", "invalid"),
        (lambda today: {"asof": "2026-10-31"}, "asof", "unknown_field"),
    ],
    ids=["not_a_date", "tomorrow", "a_number", "misspelt"],
)
def test_evaluate_with_bad_input_answers_field_errors(
    evaluated, admin_api, business_clock, body, field, code
):
    before = members_state(*evaluated)
    problem = _problem(
        admin_api.post("/api/v1/tiers/evaluate/", body(business_clock.today), format="json"),
        400,
        "validation_error",
    )
    assert {"field": field, "code": code} in [
        {"field": e["field"], "code": e["code"]} for e in problem["errors"]
    ]
    assert members_state(*evaluated) == before


def test_evaluate_as_of_today_is_accepted(tiers, admin_api, business_clock):
    """The boundary of the refusal above: today is not in the future."""
    today = business_clock.today.isoformat()
    response = admin_api.post("/api/v1/tiers/evaluate/", {"as_of": today}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["as_of"] == today


def test_evaluate_with_a_body_that_is_not_an_object_is_a_4xx(evaluated, admin_api):
    before = members_state(*evaluated)
    response = admin_api.post("/api/v1/tiers/evaluate/", [1, 2], format="json")
    _problem(response, 400, "validation_error")
    response = admin_api.post(
        "/api/v1/tiers/evaluate/", "{not json", content_type="application/json"
    )
    _problem(response, 400, "parse_error")
    assert members_state(*evaluated) == before


def test_evaluate_without_tiers_is_a_conflict(admin_api):
    member = MemberFactory()
    snapshots(member, "600000.00")
    before = members_state(member)
    _problem(admin_api.post("/api/v1/tiers/evaluate/", {}, format="json"), 409, "no_active_tiers")
    assert members_state(member) == before
    assert not TierEvaluationRun.objects.exists()


# --- simulator ----------------------------------------------------------------------------


def test_simulate_answers_counts_and_moves_and_changes_nothing(tiers, admin_api):
    members = [MemberFactory() for _ in range(3)]
    for member, aum in zip(members, ("0", "60000", "150000"), strict=True):
        snapshots(member, aum)
    before = members_state(*members)
    response = admin_api.post(
        "/api/v1/tiers/simulate/",
        {"as_of": AS_OF.isoformat(), "tiers": [{"code": "GOLD", "min_avg_aum": "50000.00"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["members"] == 3
    assert body["moves"] == {"up": 2, "down": 0, "same": 1}
    gold = next(t for t in body["tiers"] if t["code"] == "GOLD")
    assert (gold["members"], gold["min_avg_aum"]) == (2, "50000.00")
    # Nothing changed: no run, no tier, no message, the ladder's thresholds as they were.
    assert members_state(*members) == before
    assert before["tiers"] == dict.fromkeys((m.customer_no for m in members), "STANDARD")


@pytest.mark.parametrize(
    ("tiers_payload", "field", "code"),
    [
        ([{"code": "NOPE"}], "tiers.0.code", "unknown_tier"),
        ([{"code": "GOLD", "min_avg_aum": "-1"}], "tiers.0.min_avg_aum", "min_value"),
        ([{"code": "GOLD", "min_avg_aum": "abc"}], "tiers.0.min_avg_aum", "invalid"),
        ([{"code": "GOLD", "min_avg_aum": "1e30"}], "tiers.0.min_avg_aum", "invalid"),
        ([{"code": "GOLD", "min_avg_aum": "1" * 20}], "tiers.0.min_avg_aum", "max_digits"),
        ([{"code": "GOLD", "rule": "maybe"}], "tiers.0.rule", "invalid_choice"),
        ([{"code": "GOLD", "window_months": 0}], "tiers.0.window_months", "min_value"),
        ([{"code": "GOLD"}, {"code": "GOLD"}], "tiers.1.code", "duplicate"),
        ([{"code": "GOLD", "colour": "red"}], "tiers.0.colour", "unknown_field"),
        ("GOLD", "tiers", "not_a_list"),
    ],
)
def test_simulate_with_bad_input_answers_field_errors(
    evaluated, admin_api, tiers_payload, field, code
):
    before = members_state(*evaluated)
    problem = _problem(
        admin_api.post("/api/v1/tiers/simulate/", {"tiers": tiers_payload}, format="json"),
        400,
        "validation_error",
    )
    assert (field, code) in [(e["field"], e["code"]) for e in problem["errors"]], problem
    assert members_state(*evaluated) == before


def test_simulate_needs_the_tier_configuration_permission(evaluated, staff_client, member_client):
    clients = (staff_client("operations"), staff_client("marketing"), member_client(evaluated[1]))
    before = members_state(*evaluated)
    for client in clients:
        _problem(
            client.post("/api/v1/tiers/simulate/", {}, format="json"), 403, "permission_denied"
        )
    assert members_state(*evaluated) == before


# --- /api/v1/me/tier/ and /api/v1/me/ ------------------------------------------------------


def test_me_tier_shows_gaps_to_the_next_tier(tiers, member_client, business_clock):
    member = MemberFactory()
    snapshots(member, "418000.00", contribution="100.00")
    evaluate()
    body = member_client(member).get("/api/v1/me/tier/").json()
    assert body["tier"] == {"code": "GOLD", "name": "Gold"}
    assert body["multiplier"] == "1.20"
    assert body["benefits"] == [{"kind": "fee_waiver", "text": "No transfer fees"}]
    assert body["next_tier"]["code"] == "PLATINUM"
    assert body["next_tier"]["aum_gap"] == "82000.00"
    assert body["next_tier"]["contribution_gap"] == "9700.00"
    assert body["downgrade_warning"] is None
    assert body["since"] == business_clock.today.isoformat()


def test_me_tier_rounds_a_gap_up_to_the_cent(tiers, member_client):
    member = MemberFactory()
    snapshots(member, "99999.99", dates=month_ends(AS_OF)[:1])
    snapshots(member, "100000.00", dates=month_ends(AS_OF)[1:])  # average 99,999.9966...
    body = member_client(member).get("/api/v1/me/tier/").json()
    assert body["tier"]["code"] == "STANDARD"
    assert body["next_tier"]["aum_gap"] == "0.01"
    assert body["since"] == member.joined_at.isoformat()


def test_me_tier_warns_inside_the_grace_periods(tiers, member_client):
    member = MemberFactory()
    snapshots(member, "600000.00")
    evaluate()
    snapshots(member, "1000.00", dates=month_ends(NOV))
    evaluate(as_of=NOV)
    body = member_client(member).get("/api/v1/me/tier/").json()
    assert body["tier"]["code"] == "PLATINUM"
    warning = body["downgrade_warning"]
    assert warning["failing_evaluations"] == 1
    assert warning["evaluations_left"] == 1
    assert warning["qualified_tier"]["code"] == "STANDARD"
    assert "Platinum" in warning["detail"]


def test_the_top_tier_has_no_next_tier(tiers, member_client):
    member = MemberFactory()
    snapshots(member, "20000000.00")
    evaluate()
    assert member_client(member).get("/api/v1/me/tier/").json()["next_tier"] is None


def test_me_includes_the_tier(tiers, member_client):
    body = member_client().get("/api/v1/me/").json()
    assert body["tier"] == {"code": "STANDARD", "name": "Standard"}


def test_staff_cannot_use_me_tier(tiers, admin_api):
    _problem(admin_api.get("/api/v1/me/tier/"), 403, "permission_denied")


def test_member_messages_list_the_tier_change(tiers, member_client):
    member = MemberFactory(preferred_language="en")
    snapshots(member, "150000.00")
    evaluate()
    results = member_client(member).get("/api/v1/me/messages/").json()["results"]
    assert [m["kind"] for m in results] == ["tier_change"]
    assert "Gold" in results[0]["title"]


# --- staff member views -------------------------------------------------------------------


def test_staff_member_detail_has_tier_and_history(tiers, staff_client):
    member = MemberFactory()
    snapshots(member, "150000.00")
    evaluate()
    body = staff_client("operations").get(f"/api/v1/members/{member.customer_no}/").json()
    assert body["tier"]["code"] == "GOLD"
    assert body["tier"]["multiplier"] == "1.20"
    assert body["tier_history"][0]["from_tier"] == "STANDARD"
    assert body["tier_history"][0]["to_tier"] == "GOLD"
    assert body["tier_history"][0]["avg_aum"] == "150000.00"


def test_member_list_filters_by_tier(tiers, staff_client):
    gold, standard = MemberFactory(), MemberFactory()
    snapshots(gold, "150000.00")
    evaluate()
    client = staff_client("operations")
    by_tier = {
        code: [
            m["customer_no"] for m in client.get(f"/api/v1/members/?tier={code}").json()["results"]
        ]
        for code in ("GOLD", "STANDARD", "DIAMOND")
    }
    assert by_tier == {
        "GOLD": [gold.customer_no],
        "STANDARD": [standard.customer_no],
        "DIAMOND": [],
    }


# --- overrides ----------------------------------------------------------------------------


def _override_body(member, **changes):
    body = {
        "customer_no": member.customer_no,
        "tier": "DIAMOND",
        "reason": "Retention: competitor offer",
        "expires_at": (timezone.now() + dt.timedelta(days=90)).isoformat(),
    }
    body.update(changes)
    return body


def _override_request(client, member, **changes) -> str:
    """A pending override of ``member`` to Diamond requested by ``client``: its id."""
    created = client.post(
        "/api/v1/tiers/overrides/", _override_body(member, **changes), format="json"
    )
    assert created.status_code == 201, created.content
    return created.json()["id"]


def test_override_maker_checker_over_the_api(tiers, staff_client, member_client):
    member = MemberFactory()
    maker = staff_client("operations")
    checker = staff_client("approver")
    created = maker.post("/api/v1/tiers/overrides/", _override_body(member), format="json")
    assert created.status_code == 201, created.content
    override = created.json()
    assert override["status"] == "pending"
    assert member_client(member).get("/api/v1/me/tier/").json()["tier"]["code"] == "STANDARD"

    approved = checker.post(f"/api/v1/tiers/overrides/{override['id']}/approve/", {}, format="json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "approved"
    me = member_client(member).get("/api/v1/me/tier/").json()
    assert me["tier"]["code"] == "DIAMOND"
    assert me["override_until"] is not None
    assert Message.objects.filter(member=member, kind="tier_change").count() == 1
    before = members_state(member)
    _problem(
        checker.post(f"/api/v1/tiers/overrides/{override['id']}/reject/", {}, format="json"),
        409,
        "override_not_pending",
    )
    # The decided override stays approved, the member stays in its tier.
    assert members_state(member) == before
    assert TierOverride.objects.get(id=override["id"]).status == "approved"


def test_the_requester_cannot_approve_their_own_override(evaluated, staff_client):
    member = evaluated[0]
    both_roles = staff_client("operations", "approver")
    override_id = _override_request(both_roles, member)
    before = members_state(*evaluated)
    for action in ("approve", "reject"):
        _problem(
            both_roles.post(f"/api/v1/tiers/overrides/{override_id}/{action}/", {}, format="json"),
            403,
            "four_eyes_required",
        )
    assert members_state(*evaluated) == before
    assert TierOverride.objects.get(id=override_id).status == "pending"
    assert before["tiers"][member.customer_no] == "GOLD"


def test_the_database_refuses_self_approval_too(tiers):
    from django.db import IntegrityError, transaction

    from tests.factories import UserFactory

    user = UserFactory()
    override = TierOverride.objects.create(
        member=MemberFactory(),
        tier=tiers["GOLD"],
        reason="x",
        expires_at=timezone.now() + dt.timedelta(days=1),
        requested_by=user,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        TierOverride.objects.filter(pk=override.pk).update(decided_by=user, status="approved")
    override.refresh_from_db()
    assert (override.status, override.decided_by, override.decided_at) == ("pending", None, None)


def test_a_rejected_override_changes_nothing(evaluated, staff_client):
    member = evaluated[0]
    override_id = _override_request(staff_client("operations"), member)
    before = members_state(*evaluated)
    response = staff_client("approver").post(
        f"/api/v1/tiers/overrides/{override_id}/reject/",
        {"note": "Not justified"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "rejected"
    # Only the override's own row records the decision; the member's tier, state, history and
    # messages are as they were.
    after = members_state(*evaluated)
    assert (
        after["tiers"]
        == before["tiers"]
        == {
            evaluated[0].customer_no: "GOLD",
            evaluated[1].customer_no: "STANDARD",
        }
    )
    for label in ("members.MemberTier", "members.TierHistory", "members.Member"):
        assert after["rows"][label] == before["rows"][label], label
    for label in ("members.Message", "members.TierOverride"):
        assert after["counts"][label] == before["counts"][label], label
    override = TierOverride.objects.get(id=override_id)
    assert (override.status, override.decision_note) == ("rejected", "Not justified")


def test_one_pending_override_per_member(evaluated, staff_client):
    member = evaluated[0]
    maker = staff_client("operations")
    first = _override_request(maker, member)
    before = members_state(*evaluated)
    _problem(
        maker.post("/api/v1/tiers/overrides/", _override_body(member), format="json"),
        409,
        "override_pending",
    )
    assert members_state(*evaluated) == before
    assert list(TierOverride.objects.values_list("id", "status")) == [(uuid.UUID(first), "pending")]


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        (lambda now: {"tier": "NOPE"}, "tier", "unknown_tier"),
        (lambda now: {"expires_at": now.isoformat()}, "expires_at", "past"),
        (lambda now: {"expires_at": "2020-01-01T00:00:00Z"}, "expires_at", "past"),
        (
            lambda now: {"expires_at": (now + dt.timedelta(days=366, seconds=1)).isoformat()},
            "expires_at",
            "too_long",
        ),
        (lambda now: {"expires_at": "soon"}, "expires_at", "invalid"),
        (lambda now: {"reason": ""}, "reason", "blank"),
        (lambda now: {"points": 3}, "points", "unknown_field"),
    ],
    ids=["unknown_tier", "now", "years_ago", "a_year_and_a_second", "soon", "no_reason", "points"],
)
def test_override_request_with_bad_input_answers_field_errors(
    evaluated, staff_client, business_clock, changes, field, code
):
    member = evaluated[0]
    client = staff_client("operations")
    before = members_state(*evaluated)
    problem = _problem(
        client.post(
            "/api/v1/tiers/overrides/",
            _override_body(member, **changes(business_clock.now)),
            format="json",
        ),
        400,
        "validation_error",
    )
    assert (field, code) in [(e["field"], e["code"]) for e in problem["errors"]], problem
    assert members_state(*evaluated) == before


def test_an_override_of_a_year_exactly_is_accepted(tiers, staff_client, business_clock):
    """The boundary of the ``too_long`` refusal above."""
    expires_at = business_clock.now + dt.timedelta(days=366)
    override_id = _override_request(
        staff_client("operations"), MemberFactory(), expires_at=expires_at.isoformat()
    )
    assert TierOverride.objects.get(id=override_id).expires_at == expires_at


def test_override_for_an_unknown_member_is_404(evaluated, staff_client):
    client = staff_client("operations")
    before = members_state(*evaluated)
    _problem(
        client.post(
            "/api/v1/tiers/overrides/",
            _override_body(MemberFactory.build(customer_no="NOBODY")),
            format="json",
        ),
        404,
        "not_found",
    )
    assert members_state(*evaluated) == before


def test_override_roles(evaluated, staff_client, member_client):
    member = evaluated[0]
    refused = (staff_client("marketing"), staff_client("approver"), member_client(member))
    before = members_state(*evaluated)
    for client in refused:
        _problem(
            client.post("/api/v1/tiers/overrides/", _override_body(member), format="json"),
            403,
            "permission_denied",
        )
    assert members_state(*evaluated) == before
    override_id = _override_request(staff_client("operations"), member)
    maker_again, approver = staff_client("operations"), staff_client("approver")
    pending = members_state(*evaluated)
    _problem(
        maker_again.post(f"/api/v1/tiers/overrides/{override_id}/approve/", {}, format="json"),
        403,
        "permission_denied",
    )
    listing = approver.get("/api/v1/tiers/overrides/?status=pending").json()
    assert [o["id"] for o in listing["results"]] == [override_id]
    _problem(
        approver.post(f"/api/v1/tiers/overrides/{uuid.uuid4()}/approve/", {}, format="json"),
        404,
        "not_found",
    )
    assert members_state(*evaluated) == pending
    assert pending["tiers"][member.customer_no] == "GOLD"


def test_no_override_for_a_closed_member(tiers, staff_client):
    member = MemberFactory(status="closed")
    client = staff_client("operations")
    before = members_state(member)
    _problem(
        client.post("/api/v1/tiers/overrides/", _override_body(member), format="json"),
        409,
        "member_closed",
    )
    assert members_state(member) == before
    assert not TierOverride.objects.exists()


def test_an_override_of_a_member_closed_since_the_request_cannot_be_approved(
    evaluated, staff_client
):
    from members.models import Member

    member = evaluated[0]
    override_id = _override_request(staff_client("operations"), member)
    Member.objects.filter(pk=member.pk).update(status="closed")
    approver = staff_client("approver")
    before = members_state(*evaluated)
    _problem(
        approver.post(f"/api/v1/tiers/overrides/{override_id}/approve/", {}, format="json"),
        409,
        "member_closed",
    )
    assert members_state(*evaluated) == before
    assert TierOverride.objects.get(id=override_id).status == "pending"


def test_an_override_that_expired_before_approval_cannot_be_approved(evaluated, staff_client):
    member = evaluated[0]
    override_id = _override_request(staff_client("operations"), member)
    TierOverride.objects.filter(id=override_id).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    approver = staff_client("approver")
    before = members_state(*evaluated)
    _problem(
        approver.post(f"/api/v1/tiers/overrides/{override_id}/approve/", {}, format="json"),
        409,
        "override_expired",
    )
    assert members_state(*evaluated) == before
    assert before["tiers"][member.customer_no] == "GOLD"


def test_the_openapi_schema_describes_the_tier_endpoints(admin_api):
    response = admin_api.get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    for path in (
        "/api/v1/tiers/",
        "/api/v1/tiers/evaluate/",
        "/api/v1/tiers/runs/{run_id}/",
        "/api/v1/tiers/simulate/",
        "/api/v1/tiers/overrides/{override_id}/approve/",
        "/api/v1/me/tier/",
    ):
        assert f"{path}:" in text, path


def test_a_percent_sign_in_a_tier_name_does_not_break_the_approval_message(tiers, staff_client):
    tiers["DIAMOND"].name_en = "Diamond 100% Club"
    tiers["DIAMOND"].save()
    member = MemberFactory(preferred_language="en")
    created = (
        staff_client("operations")
        .post("/api/v1/tiers/overrides/", _override_body(member), format="json")
        .json()
    )
    approved = staff_client("approver").post(
        f"/api/v1/tiers/overrides/{created['id']}/approve/", {}, format="json"
    )
    assert approved.status_code == 200, approved.content
    message = Message.objects.get(member=member, kind="tier_change")
    assert "Diamond 100% Club" in message.body


@pytest.mark.parametrize("path", ["/api/v1/tiers/simulate/", "/api/v1/tiers/evaluate/"])
def test_an_evaluation_date_before_2000_is_a_field_error(evaluated, admin_api, path):
    before = members_state(*evaluated)
    response = admin_api.post(path, {"as_of": "0001-01-01"}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0] == {
        "field": "as_of",
        "code": "too_early",
        "detail": "Evaluation dates start on 2000-01-01.",
    }
    assert members_state(*evaluated) == before
