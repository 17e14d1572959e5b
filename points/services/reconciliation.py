"""Reconciliation: proves, set-based in SQL, that every account agrees with its ledger, and
that every debit's lot consumptions add up to it."""

from dataclasses import dataclass

from django.db import connection

from points.models import Account, Consumption, Entry, Lot


@dataclass(frozen=True)
class Discrepancy:
    member_id: int
    balance: int
    entries_sum: int
    lots_remaining: int
    last_balance_after: int | None
    has_account: bool = True

    @property
    def failed(self) -> list[str]:
        """The checks this account fails, by name."""
        checks = []
        if self.balance != self.entries_sum:
            checks.append("balance != sum of entries")
        if self.lots_remaining != max(self.balance, 0):
            checks.append("lots remaining != balance")
        if self.last_balance_after is not None and self.last_balance_after != self.balance:
            checks.append("last balance_after != balance")
        if not self.has_account:
            checks.append("entries without account")
        return checks

    def describe(self) -> str:
        return (
            f"member {self.member_id}: balance {self.balance}, sum of entries {self.entries_sum}, "
            f"lots remaining {self.lots_remaining}, last balance_after {self.last_balance_after} "
            f"({'; '.join(self.failed)})"
        )


@dataclass(frozen=True)
class DebitDiscrepancy:
    """A debit whose consumption rows do not add up to what it took from lots."""

    member_id: int
    entry_id: int
    kind: str
    points: int
    consumed: int

    def describe(self) -> str:
        return (
            f"member {self.member_id}: {self.kind} entry {self.entry_id} of {self.points} points "
            f"drew {self.consumed} from lots (consumptions != debit)"
        )


def points_reconcile(*, limit: int = 20) -> tuple[int, list[Discrepancy]]:
    """``(accounts checked, first discrepancies)``. An account is right when its balance equals
    the sum of its entries and the last entry's ``balance_after``, and its lots hold exactly
    ``max(balance, 0)`` points (a negative balance is debt, with no lot left open); entries of
    a member without an account are a discrepancy too."""
    account, entry, lot = (
        connection.ops.quote_name(model._meta.db_table) for model in (Account, Entry, Lot)
    )
    sql = f"""
        WITH sums AS (
            SELECT member_id, SUM(points) AS total, MAX(id) AS last_id
            FROM {entry} GROUP BY member_id
        ), lots AS (
            SELECT member_id, SUM(remaining) AS remaining FROM {lot} GROUP BY member_id
        ), joined AS (
            SELECT COALESCE(a.member_id, s.member_id) AS member_id,
                   COALESCE(a.balance, 0) AS balance,
                   COALESCE(s.total, 0) AS total,
                   COALESCE(l.remaining, 0) AS remaining,
                   e.balance_after AS last_after,
                   a.member_id IS NOT NULL AS has_account
            FROM {account} a
            FULL OUTER JOIN sums s ON s.member_id = a.member_id
            LEFT JOIN lots l ON l.member_id = COALESCE(a.member_id, s.member_id)
            LEFT JOIN {entry} e ON e.id = s.last_id
        )
        SELECT member_id, balance, total, remaining, last_after,
               (SELECT COUNT(*) FROM {account}) AS checked, has_account
        FROM joined
        WHERE NOT has_account
           OR balance <> total
           OR remaining <> CASE WHEN balance > 0 THEN balance ELSE 0 END
           OR (last_after IS NOT NULL AND last_after <> balance)
        ORDER BY member_id
        LIMIT %s
    """  # noqa: S608 - table names are ours
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        rows = cursor.fetchall()
    checked = rows[0][5] if rows else Account.objects.count()
    return checked, [
        Discrepancy(
            member_id=row[0],
            balance=int(row[1]),
            entries_sum=int(row[2]),
            lots_remaining=int(row[3]),
            last_balance_after=None if row[4] is None else int(row[4]),
            has_account=row[6],
        )
        for row in rows
    ]


# When lots began recording their consumptions: debits before have none to check.
_SINCE = (
    "SELECT COALESCE((SELECT applied FROM django_migrations WHERE app = 'points' "
    "AND name = '0007_lot_consumptions'), '-infinity'::timestamptz)"
)


def consumptions_reconcile(*, limit: int = 20) -> tuple[int, list[DebitDiscrepancy]]:
    """``(debits checked, first discrepancies)``. A debit's consumption rows must sum to its
    points; only a ``reverse`` may draw less (what the balance lacked became debt), never more.
    Consumption rows must belong to a debit, and they and their lots to the debit's member.

    Debits written before lots recorded their consumptions (migration
    ``points.0007_lot_consumptions``, whose time of applying is the cutoff) have none to check.
    """
    entry, consumption, lot = (
        connection.ops.quote_name(model._meta.db_table) for model in (Entry, Consumption, Lot)
    )
    sql = f"""
        WITH drawn AS (
            SELECT c.entry_id, SUM(c.points) AS consumed, MIN(c.member_id) AS member_id,
                   COUNT(DISTINCT c.member_id) > 1 OR bool_or(l.member_id <> c.member_id)
                       AS mixed
            FROM {consumption} c JOIN {lot} l ON l.id = c.lot_id GROUP BY c.entry_id
        ), checked AS (
            SELECT id, member_id, kind, points FROM {entry}
            WHERE points < 0 AND created_at >= ({_SINCE})
        ), debits AS (
            SELECT COALESCE(e.member_id, d.member_id) AS member_id,
                   COALESCE(e.id, d.entry_id) AS entry_id, COALESCE(e.kind, '?') AS kind,
                   COALESCE(-e.points, 0) AS points, COALESCE(d.consumed, 0) AS consumed,
                   e.id IS NULL OR d.mixed OR d.member_id <> e.member_id AS foreign_rows
            FROM checked e
            FULL OUTER JOIN drawn d ON d.entry_id = e.id
        )
        SELECT member_id, entry_id, kind, points, consumed,
               (SELECT COUNT(*) FROM checked) AS checked
        FROM debits
        WHERE foreign_rows
           OR consumed > points
           OR (consumed < points AND kind <> 'reverse')
        ORDER BY member_id, entry_id
        LIMIT %s
    """  # noqa: S608 - table names are ours
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        rows = cursor.fetchall()
        if rows:
            checked = rows[0][5]
        else:
            cursor.execute(
                f"SELECT COUNT(*) FROM {entry} WHERE points < 0 AND created_at >= ({_SINCE})"  # noqa: S608
            )
            checked = cursor.fetchone()[0]
    return checked, [
        DebitDiscrepancy(
            member_id=row[0], entry_id=row[1], kind=row[2], points=int(row[3]), consumed=int(row[4])
        )
        for row in rows
    ]


@dataclass(frozen=True)
class LedgerReport:
    """What :func:`ledger_reconcile` found: every check of this module, in one report."""

    accounts: int
    account_discrepancies: list[Discrepancy]
    debits: int
    debit_discrepancies: list[DebitDiscrepancy]

    @property
    def consistent(self) -> bool:
        return not self.account_discrepancies and not self.debit_discrepancies

    def lines(self) -> list[str]:
        return [item.describe() for item in self.account_discrepancies] + [
            item.describe() for item in self.debit_discrepancies
        ]


def ledger_reconcile(*, limit: int = 20) -> LedgerReport:
    """Every account against its ledger and every debit against its consumptions (the
    command and the nightly task report this)."""
    accounts, account_discrepancies = points_reconcile(limit=limit)
    debits, debit_discrepancies = consumptions_reconcile(limit=limit)
    return LedgerReport(accounts, account_discrepancies, debits, debit_discrepancies)
