"""``reconcile_points`` catches each broken invariant on its own, and names the member.

Each test builds a correct ledger through the services (credits, a debit, expiry, a reversal
into debt), proves the command passes on it, then breaks exactly one invariant by raw SQL, as a
bad migration or a hand edit would:

* the balance differs from the sum of the entries (a forged entry whose ``balance_after`` still
  agrees with the balance, and lots untouched);
* the lots hold more or less than ``max(balance, 0)`` (a lot's ``remaining`` edited), also for an
  account in debt, where no lot may stay open;
* the last entry's ``balance_after`` differs from the balance (the ledger's append-only trigger
  switched off for the edit, inside the test's transaction);
* entries of a member without an account (the account row deleted).

Every other invariant still holds after the break, so a reconciliation that lost the one check
concerned reports nothing and the test fails. A second, untouched member must never be reported.
"""

import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from points.models import Account, Entry, Lot
from points.services.expiry import points_expire_due
from points.services.ledger import points_credit, points_debit
from points.services.reconciliation import points_reconcile
from tests.factories import MemberFactory
from tests.points.conftest import ingest
from tests.points.factories import tx_item

pytestmark = pytest.mark.django_db


def _reconcile() -> tuple[int, str, str]:
    """Run the command: ``(exit code, stdout, stderr)``."""
    out, err = StringIO(), StringIO()
    try:
        call_command("reconcile_points", stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _reported(member) -> list[tuple]:
    """What :func:`points_reconcile` reports for ``member``: (balance, entries sum, lots
    remaining, last balance_after) per discrepancy row."""
    _checked, discrepancies = points_reconcile()
    return [
        (d.balance, d.entries_sum, d.lots_remaining, d.last_balance_after)
        for d in discrepancies
        if d.member_id == member.pk
    ]


def _reported_members() -> set[int]:
    return {d.member_id for d in points_reconcile()[1]}


CHECKS = {
    "sum": "balance != sum of entries",
    "lots": "lots remaining != balance",
    "last": "last balance_after != balance",
    "orphan": "entries without account",
}


def _member_line(stderr: str, member) -> str:
    """The one line of the command's report about ``member``."""
    pattern = re.compile(rf"^member {member.pk}\b")
    lines = [line for line in stderr.splitlines() if pattern.match(line)]
    assert len(lines) == 1, stderr
    return lines[0]


def _assert_names_only(line: str, *checks: str) -> None:
    """The report line names exactly these failed checks, and no other."""
    named = {name for name, text in CHECKS.items() if text in line}
    assert named == set(checks), line


def _healthy_ledger():
    """Two members with a correct ledger: an old lot (expired), two live lots, a debit.

    Returns ``(member, bystander)``; ``member`` ends with balance 70 in two lots (60 + 10).
    """
    member, bystander = MemberFactory(), MemberFactory()
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=800)
    key = f"m{member.pk}"
    points_credit(member=member, points=15, idempotency_key=f"{key}:old", occurred_at=old)
    points_credit(member=member, points=60, idempotency_key=f"{key}:a", occurred_at=now)
    points_credit(member=member, points=30, idempotency_key=f"{key}:b", occurred_at=now)
    points_expire_due(today=now.date())  # the 800-day-old lot (15 points) expires
    points_debit(member=member, points=20, idempotency_key=f"{key}:r")  # lot "a": 60 -> 40
    points_credit(member=bystander, points=40, idempotency_key=f"m{bystander.pk}:c")
    assert Entry.objects.filter(member=member, kind="expire", points=-15).count() == 1
    assert Account.objects.get(member=member).balance == 70
    assert _reconcile()[0] == 0
    return member, bystander


def _sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_a_correct_ledger_passes():
    _healthy_ledger()
    code, out, err = _reconcile()
    assert (code, err) == (0, "")
    assert "2 accounts checked" in out
    assert "all consistent" in out


def test_a_correct_ledger_in_debt_passes(card_rule):
    """A reversal of points already spent leaves a negative balance and no open lot."""
    member = MemberFactory()
    original = tx_item(member, amount="1000.00")  # 50 points
    ingest([original])
    points_debit(member=member, points=45, idempotency_key="spent")
    ingest([tx_item(member, amount="1000.00", reverses=original["external_id"])])
    assert Account.objects.get(member=member).balance == -45
    assert _reconcile()[0] == 0
    assert points_reconcile()[1] == []


def test_balance_differing_from_the_sum_of_entries_fails():
    member, bystander = _healthy_ledger()
    # A forged credit: its balance_after is the balance as it stands, the lots are untouched,
    # so only "balance == sum(entries)" is broken.
    _sql(
        "INSERT INTO points_entry (public_id, member_id, kind, points, balance_after, "
        "description, reference, idempotency_key, rules, occurred_at, created_at) "
        "VALUES (gen_random_uuid(), %s, 'bonus', 9, 70, '', '', 'forged', '{}', now(), now())",
        [member.pk],
    )
    assert _reported(member) == [(70, 79, 70, 70)]
    assert _reported_members() == {member.pk}
    code, _out, err = _reconcile()
    assert code == 1
    line = _member_line(err, member)
    assert "balance 70" in line
    assert "sum of entries 79" in line
    _assert_names_only(line, "sum")
    assert f"member {bystander.pk}:" not in err


