"""Test data (factory_boy factories), and helpers that read the database back: its whole state,
and which backend waits on which lock."""

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User

from members.models import AssetSnapshot, Member


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    customer_no = factory.Sequence(lambda n: f"C{n:08d}")
    name = factory.Faker("name")
    phone = factory.Sequence(lambda n: f"138{n:08d}")
    email = factory.LazyAttribute(lambda m: f"{m.customer_no.lower()}@example.com")
    city = "Shanghai"
    branch_code = "SH001"
    marketing_consent = True
    joined_at = dt.date(2024, 1, 15)


class AssetSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssetSnapshot

    member = factory.SubFactory(MemberFactory)
    as_of = dt.date(2026, 10, 31)
    deposits = Decimal("50000.00")
    wealth = Decimal("0.00")
    funds = Decimal("0.00")
    insurance = Decimal("0.00")
    loans = Decimal("0.00")
    contribution = Decimal("1000.00")


# Reading the database back: what a refused request must leave as it was, and who waits on whom.


def database_state(*, ignore: tuple[str, ...] = ("django_session",)) -> dict[str, tuple]:
    """Every table of the schema as ``(row count, digest of its rows)``: equal before and after
    a request means it added, removed and altered nothing (entries, lots, balances, adjustments,
    inbox rows, idempotency records, audit rows...). ``ignore`` names tables left out."""
    from django.db import connection

    state: dict[str, tuple] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        tables = [name for (name,) in cursor.fetchall() if name not in ignore]
        for table in tables:
            digest = "md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))"
            quoted = connection.ops.quote_name(table)  # a name from the catalogue
            cursor.execute(f"SELECT count(*), {digest} FROM {quoted} AS t")  # noqa: S608
            state[table] = cursor.fetchone()
    return state


@contextlib.contextmanager
def table_write_locked(model) -> Iterator[int]:
    """Hold ``LOCK TABLE ... IN SHARE MODE`` on ``model``'s table from this thread's connection
    (a ``transaction=True`` test's): reads and ``SELECT ... FOR UPDATE`` go on, every statement
    writing the table waits until the block ends. Yields this connection's backend pid."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"LOCK TABLE {connection.ops.quote_name(model._meta.db_table)} IN SHARE MODE"
        )
        cursor.execute("SELECT pg_backend_pid()")
        yield cursor.fetchone()[0]


def lock_queue(*, holder: int, waiters: int, timeout: float = 20) -> tuple[set[int], set[int]]:
    """Wait until ``waiters`` other backends of this database wait on a heavyweight lock
    (``pg_stat_activity.wait_event_type = 'Lock'``), or ``timeout`` seconds; then
    ``(those the backend `holder` blocks, those waiting behind them)``: the second set is every
    waiter whose ``pg_blocking_pids`` lead, directly or through other waiters, to the first."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # else one snapshot per transaction
            cursor.execute(
                "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND wait_event_type = 'Lock'"
            )
            waiting = {pid: set(blockers) for pid, blockers in cursor.fetchall()}
        if len(waiting) >= waiters or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    front = {pid for pid, blockers in waiting.items() if holder in blockers}
    behind: set[int] = set()
    reached = set(front)
    while True:
        more = {pid for pid, blockers in waiting.items() if blockers & reached} - reached
        if not more:
            return front, behind
        behind |= more
        reached |= more
