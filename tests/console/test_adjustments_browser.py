"""Maker-checker in the console, in a real browser: operations requests a point adjustment,
picking the member by customer number through the autocomplete; another staff member with the
approver role approves it from the adjustment's own page, with a reason, and only then are the
points there. A debit beyond the balance is refused on the form. The lists fit 1,280 px."""

import pytest

from loyalty import roles
from points.models import Adjustment
from points.selectors import points_account_balance
from tests.factories import MemberFactory, UserFactory
from tests.points.conftest import ingest
from tests.points.factories import EarningRuleFactory, tx_item

pytestmark = pytest.mark.django_db(transaction=True)


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def _pick_member(page, customer_no: str) -> None:
    """The member field is an autocomplete (select2): type the customer number, take the hit."""
    page.click("#id_member + .select2 .select2-selection")
    page.fill(".select2-container--open .select2-search__field", customer_no)
    page.locator(".select2-results__option", has_text=customer_no).first.click()


def test_an_operator_requests_an_adjustment_and_an_approver_approves_it(console):
    member = MemberFactory(customer_no="C88001", name="Wang Fang")
    MemberFactory(customer_no="C88002", name="Zhao Lei")
    operator = UserFactory(username="operator", roles=[roles.OPERATIONS])
    approver = UserFactory(username="checker", roles=[roles.APPROVER])

    page = console(operator)
    page.goto(f"{page.base}/admin/points/adjustment/add/")
    _pick_member(page, "C88001")
    page.fill("#id_points", "-999999")
    page.fill("#id_reason", "Goodwill: branch queue complaint")
    page.click("[name=_save]")
    page.get_by_text("The points balance is too low for this.").wait_for()
    page.shot("debit-refused")
    assert not Adjustment.objects.exists()

    page.fill("#id_points", "500")
    page.click("[name=_save]")
    page.get_by_text("was added successfully").wait_for()
    page.shot("requested")
    adjustment = Adjustment.objects.get(member=member)
    assert (adjustment.status, adjustment.points) == (Adjustment.Status.PENDING, 500)
    assert adjustment.requested_by == operator
    assert points_account_balance(member=member) == 0  # nothing until approved
    # Operations has no approve action, and no Approve button on the adjustment's page.
    page.goto(f"{page.base}/admin/points/adjustment/")
    assert page.locator("select[name=action] option[value=approve]").count() == 0
    assert page.get_by_text("C88001").count() >= 1
    _fits(page)
    page.goto(f"{page.base}/admin/points/adjustment/{adjustment.pk}/change/")
    assert page.locator(f"a[href$='/{adjustment.pk}/approve/']").count() == 0

    page = console(approver)
    page.goto(f"{page.base}/admin/points/adjustment/?status__exact=pending")
    page.get_by_text("Goodwill: branch queue complaint").wait_for()
    _fits(page)
    page.shot("pending-list")
    page.goto(f"{page.base}/admin/points/adjustment/{adjustment.pk}/change/")
    page.locator(f"a[href$='/{adjustment.pk}/approve/']").first.click()
    page.locator("#decide-summary", has_text="C88001").wait_for()
    page.fill("#id_note", "Complaint ticket 7781")
    page.shot("approve-question")
    page.click("button[name=_decide]")
    page.get_by_text("Adjustment approved.").wait_for()
    page.shot("approved")
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.decided_by, adjustment.decision_note) == (
        Adjustment.Status.APPROVED,
        approver,
        "Complaint ticket 7781",
    )
    assert points_account_balance(member=member) == 500


def test_the_inbox_and_the_ledger_show_fifty_rows_and_fit_the_screen(console):
    member = MemberFactory()
    EarningRuleFactory(code="card")
    ingest([tx_item(member, external_id=f"INBOX-{n:03d}") for n in range(60)])
    admin = UserFactory(username="programme", roles=[roles.PROGRAMME_ADMIN])
    page = console(admin)
    page.goto(f"{page.base}/admin/points/transaction/")
    page.get_by_text("INBOX-059").wait_for()
    assert page.locator("input[name=_selected_action]").count() == 50
    _fits(page)
    page.shot("inbox")
    for path in ("entry", "account", "lot", "earningrule"):
        page.goto(f"{page.base}/admin/points/{path}/")
        page.locator("#result_list").wait_for()
        _fits(page)
    page.goto(f"{page.base}/admin/points/entry/")
    assert page.locator("#result_list tbody tr").count() == 50
    page.shot("ledger")
