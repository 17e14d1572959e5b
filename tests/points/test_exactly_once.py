"""The same transaction, delivered ten times by every route, credits once; concurrent
deliveries really run concurrently (each in its own thread and connection).

The concurrent tests hold a lock on the account table while their threads start: a delivery
that stored something new then waits there, inside its transaction, and the test observes in
``pg_stat_activity`` who waits on whom (one delivery on the lock, the nine others on its inbox
row) before letting them go, so the race is known to have been run, not merely attempted."""

import csv
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from loyalty import roles
from points.models import Account, Entry, Transaction
from points.services.consumer import transactions_process_all
from points.services.reconciliation import points_reconcile
from points.tasks import transactions_ingest_task
from tests.factories import MemberFactory, UserFactory, lock_queue, table_write_locked
from tests.points.conftest import ingest
from tests.points.factories import EarningRuleFactory, tx_item


def _assert_credited_once(member, external_id: str, points: int) -> None:
    assert Transaction.objects.filter(external_id=external_id).count() == 1
    entries = Entry.objects.filter(member=member)
    assert [(e.kind, e.points) for e in entries] == [("earn", points)]
    assert Account.objects.get(member=member).balance == points
    assert points_reconcile()[1] == []


def _run_in_threads(targets) -> tuple[list[BaseException], set[int], set[int]]:
    """Run each target in a thread of its own (its own connection, closed after), started
    together while this connection holds the account table; ``(errors, the deliveries waiting
    on that lock, the ones waiting behind them)`` once every thread that can has queued."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def wrap(target):
        try:
            barrier.wait(timeout=10)
            target()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(target,)) for target in targets]
    with table_write_locked(Account) as holder:
        for thread in threads:
            thread.start()
        front, behind = lock_queue(holder=holder, waiters=len(targets))
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return errors, front, behind


@pytest.mark.django_db
def test_same_transaction_delivered_ten_times_sequentially_credits_once():
    EarningRuleFactory(code="card")
    member = MemberFactory()
    item = tx_item(member, external_id="SEQ1", amount="260.00")
    for _ in range(10):
        ingest([item])
    _assert_credited_once(member, "SEQ1", 13)


@pytest.mark.django_db(transaction=True)
def test_same_transaction_from_ten_parallel_threads_credits_once():
    EarningRuleFactory(code="card")
    member = MemberFactory()
    item = tx_item(member, external_id="PAR1", amount="260.00")
    counts: list[dict] = []
    errors, storing, waiting = _run_in_threads([lambda: counts.append(ingest([item]))] * 10)
    assert errors == []
    # One delivery inserted the row and waited on the account table, inside its transaction;
    # the nine others waited on that uncommitted row (ON CONFLICT), then found it there.
    assert (len(storing), len(waiting)) == (1, 9)
    assert sorted(count["accepted"] for count in counts) == [0] * 9 + [1]
    transactions_process_all()
    _assert_credited_once(member, "PAR1", 13)


@pytest.mark.django_db(transaction=True)
def test_same_transaction_through_api_csv_and_task_together_credits_once(tmp_path: Path):
    EarningRuleFactory(code="card")
    member = MemberFactory()
    item = tx_item(member, external_id="MIX1", amount="260.00")
    csv_file = tmp_path / "daily.csv"
    with csv_file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(item))
        writer.writeheader()
        writer.writerow(item)
    user = UserFactory(roles=[roles.INTEGRATION])
    token = str(RefreshToken.for_user(user).access_token)  # type: ignore[type-var]  # a User
    statuses: list[int] = []

    def via_api():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.post(
            "/api/v1/ingest/transactions/", {"transactions": [item]}, format="json"
        )
        statuses.append(response.status_code)

    def via_csv():
        call_command("import_transactions", str(csv_file), "--no-progress", stdout=None)

    def via_task():
        transactions_ingest_task.delay([item])

    errors, storing, waiting = _run_in_threads([via_api] * 4 + [via_csv] * 3 + [via_task] * 3)
    assert errors == []
    assert (len(storing), len(waiting)) == (1, 9)  # one stored it, nine waited on its row
    assert statuses == [202] * 4
    transactions_process_all()
    _assert_credited_once(member, "MIX1", 13)


@pytest.mark.django_db(transaction=True)
def test_many_members_in_parallel_batches_reconcile():
    EarningRuleFactory(code="card")
    members = [MemberFactory() for _ in range(20)]
    items = [tx_item(members[i % 20], amount="40.00") for i in range(400)]
    chunks = [items[i * 100 : (i + 1) * 100] for i in range(4)]  # each for all twenty members
    errors, storing, waiting = _run_in_threads(
        [lambda chunk=chunk: ingest(chunk) for chunk in chunks]
    )
    assert errors == []
    # All four batches were inside their transactions at once (on the account table).
    assert (len(storing), len(waiting)) == (4, 0)
    transactions_process_all()
    assert Entry.objects.count() == 400
    assert sum(Account.objects.values_list("balance", flat=True)) == 800
    assert points_reconcile()[1] == []