@pytest.mark.parametrize("change", [-5, +5])
def test_lots_differing_from_the_balance_fail(change):
    member, bystander = _healthy_ledger()
    lot = Lot.objects.get(member=member, entry__idempotency_key=f"m{member.pk}:a")
    assert lot.remaining == 40
    _sql("UPDATE points_lot SET remaining = remaining + %s WHERE id = %s", [change, lot.pk])
    assert _reported(member) == [(70, 70, 70 + change, 70)]
    assert _reported_members() == {member.pk}
    code, _out, err = _reconcile()
    assert code == 1
    line = _member_line(err, member)
    assert "balance 70" in line
    assert f"lots remaining {70 + change}" in line
    _assert_names_only(line, "lots")
    assert f"member {bystander.pk}:" not in err


def test_an_open_lot_while_in_debt_fails(card_rule):
    """In debt the lots must hold 0 points, not the (negative) balance, nor anything above 0."""
    member = MemberFactory()
    original = tx_item(member, amount="1000.00")
    ingest([original])
    points_debit(member=member, points=45, idempotency_key="spent")
    ingest([tx_item(member, amount="1000.00", reverses=original["external_id"])])
    assert _reconcile()[0] == 0
    lot = Lot.objects.get(member=member)
    _sql("UPDATE points_lot SET remaining = 3 WHERE id = %s", [lot.pk])
    assert _reported(member) == [(-45, -45, 3, -45)]
    code, _out, err = _reconcile()
    assert code == 1
    line = _member_line(err, member)
    assert "lots remaining 3" in line
    _assert_names_only(line, "lots")


def test_last_balance_after_differing_from_the_balance_fails():
    member, bystander = _healthy_ledger()
    last = Entry.objects.filter(member=member).order_by("-id").first()
    assert last is not None
    assert last.balance_after == 70
    # The ledger is append-only by a trigger: switched off for this one edit (the DDL is part
    # of the test's transaction and rolled back with it).
    _sql("ALTER TABLE points_entry DISABLE TRIGGER USER", [])
    _sql("UPDATE points_entry SET balance_after = 71 WHERE id = %s", [last.pk])
    _sql("ALTER TABLE points_entry ENABLE TRIGGER USER", [])
    assert _reported(member) == [(70, 70, 70, 71)]
    assert _reported_members() == {member.pk}
    code, _out, err = _reconcile()
    assert code == 1
    line = _member_line(err, member)
    assert "balance 70" in line
    assert "last balance_after 71" in line
    _assert_names_only(line, "last")
    assert f"member {bystander.pk}:" not in err


def test_the_append_only_trigger_is_back_after_the_edit():
    """The edit above leaves the ledger protected again."""
    member, _bystander = _healthy_ledger()
    _sql("ALTER TABLE points_entry DISABLE TRIGGER USER", [])
    _sql("ALTER TABLE points_entry ENABLE TRIGGER USER", [])
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _sql("UPDATE points_entry SET balance_after = 1 WHERE member_id = %s", [member.pk])


def test_entries_of_a_member_without_an_account_fail():
    member, bystander = _healthy_ledger()
    _sql("DELETE FROM points_account WHERE member_id = %s", [member.pk])
    assert _reported(member) == [(0, 70, 70, 70)]
    assert _reported_members() == {member.pk}
    code, _out, err = _reconcile()
    assert code == 1
    line = _member_line(err, member)
    assert "sum of entries 70" in line
    # Balance 0 against entries, lots and balance_after of 70: every check trips, the missing
    # account first of all.
    _assert_names_only(line, "orphan", "sum", "lots", "last")
    assert f"member {bystander.pk}:" not in err


def test_entries_summing_to_zero_of_a_member_without_an_account_fail():
    """Numbers that agree with a missing (zero) account still do not make orphans right."""
    member = MemberFactory()
    points_credit(member=member, points=10, idempotency_key="in")
    points_debit(member=member, points=10, idempotency_key="out")
    assert _reconcile()[0] == 0
    _sql("DELETE FROM points_account WHERE member_id = %s", [member.pk])
    assert Entry.objects.filter(member=member).count() == 2
    assert _reported(member) == [(0, 0, 0, 0)]
    assert _reported_members() == {member.pk}
    code, _out, err = _reconcile()
    assert code == 1
    _assert_names_only(_member_line(err, member), "orphan")


def test_the_command_prints_at_most_limit_members():
    members = [_healthy_ledger()[0] for _ in range(3)]
    _sql(
        "UPDATE points_account SET balance = balance + 1 WHERE member_id = ANY(%s)",
        [[m.pk for m in members]],
    )
    err = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("reconcile_points", "--limit", "2", stderr=err, stdout=StringIO())
    assert error.value.returncode == 1
    printed = [line for line in err.getvalue().splitlines() if line.startswith("member ")]
    assert [_member_line(err.getvalue(), m) for m in members[:2]] == printed
