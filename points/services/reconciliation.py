"""Reconciliation: proves, set-based in SQL, that every account agrees with its ledger."""

from dataclasses import dataclass

from django.db import connection

from points.models import Account, Entry, Lot


@dataclass(frozen=True)
class Discrepancy:
    member_id: int
    balance: int
    entries_sum: int
    lots_remaining: int
    last_balance_after: int | None

    def describe(self) -> str:
        return (
            f"member {self.member_id}: balance {self.balance}, sum of entries {self.entries_sum}, "
            f"lots remaining {self.lots_remaining}, last balance_after {self.last_balance_after}"
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
                   e.balance_after AS last_after
            FROM {account} a
            FULL OUTER JOIN sums s ON s.member_id = a.member_id
            LEFT JOIN lots l ON l.member_id = COALESCE(a.member_id, s.member_id)
            LEFT JOIN {entry} e ON e.id = s.last_id
        )
        SELECT member_id, balance, total, remaining, last_after,
               (SELECT COUNT(*) FROM {account}) AS checked
        FROM joined
        WHERE balance <> total
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
        )
        for row in rows
    ]
