"""The audit log in the console reads in the reader's language: the action's label and the
target's kind, not raw codes."""

import pytest

from loyalty.models import AuditAction
from loyalty.services import audit_log_record
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_audit_rows_show_the_action_and_target_kind_translated(admin_client):
    member = MemberFactory()
    audit_log_record(actor=None, action=AuditAction.MEMBER_FREEZE, target=member, reason="Fraud")
    page = admin_client.get(
        "/admin/loyalty/auditlog/", headers={"accept-language": "zh-hans"}
    ).content.decode()
    rows = page[page.index('id="result_list"') : page.index("</table>")]
    assert "member.freeze" not in rows
    assert "members.member" not in rows
    assert "会员冻结" in rows
    assert f"会员 {member.customer_no}" in rows
