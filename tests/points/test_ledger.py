"""The ledger's guarantees, example by example: append-only entries (also against raw SQL),
no overdraft, one entry per idempotency key, lots consumed earliest expiry first, debt repaid
before a new lot opens, and each entry's ``balance_after`` the running balance."""

import datetime as dt

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from loyalty.errors import Conflict
from loyalty.services import programme_settings_update
from members.errors import MemberInactive
from members.services.members import member_freeze
from points.errors import InsufficientPoints
from points.models import Account, Entry, Lot
from points.services.ledger import lot_expiry_date, points_credit, points_debit
from tests.factories import MemberFactory
from tests.points.conftest import ingest
from tests.points.factories import tx_item

pytestmark = pytest.mark.django_db


def _balance(member) -> int:
    return Account.objects.get(member=member).balance


def test_raw_sql_update_of_an_entry_fails():
    member = MemberFactory()
    entry = points_credit(member=member, points=10, idempotency_key="k1")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE points_entry SET points = 1000 WHERE id = %s", [entry.pk])
    assert Entry.objects.get(pk=entry.pk).points == 10


def test_raw_sql_delete_of_an_entry_fails():
    member = MemberFactory()
    entry = points_credit(member=member, points=10, idempotency_key="k1")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM points_entry WHERE id = %s", [entry.pk])
    assert Entry.objects.filter(pk=entry.pk).exists()


def test_database_refuses_a_debit_entry_below_zero():
    member = MemberFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(
            member=member, kind="redeem", points=-5, balance_after=-5, idempotency_key="x"
        )


def test_database_refuses_a_credit_kind_with_negative_points():
    member = MemberFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(
            member=member, kind="earn", points=-5, balance_after=0, idempotency_key="x"
        )


def test_same_idempotency_key_credits_once():
    member = MemberFactory()
    first = points_credit(member=member, points=50, idempotency_key="event:1")
    second = points_credit(member=member, points=50, idempotency_key="event:1")
    assert first.pk == second.pk
    assert _balance(member) == 50


def test_debit_consumes_lots_in_expiry_order():
    member = MemberFactory()
    now = dt.datetime.now(dt.UTC)
    points_credit(member=member, points=30, idempotency_key="new", occurred_at=now)
    points_credit(
        member=member, points=20, idempotency_key="old", occurred_at=now - dt.timedelta(days=400)
    )
    points_debit(member=member, points=25, idempotency_key="r1")
    lots = {lot.entry.idempotency_key: lot.remaining for lot in Lot.objects.select_related("entry")}
    assert lots == {"old": 0, "new": 25}
    assert _balance(member) == 25
    assert Account.objects.get(member=member).lifetime_redeemed == 25


def test_debit_beyond_balance_is_refused_and_writes_nothing():
    member = MemberFactory()
    points_credit(member=member, points=10, idempotency_key="c")
    with pytest.raises(InsufficientPoints):
        points_debit(member=member, points=11, idempotency_key="r")
    assert _balance(member) == 10
    assert Entry.objects.filter(member=member).count() == 1


def test_frozen_member_cannot_redeem_or_earn():
    member = MemberFactory()
    points_credit(member=member, points=10, idempotency_key="c")
    member_freeze(member=member, actor=None)
    member.refresh_from_db()
    with pytest.raises(MemberInactive):
        points_debit(member=member, points=1, idempotency_key="r")
    with pytest.raises(MemberInactive):
        points_credit(member=member, points=1, idempotency_key="c2")


@pytest.mark.parametrize(
    ("policy", "earned", "expected"),
    [
        ("end_of_month", dt.date(2026, 1, 15), dt.date(2028, 1, 31)),
        ("exact", dt.date(2026, 1, 31), dt.date(2028, 1, 31)),
        ("exact", dt.date(2024, 2, 29), dt.date(2026, 2, 28)),
        ("never", dt.date(2026, 1, 15), None),
    ],
)
def test_lot_expiry_follows_programme_policy(policy, earned, expected):
    settings = programme_settings_update(actor=None, expiry_policy=policy, expiry_months=24)
    assert lot_expiry_date(earned_on=earned, settings=settings) == expected


