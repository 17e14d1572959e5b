"""Tiers and their benefits saved through the admin and :func:`tier_save`: validated, in one
transaction, with one audit row per save."""

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from loyalty.models import AuditLog
from members.models import Tier, TierBenefit
from members.services.ladder import tier_save
from tests.factories import UserFactory
from tests.members.tier_helpers import members_state


def _benefits() -> list[Any]:
    return list(TierBenefit.objects.order_by("pk").values())


pytestmark = pytest.mark.django_db

ADD_URL = "/admin/members/tier/add/"


@pytest.fixture
def superuser_client():
    user = UserFactory(is_superuser=True)
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]  # the factory returns a User
    client.user = user  # type: ignore[attr-defined]  # a test-only extra
    return client


@pytest.fixture
def gold():
    tier = Tier.objects.create(
        code="GOLD",
        name_en="Gold",
        name_zh_hans="金卡",
        rank=20,
        min_avg_aum=Decimal("100000.00"),
        multiplier=Decimal("1.20"),
    )
    TierBenefit.objects.create(tier=tier, kind="fee_waiver", text_en="No fees", position=0)
    TierBenefit.objects.create(tier=tier, kind="birthday_gift", text_en="A gift", position=1)
    return tier


BENEFIT_FIELDS = ("kind", "text_en", "text_zh_hans", "position")
NEW_TIER = {
    "code": "BLACK",
    "name_en": "Black",
    "name_zh_hans": "黑卡",
    "rank": 60,
    "active": True,
    "window_months": 3,
    "min_avg_aum": "20000000.00",
    "min_contribution": None,
    "rule": "any",
    "multiplier": "4.00",
    "grace_periods": 2,
    "downgrade_mode": "one_step",
}


def _form(tier: Tier | None = None, *, benefits=(), **fields) -> dict:
    """The tier form as the admin posts it: ``tier``'s values (or a new tier's) with ``fields``
    changed, its benefits as they are, then ``benefits`` (dicts) as new rows."""
    values = {name: getattr(tier, name) for name in NEW_TIER} if tier else dict(NEW_TIER)
    values.update(fields)
    active = values.pop("active")
    data = {name: "" if value is None else value for name, value in values.items()}
    if active:
        data["active"] = "on"  # an unchecked checkbox is not posted at all
    existing = [
        {
            "id": benefit.pk,
            "tier": benefit.tier_id,
            **{name: getattr(benefit, name) for name in BENEFIT_FIELDS},
        }
        for benefit in (tier.benefits.order_by("position") if tier else [])
    ]
    rows = existing + list(benefits)
    data.update(
        {
            "benefits-TOTAL_FORMS": len(rows),
            "benefits-INITIAL_FORMS": len(existing),
            "benefits-MIN_NUM_FORMS": 0,
            "benefits-MAX_NUM_FORMS": 1000,
        }
    )
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"benefits-{index}-{name}"] = value
    return data


def _change_url(tier: Tier) -> str:
    return f"/admin/members/tier/{tier.pk}/change/"


def test_adding_a_tier_with_a_benefit_saves_both_and_audits_once(superuser_client):
    benefit = {"kind": "lounge_access", "text_en": "Lounges", "text_zh_hans": "", "position": 0}
    response = superuser_client.post(ADD_URL, _form(benefits=[benefit]))
    assert response.status_code == 302, response.context and response.context["errors"]
    tier = Tier.objects.get(code="BLACK")
    assert tier.multiplier == Decimal("4.00")
    assert list(tier.benefits.values_list("kind", flat=True)) == ["lounge_access"]
    row = AuditLog.objects.get()
    assert (row.action, row.actor, row.target_type, row.target_id) == (
        "tier.create",
        superuser_client.user,
        "members.tier",
        "BLACK",
    )
    assert row.before is None
    assert row.after == {
        "code": "BLACK",
        "name_en": "Black",
        "name_zh_hans": "黑卡",
        "rank": 60,
        "window_months": 3,
        "min_avg_aum": "20000000.00",
        "min_contribution": None,
        "rule": "any",
        "multiplier": "4.00",
        "grace_periods": 2,
        "downgrade_mode": "one_step",
        "active": True,
        "benefits": [benefit],
    }


