"""Maker-checker in the console, in a real browser: operations requests a point adjustment,
another staff member with the approver role approves it, and only then are the points there."""

import pytest

from loyalty import roles
from points.models import Adjustment
from points.selectors import points_account_balance
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_requests_an_adjustment_and_an_approver_approves_it(console):
    member = MemberFactory()
    operator = UserFactory(username="operator", roles=[roles.OPERATIONS])
    approver = UserFactory(username="checker", roles=[roles.APPROVER])

    page = console(operator)
    page.goto(f"{page.base}/admin/points/adjustment/add/")
    page.fill("#id_member", str(member.pk))
    page.fill("#id_points", "500")
    page.fill("#id_reason", "Goodwill: branch queue complaint")
    page.click("[name=_save]")
    page.get_by_text("was added successfully").wait_for()
    page.shot("requested")
    adjustment = Adjustment.objects.get(member=member)
    assert (adjustment.status, adjustment.points) == (Adjustment.Status.PENDING, 500)
    assert adjustment.requested_by == operator
    assert points_account_balance(member=member) == 0  # nothing until approved
    # Operations has no approve action.
    page.goto(f"{page.base}/admin/points/adjustment/")
    assert page.locator("select[name=action] option[value=approve]").count() == 0

    page = console(approver)
    page.goto(f"{page.base}/admin/points/adjustment/?status__exact=pending")
    page.check(f"input[name=_selected_action][value='{adjustment.pk}']")
    page.select_option("select[name=action]", "approve")
    page.click("button[name=index]")
    page.get_by_text("1 adjustments approved.").wait_for()
    page.shot("approved")
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.decided_by) == (Adjustment.Status.APPROVED, approver)
    assert points_account_balance(member=member) == 500
