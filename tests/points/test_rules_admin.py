"""Earning rules and campaigns saved through the admin and :mod:`points.services.rules`:
validated, in one transaction, with one audit row per save."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from loyalty.models import AuditLog
from members.models import Tier
from points.models import Campaign, EarningRule
from points.services.rules import campaign_save, earning_rule_save
from tests.factories import UserFactory, database_state
from tests.points.factories import CampaignFactory, EarningRuleFactory

pytestmark = pytest.mark.django_db

NEW_RULE = {
    "code": "wealth",
    "name_en": "Wealth purchases",
    "name_zh_hans": "理财申购",
    "active": True,
    "priority": 50,
    "transaction_type": "wealth_purchase",
    "channels": ["mobile"],
    "mcc_include": [],
    "mcc_exclude": [],
    "currency": "CNY",
    "min_amount": "1000.00",
    "amount_unit": "100.00",
    "points_per_unit": 2,
    "apply_tier_multiplier": False,
    "cap_per_transaction": None,
    "cap_per_day": None,
    "cap_per_month": 5000,
    "valid_from": "2026-01-01",
    "valid_to": None,
}
NEW_CAMPAIGN = {
    "code": "spring",
    "name_en": "Spring double points",
    "name_zh_hans": "春季双倍积分",
    "active": True,
    "multiplier": "2.00",
    "starts_on": "2026-03-01",
    "ends_on": "2026-05-31",
    "target_tiers": ["GOLD"],
}


@pytest.fixture
def superuser_client(client):
    user = User.objects.create_superuser("root", "root@example.com", "pw-1234567")
    client.force_login(user)
    client.user = user
    return client


def _posted(values: dict) -> dict:
    """``values`` as a form posts them: lists as the multi-selects' (and checkboxes') values,
    empty for ``None``, booleans as checkboxes (absent when unchecked)."""
    data: dict = {}
    for name, value in values.items():
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list):
            data[name] = [str(item) for item in value]
        else:
            data[name] = "" if value is None else value
    return data


def _rule_form(rule: EarningRule, **changes) -> dict:
    return _posted({**{name: getattr(rule, name) for name in NEW_RULE}, **changes})


def _campaign_form(campaign: Campaign, **changes) -> dict:
    values = {name: getattr(campaign, name) for name in NEW_CAMPAIGN}
    values["rules"] = [rule.pk for rule in campaign.rules.all()]
    return _posted({**values, **changes})


def test_adding_an_earning_rule_saves_it_and_audits_once(superuser_client):
    response = superuser_client.post("/admin/points/earningrule/add/", _posted(NEW_RULE))
    assert response.status_code == 302, response.context and response.context["errors"]
    rule = EarningRule.objects.get(code="wealth")
    assert (rule.points_per_unit, rule.channels) == (2, ["mobile"])
    row = AuditLog.objects.get()
    assert (row.action, row.actor, row.target_type, row.target_id) == (
        "earning_rule.create",
        superuser_client.user,
        "points.earningrule",
        str(rule.pk),
    )
    assert row.before is None
    assert row.after == NEW_RULE


def test_changing_an_earning_rule_records_the_changed_fields(superuser_client):
    rule = EarningRuleFactory(code="card", cap_per_day=100)
    response = superuser_client.post(
        f"/admin/points/earningrule/{rule.pk}/change/",
        _rule_form(rule, points_per_unit=3, cap_per_day=None, mcc_exclude=["6513"]),
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    rule.refresh_from_db()
    assert (rule.points_per_unit, rule.cap_per_day, rule.mcc_exclude) == (3, None, ["6513"])
    row = AuditLog.objects.get()
    assert (row.action, row.actor, row.target_id) == (
        "earning_rule.update",
        superuser_client.user,
        str(rule.pk),
    )
    assert row.before == {"points_per_unit": 1, "cap_per_day": 100, "mcc_exclude": []}
    assert row.after == {"points_per_unit": 3, "cap_per_day": None, "mcc_exclude": ["6513"]}


def test_an_invalid_earning_rule_form_writes_nothing(superuser_client):
    before = database_state()
    response = superuser_client.post(
        "/admin/points/earningrule/add/", _posted({**NEW_RULE, "amount_unit": "0"})
    )
    assert response.status_code == 200  # the form again, with its errors
    assert "amount_unit" in response.context["adminform"].form.errors
    assert database_state() == before  # no rule, no audit row


def test_deleting_an_earning_rule_stays_refused(superuser_client):
    rule = EarningRuleFactory()
    before = database_state()
    response = superuser_client.post(
        f"/admin/points/earningrule/{rule.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert database_state() == before
    assert EarningRule.objects.filter(pk=rule.pk).exists()


def test_adding_a_campaign_saves_it_with_its_rules_and_audits_once(superuser_client):
    Tier.objects.create(code="GOLD", name_en="Gold", rank=20)
    card, bills = EarningRuleFactory(code="card"), EarningRuleFactory(code="bills")
    response = superuser_client.post(
        "/admin/points/campaign/add/", _posted({**NEW_CAMPAIGN, "rules": [card.pk, bills.pk]})
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    campaign = Campaign.objects.get(code="spring")
    assert set(campaign.rules.all()) == {card, bills}
    row = AuditLog.objects.get()
    assert (row.action, row.actor, row.target_type, row.target_id) == (
        "campaign.create",
        superuser_client.user,
        "points.campaign",
        str(campaign.pk),
    )
    assert row.before is None
    assert row.after == {**NEW_CAMPAIGN, "target_segment": None, "rules": ["bills", "card"]}


def test_changing_a_campaign_records_the_changed_fields_and_rules(superuser_client):
    card = EarningRuleFactory(code="card")
    campaign = CampaignFactory(code="autumn")
    response = superuser_client.post(
        f"/admin/points/campaign/{campaign.pk}/change/",
        _campaign_form(campaign, multiplier="3.00", rules=[card.pk]),
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    campaign.refresh_from_db()
    assert campaign.multiplier == Decimal("3.00")
    assert list(campaign.rules.all()) == [card]
    row = AuditLog.objects.get()
    assert (row.action, row.actor, row.target_id) == (
        "campaign.update",
        superuser_client.user,
        str(campaign.pk),
    )
    assert row.before == {"multiplier": "2.00", "rules": []}
    assert row.after == {"multiplier": "3.00", "rules": ["card"]}


def test_an_invalid_campaign_form_writes_nothing(superuser_client):
    card = EarningRuleFactory(code="card")
    before = database_state()
    response = superuser_client.post(
        "/admin/points/campaign/add/",
        _posted({**NEW_CAMPAIGN, "ends_on": "2026-02-01", "rules": [card.pk]}),  # before start
    )
    assert response.status_code == 200
    assert response.context["errors"]
    assert database_state() == before  # no campaign, no campaign rules, no audit row


def test_saving_an_unchanged_campaign_records_nothing(superuser_client):
    campaign = CampaignFactory()
    campaign.rules.add(EarningRuleFactory())
    # Django's own admin history notes every save ("No fields changed."); the programme's audit
    # log, the campaign and its rules stay as they were.
    ignore = ("django_session", "django_admin_log")
    before = database_state(ignore=ignore)
    response = superuser_client.post(
        f"/admin/points/campaign/{campaign.pk}/change/", _campaign_form(campaign)
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    assert database_state(ignore=ignore) == before
    assert not AuditLog.objects.exists()


def test_the_services_record_creates_and_updates():
    actor = UserFactory()
    rule = earning_rule_save(
        rule=EarningRule(code="bills", name_en="Bills", transaction_type="bill_payment"),
        actor=actor,
    )
    campaign = campaign_save(
        campaign=Campaign(
            code="summer",
            name_en="Summer",
            starts_on=dt.date(2026, 6, 1),
            ends_on=dt.date(2026, 8, 31),
        ),
        rules=[rule],
        actor=actor,
    )
    assert list(campaign.rules.all()) == [rule]
    rule.name_en = "Bill payments"
    earning_rule_save(rule=rule, actor=actor)
    campaign.active = False
    campaign_save(campaign=campaign, actor=actor)  # rules=None keeps them
    assert list(campaign.rules.all()) == [rule]
    rows = list(AuditLog.objects.order_by("id").values_list("action", "actor", "before", "after"))
    assert [row[:2] for row in rows] == [
        ("earning_rule.create", actor.pk),
        ("campaign.create", actor.pk),
        ("earning_rule.update", actor.pk),
        ("campaign.update", actor.pk),
    ]
    assert rows[1][3]["rules"] == ["bills"]
    assert rows[2][2:] == ({"name_en": "Bills"}, {"name_en": "Bill payments"})
    assert rows[3][2:] == ({"active": True}, {"active": False})


def test_the_services_refuse_invalid_values_writing_nothing():
    actor = UserFactory()
    before = database_state()
    with pytest.raises(ValidationError):
        earning_rule_save(
            rule=EarningRule(code="x", name_en="X", transaction_type="deposit", points_per_unit=0),
            actor=actor,
        )
    with pytest.raises(ValidationError):
        campaign_save(
            campaign=Campaign(
                code="y", name_en="Y", starts_on=dt.date(2026, 6, 2), ends_on=dt.date(2026, 6, 1)
            ),
            actor=actor,
        )
    assert database_state() == before  # no rule, no campaign, no audit row