def test_changing_a_tier_and_its_benefits_records_the_changes_in_one_row(superuser_client, gold):
    data = _form(
        gold,
        multiplier="1.30",
        active=False,
        benefits=[{"kind": "lounge_access", "text_en": "Lounges", "position": 2}],
    )
    data["benefits-0-text_en"] = "No fees at all"  # fee_waiver edited
    data["benefits-1-DELETE"] = "on"  # birthday_gift removed
    response = superuser_client.post(_change_url(gold), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    gold.refresh_from_db()
    assert (gold.multiplier, gold.active) == (Decimal("1.30"), False)
    assert list(gold.benefits.order_by("position").values_list("kind", "text_en")) == [
        ("fee_waiver", "No fees at all"),
        ("lounge_access", "Lounges"),
    ]
    row = AuditLog.objects.get()
    assert (row.action, row.actor, row.target_id) == (
        "tier.update",
        superuser_client.user,
        "GOLD",
    )
    assert row.before == {
        "multiplier": "1.20",
        "active": True,
        "benefits": [
            {"kind": "fee_waiver", "text_en": "No fees", "text_zh_hans": "", "position": 0},
            {"kind": "birthday_gift", "text_en": "A gift", "text_zh_hans": "", "position": 1},
        ],
    }
    assert row.after == {
        "multiplier": "1.30",
        "active": False,
        "benefits": [
            {"kind": "fee_waiver", "text_en": "No fees at all", "text_zh_hans": "", "position": 0},
            {"kind": "lounge_access", "text_en": "Lounges", "text_zh_hans": "", "position": 2},
        ],
    }


def test_changing_only_a_field_leaves_the_benefits_out_of_the_row(superuser_client, gold):
    response = superuser_client.post(_change_url(gold), _form(gold, grace_periods=3))
    assert response.status_code == 302
    row = AuditLog.objects.get()
    assert (row.action, row.before, row.after) == (
        "tier.update",
        {"grace_periods": 2},
        {"grace_periods": 3},
    )


def test_saving_an_unchanged_tier_records_nothing(superuser_client, gold):
    response = superuser_client.post(_change_url(gold), _form(gold))
    assert response.status_code == 302
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize(
    ("fields", "benefits"),
    [
        ({"window_months": 30}, []),  # outside 1..24
        ({"rank": 20}, []),  # GOLD's rank
        ({}, [{"kind": "fee_waiver", "text_en": ""}]),  # a benefit without its text
        (
            {},
            [{"kind": "fee_waiver", "text_en": "a"}, {"kind": "fee_waiver", "text_en": "b"}],
        ),  # the same kind twice
    ],
)
def test_an_invalid_add_form_writes_nothing(superuser_client, gold, fields, benefits):
    before, benefits_before = members_state(), _benefits()
    response = superuser_client.post(ADD_URL, _form(benefits=benefits, **fields))
    assert response.status_code == 200  # the form again, with its errors
    assert response.context["errors"]
    assert not Tier.objects.filter(code="BLACK").exists()
    assert TierBenefit.objects.count() == 2  # GOLD's
    assert not AuditLog.objects.exists()
    assert (members_state(), _benefits()) == (before, benefits_before)


def test_an_invalid_change_form_writes_nothing(superuser_client, gold):
    before, benefits_before = members_state(), _benefits()
    data = _form(gold, multiplier="-1", grace_periods=3)
    data["benefits-0-text_en"] = "Edited"
    data["benefits-1-DELETE"] = "on"
    response = superuser_client.post(_change_url(gold), data)
    assert response.status_code == 200
    assert response.context["errors"]
    gold.refresh_from_db()
    assert (gold.multiplier, gold.grace_periods) == (Decimal("1.20"), 2)
    assert gold.benefits.count() == 2
    assert not AuditLog.objects.exists()
    assert (members_state(), _benefits()) == (before, benefits_before)


def test_deleting_a_tier_stays_refused(superuser_client, gold):
    before, benefits_before = members_state(), _benefits()
    response = superuser_client.post(f"/admin/members/tier/{gold.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Tier.objects.filter(pk=gold.pk).exists()
    assert (members_state(), _benefits()) == (before, benefits_before)


def test_the_service_records_a_create_and_an_update():
    actor = UserFactory()
    tier = tier_save(
        tier=Tier(code="SILVER", name_en="Silver", rank=15),
        benefits=[TierBenefit(kind="other", text_en="Tea")],
        actor=actor,
    )
    created = AuditLog.objects.get()
    assert (created.action, created.actor, created.target_id) == ("tier.create", actor, "SILVER")
    assert created.after["rank"] == 15
    assert created.after["benefits"] == [
        {"kind": "other", "text_en": "Tea", "text_zh_hans": "", "position": 0}
    ]

    tier.min_contribution = Decimal("500.00")
    tier_save(tier=tier, actor=actor)
    updated = AuditLog.objects.exclude(pk=created.pk).get()
    assert (updated.action, updated.before, updated.after) == (
        "tier.update",
        {"min_contribution": None},
        {"min_contribution": "500.00"},
    )
    assert Tier.objects.get(code="SILVER").min_contribution == Decimal("500.00")


def test_the_service_refuses_invalid_values_and_a_new_code_writing_nothing(gold):
    actor = UserFactory()
    with pytest.raises(ValidationError) as invalid:
        tier_save(tier=Tier(code="lower case", name_en="x", rank=70), actor=actor)
    assert "code" in invalid.value.message_dict
    gold.code = "AURUM"
    gold.multiplier = Decimal("9.00")
    with pytest.raises(ValueError, match="code never changes"):
        tier_save(tier=gold, actor=actor)
    assert list(Tier.objects.values_list("code", "multiplier")) == [("GOLD", Decimal("1.20"))]
    assert not AuditLog.objects.exists()
