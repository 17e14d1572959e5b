"""The rewards API as the banking apps and staff call it: the catalogue with each member's
eligibility, redemptions and their error codes, idempotent retries, cancellation, fulfilment,
co-payments, code pools, and who may do what."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from loyalty import roles
from members.models import MemberTier, Message
from members.services.members import member_freeze
from points.models import Account, Entry
from rewards.models import CouponCode, Redemption, Reward
from rewards.services.codes import codes_add
from rewards.services.redemptions import redemption_create
from tests.factories import database_state
from tests.members.tier_helpers import ladder
from tests.rewards.conftest import fund
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


def _redeem(client, reward, *, quantity=1, key=None):
    return client.post(
        "/api/v1/me/redemptions/",
        {"reward_id": str(reward.pk), "quantity": quantity},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
    )


@pytest.fixture
def funded(member_client):
    client = member_client()
    fund(client.member, 1000)
    return client


def _catalogue(client, query="") -> dict[str, dict]:
    response = client.get(f"/api/v1/rewards/{query}")
    assert response.status_code == 200, response.content
    return {item["name"]: item for item in response.json()["results"]}


def test_the_catalogue_tells_a_member_what_they_may_redeem_and_why_not(funded):
    tiers = ladder()
    MemberTier.objects.create(member=funded.member, tier=tiers["GOLD"], since=timezone.now())
    now = timezone.now()
    RewardFactory(name_en="Mug", points_price=300)
    RewardFactory(name_en="Lounge", eligible_tiers=["PLATINUM", "DIAMOND"])
    RewardFactory(name_en="Gold gift", eligible_tiers=["GOLD"])
    RewardFactory(name_en="Soon", valid_from=now + dt.timedelta(hours=1))
    RewardFactory(name_en="Gone", valid_to=now - dt.timedelta(hours=1))
    RewardFactory(name_en="Sold out", stock=0)
    RewardFactory(name_en="Dear", points_price=5000)
    RewardFactory(name_en="Hidden", active=False)
    RewardFactory(name_en="Coffee", category="coupon", points_price=50)  # no codes yet
    once = RewardFactory(name_en="Once", limit_per_member=1, limit_period="month")
    redemption_create(member=funded.member, reward_id=once.pk)

    items = _catalogue(funded)
    reasons = {name: item["ineligible_reason"] for name, item in items.items()}
    assert reasons == {
        "Mug": None,
        "Lounge": "tier",
        "Gold gift": None,
        "Soon": "not_started",
        "Sold out": "out_of_stock",
        "Dear": "insufficient_points",
        "Coffee": "out_of_stock",
        "Once": "limit_reached",
    }
    assert items["Mug"]["eligible"] is True
    assert items["Lounge"]["eligible"] is False
    assert items["Lounge"]["ineligible_detail"]
    assert items["Mug"]["management"] is None
    assert set(_catalogue(funded, "?eligible=true")) == {"Mug", "Gold gift"}
    assert set(_catalogue(funded, "?max_points=100&eligible=false")) == {
        "Lounge",
        "Soon",
        "Sold out",
        "Coffee",
        "Once",
    }
    assert set(_catalogue(funded, "?category=coupon")) == {"Coffee"}


def test_the_catalogue_speaks_the_callers_language(funded):
    RewardFactory(name_en="Tea set", name_zh_hans="茶具")
    response = funded.get("/api/v1/rewards/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.json()["results"][0]["name"] == "茶具"
    assert response.json()["results"][0]["eligible"] is True


def test_a_redemption_answers_201_with_its_code_and_debits_once_per_key(funded):
    reward = RewardFactory(category="coupon", points_price=200, stock=3)
    codes_add(reward=reward, codes=[("DIDI-0001", None), ("DIDI-0002", None)], actor=None)
    key = uuid.uuid4().hex
    first = _redeem(funded, reward, key=key)
    again = _redeem(funded, reward, key=key)
    assert first.status_code == again.status_code == 201, first.content
    assert first.json() == again.json()
    body = first.json()
    assert body["coupon_code"] == "DIDI-0001"
    assert (body["points_spent"], body["status"], body["reward_id"]) == (
        200,
        "pending",
        str(reward.pk),
    )
    assert Entry.objects.filter(kind="redeem").count() == 1
    assert Account.objects.get(member=funded.member).balance == 800
    other = funded.post(
        "/api/v1/me/redemptions/",
        {"reward_id": str(reward.pk), "quantity": 2},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert Entry.objects.filter(kind="redeem").count() == 1
    message = Message.objects.get(member=funded.member, kind="redemption")
    assert "200" in message.body


def test_a_redemption_needs_an_idempotency_key(funded):
    reward = RewardFactory()
    before = database_state()
    response = funded.post("/api/v1/me/redemptions/", {"reward_id": str(reward.pk)}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_required"
    assert database_state() == before


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        (lambda m: RewardFactory(points_price=5000), 422, "insufficient_points"),
        (lambda m: RewardFactory(stock=0), 409, "out_of_stock"),
        (lambda m: RewardFactory(eligible_tiers=["PRIVATE"]), 403, "not_eligible"),
        (
            lambda m: RewardFactory(valid_from=timezone.now() + dt.timedelta(days=1)),
            403,
            "not_eligible",
        ),
        (lambda m: RewardFactory(monthly_points_budget=50), 409, "budget_exhausted"),
        (lambda m: RewardFactory(active=False), 404, "not_found"),
    ],
)
def test_a_refused_redemption_answers_its_code_and_writes_nothing(funded, setup, status, code):
    ladder()
    reward = setup(funded.member)
    before = database_state(ignore=("django_session", "loyalty_idempotencyrecord"))
    response = _redeem(funded, reward)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert database_state(ignore=("django_session", "loyalty_idempotencyrecord")) == before


def test_the_limit_per_period_answers_limit_exceeded(funded):
    reward = RewardFactory(points_price=10, limit_per_member=2, limit_period="day")
    assert _redeem(funded, reward, quantity=2).status_code == 201
    before = database_state(ignore=("django_session", "loyalty_idempotencyrecord"))
    response = _redeem(funded, reward)
    assert (response.status_code, response.json()["code"]) == (422, "limit_exceeded")
    assert database_state(ignore=("django_session", "loyalty_idempotencyrecord")) == before


def test_a_frozen_members_token_stops_at_once_and_the_service_refuses_too(funded, admin_api):
    reward = RewardFactory()
    member_freeze(member=funded.member, actor=admin_api.user)
    response = _redeem(funded, reward)
    assert (response.status_code, response.json()["code"]) == (401, "member_inactive")
    from members.errors import MemberInactive

    with pytest.raises(MemberInactive):
        redemption_create(member=funded.member, reward_id=reward.pk)
    assert Redemption.objects.count() == 0


def test_cancel_by_the_member_refunds_once_and_another_member_gets_404(funded, member_client):
    reward = RewardFactory(points_price=400, stock=1)
    created = _redeem(funded, reward).json()
    stranger = member_client()
    assert stranger.post(f"/api/v1/me/redemptions/{created['id']}/cancel/").status_code == 404
    assert stranger.get(f"/api/v1/me/redemptions/{created['id']}/").status_code == 404
    first = funded.post(f"/api/v1/me/redemptions/{created['id']}/cancel/")
    second = funded.post(f"/api/v1/me/redemptions/{created['id']}/cancel/")
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert Account.objects.get(member=funded.member).balance == 1000
    assert Entry.objects.filter(kind="refund").count() == 1
    reward.refresh_from_db()
    assert reward.stock == 1
    listed = funded.get("/api/v1/me/redemptions/").json()["results"]
    assert [item["status"] for item in listed] == ["cancelled"]
    assert stranger.get("/api/v1/me/redemptions/").json()["results"] == []


def test_staff_fulfil_after_the_co_payment_and_a_fulfilled_one_cannot_be_cancelled(
    funded, staff_client
):
    reward = RewardFactory(points_price=100, cash_price="99.00")
    created = _redeem(funded, reward).json()
    assert created["cash_amount"] == "99.00"
    marketing = staff_client(roles.MARKETING)
    unpaid = marketing.post(f"/api/v1/redemptions/{created['id']}/fulfil/", {}, format="json")
    assert (unpaid.status_code, unpaid.json()["code"]) == (409, "cash_unpaid")
    marketing_pays = marketing.post(
        f"/api/v1/redemptions/{created['id']}/cash-payment/", {"reference": "PAY0"}, format="json"
    )
    assert marketing_pays.status_code == 403  # only the bank's integration account reports it
    integration = staff_client(roles.INTEGRATION)
    paid = integration.post(
        f"/api/v1/redemptions/{created['id']}/cash-payment/", {"reference": "PAY1"}, format="json"
    )
    assert paid.status_code == 200, paid.content
    assert paid.json()["cash_paid"] is True
    done = marketing.post(f"/api/v1/redemptions/{created['id']}/fulfil/", {}, format="json")
    assert done.json()["status"] == "fulfilled"
    late = funded.post(f"/api/v1/me/redemptions/{created['id']}/cancel/")
    assert (late.status_code, late.json()["code"]) == (409, "redemption_closed")
    staff = marketing.post(
        f"/api/v1/redemptions/{created['id']}/cancel/", {"reason": "late"}, format="json"
    )
    assert (staff.status_code, staff.json()["code"]) == (409, "redemption_closed")
    assert Entry.objects.filter(kind="refund").count() == 0
    kinds = list(
        Message.objects.filter(member=funded.member, kind="redemption").values_list(
            "dedupe_key", flat=True
        )
    )
    assert sorted(key.rsplit(":", 1)[1] for key in kinds) == ["created", "fulfilled"]


def test_staff_cancel_returns_points_and_stock_and_voids_the_codes(funded, staff_client):
    reward = RewardFactory(category="voucher", points_price=100, stock=5)
    codes_add(reward=reward, codes=[("V-0001", None)], actor=None)
    created = _redeem(funded, reward).json()
    response = staff_client(roles.OPERATIONS).post(
        f"/api/v1/redemptions/{created['id']}/cancel/", {"reason": "customer call"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["coupon_codes"] == []
    # Void: the member saw it, so it is never given to anyone else.
    assert str(CouponCode.objects.get(code="V-0001").redemption_id) == created["id"]
    reward.refresh_from_db()
    assert reward.stock == 5
    assert Account.objects.get(member=funded.member).balance == 1000


def test_staff_manage_the_catalogue_and_a_stock_change_is_audited(staff_client):
    from loyalty.models import AuditLog

    ladder()
    marketing = staff_client(roles.MARKETING)
    created = marketing.post(
        "/api/v1/rewards/",
        {
            "code": "lounge-pass",
            "name": "Airport lounge pass",
            "name_zh_hans": "机场贵宾厅",
            "category": "experience",
            "points_price": 8000,
            "stock": 100,
            "eligible_tiers": ["PLATINUM"],
            "limit_per_member": 2,
            "limit_period": "year",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["management"]["stock"] == 100
    assert body["eligible"] is None
    changed = marketing.patch(
        f"/api/v1/rewards/{body['id']}/", {"stock": 80, "reason": "recount"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["stock_left"] == 80
    audit = AuditLog.objects.get(action="reward.stock_change")
    assert (audit.before, audit.after, audit.reason) == ({"stock": 100}, {"stock": 80}, "recount")
    bad = marketing.patch(
        f"/api/v1/rewards/{body['id']}/", {"eligible_tiers": ["NOPE"]}, format="json"
    )
    assert bad.status_code == 400
    assert Reward.objects.get(pk=body["id"]).eligible_tiers == ["PLATINUM"]


def test_members_and_other_roles_cannot_manage_the_catalogue(member_client, staff_client):
    reward = RewardFactory()
    member = member_client()
    approver = staff_client(roles.APPROVER)
    before = database_state()
    assert member.post("/api/v1/rewards/", {}, format="json").status_code == 403
    assert member.patch(f"/api/v1/rewards/{reward.pk}/", {}, format="json").status_code == 403
    assert member.get("/api/v1/redemptions/").status_code == 403
    assert approver.patch(f"/api/v1/rewards/{reward.pk}/", {"stock": 1}).status_code == 403
    assert database_state() == before


def test_codes_by_list_csv_and_pattern_count_duplicates(staff_client):
    reward = RewardFactory(category="coupon")
    marketing = staff_client(roles.MARKETING)
    url = f"/api/v1/rewards/{reward.pk}/codes/"
    listed = marketing.post(url, {"codes": ["AAAA-1", "AAAA-2", "AAAA-1"]}, format="json")
    assert listed.status_code == 201, listed.content
    assert listed.json() == {"added": 2, "duplicates": 1}
    uploaded = marketing.post(
        url, {"csv": "code,expires_on\nAAAA-2,\nBBBB-1,2099-12-31\n"}, format="json"
    )
    assert uploaded.json() == {"added": 1, "duplicates": 1}
    assert str(CouponCode.objects.get(code="BBBB-1").expires_on) == "2099-12-31"
    generated = marketing.post(
        url, {"generate": {"count": 25, "prefix": "GO-", "length": 8}}, format="json"
    )
    assert generated.json() == {"added": 25, "duplicates": 0}
    assert CouponCode.objects.filter(code__startswith="GO-").count() == 25
    gift_reward = RewardFactory()
    before = database_state()
    bad_csv = marketing.post(url, {"csv": "code\nok-code-1\nx\n"}, format="json")
    assert bad_csv.status_code == 400
    assert "line 3" in str(bad_csv.json())
    gift = marketing.post(
        f"/api/v1/rewards/{gift_reward.pk}/codes/", {"codes": ["CCCC-1"]}, format="json"
    )
    assert gift.status_code == 400
    assert database_state() == before


def test_a_pool_running_low_tells_marketing_once(funded):
    from loyalty.models import StaffNotice

    reward = RewardFactory(category="coupon", points_price=10, low_codes_threshold=3)
    codes_add(reward=reward, codes=[(f"LOW-{i:03d}", None) for i in range(5)], actor=None)
    for _ in range(4):
        response = funded.post(
            "/api/v1/me/redemptions/",
            {"reward_id": str(reward.pk)},
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        )
        assert response.status_code == 201
    notices = list(StaffNotice.objects.all())
    assert len(notices) == 1
    assert notices[0].role == roles.MARKETING
    # In the programme's language, whatever the member's request spoke.
    assert "2 coupon codes left" in notices[0].title


def test_a_code_pattern_with_an_unknown_field_is_refused(staff_client):
    reward = RewardFactory(category="coupon")
    marketing = staff_client(roles.MARKETING)
    before = database_state()
    response = marketing.post(
        f"/api/v1/rewards/{reward.pk}/codes/",
        {"generate": {"count": 5, "lenght": 8}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "generate.lenght"
    assert database_state() == before