def test_entry_public_ids_are_random_v4_and_never_repeat_across_a_fork():
    # Entry ids come from a pool of random bytes; a forked worker must not reuse its parent's.
    import os

    from points.services.ledger import _uuid4

    drawn = [_uuid4() for _ in range(600)]
    assert len(set(drawn)) == 600
    assert {u.version for u in drawn} == {4}
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, str(_uuid4()).encode())
        os._exit(0)
    os.waitpid(child, 0)
    in_child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert in_child != str(_uuid4())


def test_each_entry_records_the_running_balance():
    member = MemberFactory()
    points_credit(member=member, points=10, idempotency_key="c1")
    points_debit(member=member, points=4, idempotency_key="d1")
    points_credit(member=member, points=5, idempotency_key="c2")
    points_debit(member=member, points=11, idempotency_key="d2")
    rows = Entry.objects.filter(member=member).order_by("id").values_list("points", "balance_after")
    assert list(rows) == [(10, 10), (-4, 6), (5, 11), (-11, 0)]
    assert _balance(member) == 0


def test_same_idempotency_key_for_a_different_entry_is_a_conflict():
    member = MemberFactory()
    first = points_credit(member=member, points=50, idempotency_key="event:2")
    with pytest.raises(Conflict):
        points_credit(member=member, points=60, idempotency_key="event:2")
    with pytest.raises(Conflict):
        points_debit(member=member, points=50, idempotency_key="event:2")
    assert list(Entry.objects.filter(member=member).values_list("pk", flat=True)) == [first.pk]
    assert _balance(member) == 50


def test_same_idempotency_key_debits_once():
    member = MemberFactory()
    points_credit(member=member, points=50, idempotency_key="c")
    first = points_debit(member=member, points=20, idempotency_key="redeem:1")
    again = points_debit(member=member, points=20, idempotency_key="redeem:1")
    assert first.pk == again.pk
    assert _balance(member) == 30
    assert Lot.objects.get(member=member).remaining == 30


def test_a_credit_repays_debt_before_it_opens_a_lot(card_rule):
    member = MemberFactory()
    original = tx_item(member, amount="1000.00")  # 50 points
    ingest([original])
    points_debit(member=member, points=45, idempotency_key="spent")
    ingest([tx_item(member, amount="1000.00", reverses=original["external_id"])])
    account = Account.objects.get(member=member)
    assert (account.balance, account.lifetime_earned, account.lifetime_redeemed) == (-45, 0, 45)
    assert list(Lot.objects.filter(member=member).values_list("remaining", flat=True)) == [0]
    ingest([tx_item(member, amount="1200.00")])  # 60 points: 45 repay the debt, 15 remain
    lots = Lot.objects.filter(member=member).order_by("id").values_list("points", "remaining")
    assert list(lots) == [(50, 0), (60, 15)]
    assert _balance(member) == 15
    kinds = Entry.objects.filter(member=member).order_by("id").values_list("kind", "balance_after")
    assert list(kinds) == [("earn", 50), ("redeem", 5), ("reverse", -45), ("earn", 15)]


def test_a_debit_spans_lots_in_expiry_order_and_leaves_later_ones():
    programme_settings_update(actor=None, expiry_policy="exact", expiry_months=12)
    member = MemberFactory()
    now = dt.datetime.now(dt.UTC)
    for key, days_ago, points in [("mid", 100, 10), ("new", 0, 10), ("old", 200, 10)]:
        points_credit(
            member=member,
            points=points,
            idempotency_key=key,
            occurred_at=now - dt.timedelta(days=days_ago),
        )
    points_debit(member=member, points=15, idempotency_key="r")
    lots = {lot.entry.idempotency_key: lot.remaining for lot in Lot.objects.select_related("entry")}
    assert lots == {"old": 0, "mid": 5, "new": 10}
