"""A programme admin sets the programme up in the console, in a real browser: a tier (the
members' tier admin), an earning rule with its channels and merchant categories picked from
lists (no JSON typed), and a reward for that tier; each is saved through its service and shown
in its list, which fits 1,280 px."""

import pytest

from loyalty import roles
from members.models import Tier
from points.models import EarningRule
from rewards.models import Reward
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def _select2(page, field: str, term: str) -> None:
    """Pick ``term``'s option in the select2 multi-select of ``field``."""
    page.click(f"#id_{field} + .select2 .select2-selection")
    page.keyboard.type(term)
    page.locator(".select2-results__option--highlighted", has_text=term).wait_for()
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")


def test_a_programme_admin_configures_a_tier_an_earning_rule_and_a_reward(console):
    admin = UserFactory(username="programme", roles=[roles.PROGRAMME_ADMIN])
    page = console(admin)

    page.goto(f"{page.base}/admin/members/tier/add/")
    page.fill("#id_code", "JADE")
    page.fill("#id_name_en", "Jade")
    page.fill("#id_name_zh_hans", "翡翠")
    page.fill("#id_rank", "40")
    page.fill("#id_min_avg_aum", "500000")
    page.shot("tier-form")
    page.click("[name=_save]")
    page.get_by_text("was added successfully").wait_for()
    page.locator("#result_list", has_text="JADE").wait_for()
    _fits(page)
    page.shot("tier-list")
    assert Tier.objects.get(code="JADE").rank == 40

    page.goto(f"{page.base}/admin/points/earningrule/add/")
    page.fill("#id_code", "dining")
    page.fill("#id_name_en", "Dining: 2 points per CNY 20")
    page.select_option("#id_transaction_type", "card_spend")
    page.check("input[name=channels][value=pos]")
    page.check("input[name=channels][value=mobile]")
    _select2(page, "mcc_include", "5812")
    _select2(page, "mcc_include", "5814")
    _select2(page, "mcc_exclude", "6513")
    page.fill("#id_points_per_unit", "2")
    page.shot("rule-form")
    page.click("[name=_save]")
    page.get_by_text("was added successfully").wait_for()
    page.locator("#result_list", has_text="dining").wait_for()
    _fits(page)
    page.shot("rule-list")
    rule = EarningRule.objects.get(code="dining")
    assert (sorted(rule.channels), rule.mcc_include, rule.mcc_exclude) == (
        ["mobile", "pos"],
        ["5812", "5814"],
        ["6513"],
    )
    assert rule.points_per_unit == 2

    page.goto(f"{page.base}/admin/rewards/reward/add/")
    page.fill("#id_code", "jade-lounge")
    page.select_option("#id_category", "experience")
    page.fill("#id_name_en", "Airport lounge visit")
    page.fill("#id_points_price", "8000")
    page.check("input[name=eligible_tiers][value=JADE]")
    page.shot("reward-form")
    page.click("[name=_save]")
    page.get_by_text("was added successfully").wait_for()
    page.locator("#result_list", has_text="jade-lounge").wait_for()
    _fits(page)
    page.shot("reward-list")
    reward = Reward.objects.get(code="jade-lounge")
    assert (reward.points_price, reward.eligible_tiers) == (8000, ["JADE"])
