"""The customer view in a real browser: an operations user finds a member by customer number in
the member list, opens the member's page and sees the balance and the ledger; the page and the
console's member lists fit a 1,280 px window without a horizontal scroll."""

import pytest

from loyalty import roles
from points.models import Account
from points.services.ledger import points_credit
from tests.factories import AssetSnapshotFactory, MemberFactory, UserFactory
from tests.members.tier_helpers import evaluate, ladder, snapshots

pytestmark = pytest.mark.django_db(transaction=True)

# How far the page, or any box in it that scrolls sideways (the list's table sits in one),
# is wider than the window or the box: 0 when nothing needs a horizontal scroll.
OVERFLOW = """() => {
  let worst = document.documentElement.scrollWidth - window.innerWidth;
  for (const box of document.querySelectorAll('*')) {
    const overflowX = getComputedStyle(box).overflowX;
    if ((overflowX === 'auto' || overflowX === 'scroll') && box.clientWidth > 0) {
      worst = Math.max(worst, box.scrollWidth - box.clientWidth);
    }
  }
  return worst;
}"""


def overflow(page) -> int:
    return page.evaluate(OVERFLOW)


def test_an_operator_opens_a_member_by_customer_number_and_sees_balance_and_ledger(console):
    ladder()
    member = MemberFactory(customer_no="CUST4242", name="Zhang Wei", preferred_language="en")
    other = MemberFactory(customer_no="CUST9999", name="Someone Else")
    snapshots(member, "150000.00")
    evaluate()
    for number in range(25):
        points_credit(
            member=member,
            points=10 + number,
            idempotency_key=f"browser-{number}",
            description=f"Card spend bonus {number}",
        )
    points_credit(member=other, points=999, idempotency_key="other", description="Not hers")
    balance = Account.objects.get(member=member).balance
    operator = UserFactory(username="operator", roles=[roles.OPERATIONS])

    page = console(operator)
    page.goto(f"{page.base}/admin/members/member/")
    assert overflow(page) <= 0
    page.fill("input[name=q]", "CUST4242")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/members/member/?q=CUST4242*")
    page.shot("search")
    page.get_by_role("link", name="CUST4242").click()
    page.wait_for_url("**/admin/members/member/customer/CUST4242/")
    page.locator("#points-balance").wait_for()
    assert page.locator("#points-balance").inner_text().strip() == str(balance)
    ledger = page.locator("#ledger")
    assert ledger.get_by_text("Card spend bonus 24").count() == 1
    assert ledger.get_by_text("Not hers").count() == 0
    assert "CUST9999" not in page.content()
    # The newest rows only, and the way to the full ledger by customer number.
    assert ledger.get_by_text("Card spend bonus 0", exact=True).count() == 0
    link = ledger.get_by_role("link").first.get_attribute("href")
    assert link.endswith("?member__customer_no=CUST4242")
    page.shot("customer-view")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert overflow(page) <= 0


@pytest.mark.parametrize(
    "path",
    [
        "/admin/members/member/",
        "/admin/members/tier/",
        "/admin/members/assetsnapshot/",
        "/admin/members/tieroverride/",
        "/admin/members/tierhistory/",
        "/admin/members/membertier/",
        "/admin/members/tierevaluationrun/",
        "/admin/members/segment/",
    ],
)
def test_the_members_lists_fit_1280_px(console, path):
    ladder()
    member = MemberFactory(
        name="Ouyang Zhongming Alexander", city="Urumqi Economic Zone", branch_code="XJ000123"
    )
    AssetSnapshotFactory(member=member)
    admin = UserFactory(username="programme", roles=[roles.PROGRAMME_ADMIN])
    page = console(admin)
    page.goto(f"{page.base}{path}")
    page.locator("#content").wait_for()
    excess = overflow(page)
    if excess > 0:
        page.shot(path.strip("/").replace("/", "-"))
    assert excess <= 0, f"{path} is {excess} px too wide"


def test_closing_from_the_list_shows_the_balances_and_waits_for_a_reason(console):
    member = MemberFactory(customer_no="LEAVE001", name="Leaving Member")
    points_credit(member=member, points=1234, idempotency_key="leave", description="Bonus")
    admin = UserFactory(username="programme", roles=[roles.PROGRAMME_ADMIN])
    page = console(admin)
    page.goto(f"{page.base}/admin/members/member/?q=LEAVE001")
    page.check(f"input[name=_selected_action][value='{member.pk}']")
    page.select_option("select[name=action]", "close")
    page.click("button[name=index]")
    page.locator("#confirm-members").wait_for()
    assert "1234" in page.locator("#confirm-members").inner_text()
    assert "1234 in all" in page.locator("#forfeit-total").inner_text()
    page.shot("close-confirmation")
    member.refresh_from_db()
    assert member.status == "active"  # nothing yet
    page.fill("textarea[name=reason]", "Customer moved abroad")
    page.click("button[name=_confirm]")
    page.get_by_text("1 members closed.").wait_for()
    member.refresh_from_db()
    assert member.status == "closed"
