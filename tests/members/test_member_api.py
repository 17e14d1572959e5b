"""PUT /api/v1/members/{customer_no}/ from the CRM, and the staff member list and detail."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from loyalty.models import AuditLog
from members.models import Member
from tests.factories import AssetSnapshotFactory, MemberFactory
from tests.members.tier_helpers import evaluate, ladder, members_state, snapshots, tier_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold_member():
    """CRM003, a Gold member with snapshots and a tier history: what a refused PUT of an
    existing member must leave as it is."""
    ladder()
    member = MemberFactory(customer_no="CRM003", name="韩梅梅", city="Nanjing")
    snapshots(member, "150000.00")
    evaluate()
    assert tier_of(member) == "GOLD"
    return member


def test_put_creates_then_updates_only_the_given_fields(integration_api):
    created = integration_api.put(
        "/api/v1/members/CRM001/",
        {"name": "李雷", "phone": "13912345678", "city": "Hangzhou", "risk_level": "R3"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["phone"] == "139****5678"
    updated = integration_api.put("/api/v1/members/CRM001/", {"city": "Shanghai"}, format="json")
    assert updated.status_code == 200
    member = Member.objects.get(customer_no="CRM001")
    assert (member.name, member.city, member.risk_level) == ("李雷", "Shanghai", "R3")
    assert list(AuditLog.objects.order_by("id").values_list("action", flat=True)) == [
        "member.create",
        "member.update",
    ]


def test_create_needs_a_name(integration_api):
    before = members_state()
    response = integration_api.put("/api/v1/members/CRM002/", {"city": "Beijing"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "name", "code": "required", "detail": "A new member needs a name."}
    ]
    assert members_state() == before
    assert not Member.objects.exists()


BAD_FIELDS = [
    (lambda today: {"name": "x", "phone": "call me"}, "phone", "invalid_phone"),
    (
        lambda today: {"name": "x", "birth_date": str(today + dt.timedelta(days=1))},
        "birth_date",
        "future_date",
    ),
    (
        lambda today: {"name": "x", "joined_at": str(today + dt.timedelta(days=1))},
        "joined_at",
        "future_date",
    ),
    (lambda today: {"name": "x", "joined_at": "31/12/2020"}, "joined_at", "invalid"),
    (lambda today: {"name": "x", "marketing_consent": "maybe"}, "marketing_consent", "invalid"),
    (lambda today: {"name": "x", "status": "deleted"}, "status", "invalid_choice"),
    (
        lambda today: {"name": "x", "preferred_language": "fr"},
        "preferred_language",
        "invalid_choice",
    ),
    (lambda today: {"name": "x" * 101}, "name", "max_length"),
    (lambda today: {"name": "x", "customer_no": "OTHER"}, "customer_no", "unknown_field"),
    (lambda today: {"name": None}, "name", "null"),
]
BAD_FIELD_IDS = [
    "phone",
    "born_tomorrow",
    "joins_tomorrow",
    "joined_not_iso",
    "consent",
    "status",
    "language",
    "long_name",
    "customer_no",
    "null_name",
]


@pytest.mark.parametrize(("body", "field", "code"), BAD_FIELDS, ids=BAD_FIELD_IDS)
def test_bad_fields_answer_400_with_field_errors_and_write_nothing(
    integration_api, business_clock, body, field, code
):
    response = integration_api.put(
        "/api/v1/members/CRM003/", body(business_clock.today), format="json"
    )
    assert response.status_code == 400, response.content
    assert (field, code) in {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert not Member.objects.exists()
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize(("body", "field", "code"), BAD_FIELDS, ids=BAD_FIELD_IDS)
def test_bad_fields_for_an_existing_member_change_nothing(
    integration_api, business_clock, gold_member, body, field, code
):
    before = members_state(gold_member)
    response = integration_api.put(
        "/api/v1/members/CRM003/", body(business_clock.today), format="json"
    )
    assert response.status_code == 400, response.content
    assert (field, code) in {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert members_state(gold_member) == before
    assert before["tiers"] == {"CRM003": "GOLD"}


def test_born_and_joined_today_is_accepted(integration_api, business_clock):
    """The boundary of the ``future_date`` refusals above."""
    today = business_clock.today
    response = integration_api.put(
        "/api/v1/members/CRM006/",
        {"name": "x", "birth_date": today.isoformat(), "joined_at": today.isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.content
    member = Member.objects.get(customer_no="CRM006")
    assert (member.birth_date, member.joined_at) == (today, today)


def test_a_bad_customer_number_in_the_path_is_a_400(integration_api, gold_member):
    before = members_state(gold_member)
    response = integration_api.put("/api/v1/members/bad%20no!/", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "customer_no"
    assert members_state(gold_member) == before


def test_status_changes_through_put_are_audited_and_closing_is_final_after_the_notice(
    integration_api,
):
    integration_api.put("/api/v1/members/CRM004/", {"name": "x"}, format="json")
    assert (
        integration_api.put("/api/v1/members/CRM004/", {"status": "frozen"}, format="json").json()[
            "status"
        ]
        == "frozen"
    )
    assert (
        integration_api.put("/api/v1/members/CRM004/", {"status": "closed"}, format="json").json()[
            "status"
        ]
        == "closed"
    )
    # Past the notice period (30 days) the closure is final: no reopening, no change.
    Member.objects.update(status_changed_at=timezone.now() - dt.timedelta(days=30, seconds=1))
    member = Member.objects.get()
    before = members_state(member)
    reopened = integration_api.put(
        "/api/v1/members/CRM004/", {"status": "active", "city": "Xi'an"}, format="json"
    )
    assert reopened.status_code == 409
    assert reopened.json()["code"] == "member_closed"
    assert members_state(member) == before  # neither the status nor the city changed
    assert Member.objects.get().status == "closed"
    assert list(
        AuditLog.objects.filter(action__startswith="member.")
        .values_list("action", flat=True)
        .order_by("id")
    ) == [
        "member.create",
        "member.freeze",
        "member.close",
    ]


def test_staff_detail_shows_masked_phone_and_latest_assets(admin_api):
    member = MemberFactory(phone="13800001111")
    AssetSnapshotFactory(member=member, as_of=dt.date(2026, 8, 31), deposits=Decimal("10"))
    AssetSnapshotFactory(
        member=member, as_of=dt.date(2026, 9, 30), deposits=Decimal("20"), wealth=Decimal("5")
    )
    body = admin_api.get(f"/api/v1/members/{member.customer_no}/").json()
    assert body["phone"] == "138****1111"
    assert "13800001111" not in str(body)
    assert (body["aum"], body["assets_as_of"]) == ("25.00", "2026-09-30")
    assert [s["as_of"] for s in body["snapshots"]] == ["2026-09-30", "2026-08-31"]


def test_list_filters_by_status_aum_joined_and_search(admin_api):
    rich = MemberFactory(name="Rich Wang", joined_at=dt.date(2020, 1, 1))
    poor = MemberFactory(name="Poor Li", joined_at=dt.date(2025, 6, 1))
    frozen = MemberFactory(name="Cold Zhao", status="frozen", joined_at=dt.date(2025, 6, 1))
    AssetSnapshotFactory(member=rich, deposits=Decimal("900000"))
    AssetSnapshotFactory(member=poor, deposits=Decimal("100"))

    def customers(query):
        response = admin_api.get(f"/api/v1/members/?{query}")
        assert response.status_code == 200, response.content
        return {row["customer_no"] for row in response.json()["results"]}

    assert customers("status=frozen") == {frozen.customer_no}
    assert customers("aum_min=500000") == {rich.customer_no}
    assert customers("aum_max=1000") == {poor.customer_no}
    assert customers("joined_from=2025-01-01&joined_to=2025-12-31") == {
        poor.customer_no,
        frozen.customer_no,
    }
    assert customers("search=wang") == {rich.customer_no}
    assert customers(f"search={poor.customer_no}") == {poor.customer_no}


@pytest.mark.parametrize(
    ("query", "status", "code", "field"),
    [
        ("status=zombie", 400, "validation_error", "status"),
        ("aum_min=lots", 400, "validation_error", "aum_min"),
        ("joined_from=yesterday", 400, "validation_error", "joined_from"),
        ("page=abc", 400, "invalid_page", "page"),
        ("page=999", 404, "not_found", None),
    ],
)
def test_bad_filters_answer_4xx_problems(admin_api, query, status, code, field):
    MemberFactory()
    response = admin_api.get(f"/api/v1/members/?{query}")
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert [error["field"] for error in body.get("errors", [])] == ([field] if field else [])


def test_page_size_is_at_most_200(admin_api):
    MemberFactory.create_batch(205)
    body = admin_api.get("/api/v1/members/?page_size=200").json()
    assert body["count"] == 205
    assert len(body["results"]) == 200
    assert body["next"]
    response = admin_api.get("/api/v1/members/?page_size=500")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_page_size"


def test_the_audit_log_refuses_raw_update_and_delete(integration_api):
    integration_api.put("/api/v1/members/CRM005/", {"name": "x"}, format="json")
    from django.db import DatabaseError, transaction

    before = list(AuditLog.objects.values())
    assert len(before) == 1

    for sql in ("UPDATE loyalty_auditlog SET reason = 'tampered'", "DELETE FROM loyalty_auditlog"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert list(AuditLog.objects.values()) == before


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138 1234 5678", "861******5678"),
        ("62345678", "******78"),
        ("021-6234567", "********67"),
        ("", ""),
    ],
)
def test_phone_masking_hides_most_of_any_number(phone, masked):
    from members.models import mask_phone

    assert mask_phone(phone) == masked
