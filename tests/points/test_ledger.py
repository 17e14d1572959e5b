import datetime as dt

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from loyalty.services import programme_settings_update
from members.errors import MemberInactive
from members.services.members import member_freeze
from points.errors import InsufficientPoints
from points.models import Account, Entry, Lot
from points.services.ledger import lot_expiry_date, points_credit, points_debit
from tests.factories import MemberFactory

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
