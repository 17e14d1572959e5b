"""PUT /api/v1/members/{customer_no}/ from the CRM, and the staff member list and detail."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from loyalty.models import AuditLog
from members.models import Member
from tests.factories import AssetSnapshotFactory, MemberFactory

pytestmark = pytest.mark.django_db


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
    response = integration_api.put("/api/v1/members/CRM002/", {"city": "Beijing"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "name", "code": "required", "detail": "A new member needs a name."}
    ]
    assert not Member.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"name": "x", "phone": "call me"}, "phone", "invalid_phone"),
        ({"name": "x", "birth_date": "2999-01-01"}, "birth_date", "future_date"),
        ({"name": "x", "joined_at": "31/12/2020"}, "joined_at", "invalid"),
        ({"name": "x", "marketing_consent": "maybe"}, "marketing_consent", "invalid"),
        ({"name": "x", "status": "deleted"}, "status", "invalid_choice"),
        ({"name": "x", "preferred_language": "fr"}, "preferred_language", "invalid_choice"),
        ({"name": "x" * 101}, "name", "max_length"),
        ({"name": "x", "customer_no": "OTHER"}, "customer_no", "unknown_field"),
        ({"name": None}, "name", "null"),
    ],
)
def test_bad_fields_answer_400_with_field_errors_and_write_nothing(
    integration_api, body, field, code
):
    response = integration_api.put("/api/v1/members/CRM003/", body, format="json")
    assert response.status_code == 400, response.content
    assert (field, code) in {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert not Member.objects.exists()
    assert not AuditLog.objects.exists()


def test_a_bad_customer_number_in_the_path_is_a_400(integration_api):
    response = integration_api.put("/api/v1/members/bad%20no!/", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "customer_no"


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
    reopened = integration_api.put("/api/v1/members/CRM004/", {"status": "active"}, format="json")
    assert reopened.status_code == 409
    assert reopened.json()["code"] == "member_closed"
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
    "query", ["status=zombie", "aum_min=lots", "joined_from=yesterday", "page=abc", "page=999"]
)
def test_bad_filters_answer_4xx_problems(admin_api, query):
    MemberFactory()
    response = admin_api.get(f"/api/v1/members/?{query}")
    assert response.status_code in (400, 404)
    assert response["Content-Type"].startswith("application/problem+json")


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

    for sql in ("UPDATE loyalty_auditlog SET reason = 'tampered'", "DELETE FROM loyalty_auditlog"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert AuditLog.objects.count() == 1


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
