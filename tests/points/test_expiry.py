"""Expiry takes what is left of each due lot exactly once, also when runs overlap, and members
are warned once ahead of it."""

import datetime as dt
import threading

import pytest
from django.db import connection

from members.models import Message
from points.models import Account, Entry, Lot
from points.services.expiry import points_expire_due, points_expiry_warn
from points.services.ledger import points_credit, points_debit
from points.services.reconciliation import points_reconcile
from tests.factories import MemberFactory, lock_queue, table_write_locked


def _credit_expiring(member, points: int, key: str) -> Lot:
    entry = points_credit(member=member, points=points, idempotency_key=key)
    return Lot.objects.get(entry=entry)


@pytest.mark.django_db
def test_expiry_takes_what_is_left_of_due_lots_once():
    member = MemberFactory()
    lot = _credit_expiring(member, 100, "c1")
    points_debit(member=member, points=30, idempotency_key="r1")
    after_expiry = lot.expires_on + dt.timedelta(days=1)
    assert points_expire_due(today=lot.expires_on) == {"lots": 0, "points": 0}
    assert points_expire_due(today=after_expiry) == {"lots": 1, "points": 70}
    assert points_expire_due(today=after_expiry) == {"lots": 0, "points": 0}
    expire = Entry.objects.get(member=member, kind="expire")
    assert (expire.points, expire.balance_after) == (-70, 0)
    assert expire.idempotency_key == f"expire:lot:{lot.pk}"
    assert points_reconcile()[1] == []


@pytest.mark.django_db(transaction=True)
def test_expiry_run_concurrently_expires_each_lot_once():
    """Four runs at once, each in its own thread and connection. While they start this test
    holds the entry table, so the run that locked the accounts first waits there, inside its
    transaction; the test observes that the three others wait behind it (on the account locks)
    before letting them go."""
    members = [MemberFactory() for _ in range(5)]
    lots = [_credit_expiring(member, 40, f"c{i}") for i, member in enumerate(members)]
    today = lots[0].expires_on + dt.timedelta(days=1)
    results, errors = [], []
    barrier = threading.Barrier(4)

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(points_expire_due(today=today))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    with table_write_locked(Entry) as holder:
        for thread in threads:
            thread.start()
        expiring, waiting = lock_queue(holder=holder, waiters=4)
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert (len(expiring), len(waiting)) == (1, 3)  # the runs overlapped, not one after another
    assert sorted(result["lots"] for result in results) == [0, 0, 0, 5]
    assert sum(result["lots"] for result in results) == 5
    assert Entry.objects.filter(kind="expire").count() == 5
    assert set(Account.objects.values_list("balance", flat=True)) == {0}
    assert points_reconcile()[1] == []


@pytest.mark.django_db
def test_member_is_warned_once_before_points_expire(business_clock):
    member = MemberFactory(preferred_language="en")
    lot = _credit_expiring(member, 25, "c1")
    warn_day = lot.expires_on - dt.timedelta(days=30)
    assert points_expiry_warn(today=warn_day - dt.timedelta(days=1)) == 0
    assert points_expiry_warn(today=warn_day) == 1
    assert points_expiry_warn(today=warn_day + dt.timedelta(days=1)) == 0
    message = Message.objects.get(member=member)
    assert message.kind == "points_expiring"
    assert "25" in message.title
    assert business_clock.today < lot.expires_on
