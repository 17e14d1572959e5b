"""The consumer: turns pending inbox rows into ledger entries, a batch per database transaction.

A batch claims pending rows with ``FOR UPDATE SKIP LOCKED`` (parallel consumers take disjoint
rows), locks the accounts involved in primary-key order (skipping, not waiting for, accounts
another consumer holds: those rows stay pending for a later batch), computes every row's points,
writes the entries and lots in bulk, updates balances and marks the rows done, then commits.
A worker that dies mid-batch rolls the whole batch back, leaving the rows pending for the next
consumer; each row's entry also has a unique idempotency key (``tx:<source>:<external_id>``),
so no row is ever credited twice.

Failures are told apart by their cause (:func:`transient_error`):

* A *transient* failure (the connection lost or terminated, a serialization failure, a
  deadlock, a lock timeout, the server shutting down: nothing to do with the rows) rolls the
  batch back, closes the broken connection and runs the batch again whole, with backoff, up to
  ``POINTS_CONSUMER_TRANSIENT_ATTEMPTS`` times. If it keeps failing the error is raised and
  every row stays ``pending``: the task is retried later (and the sweeper re-enqueues it). A
  transient failure never marks a row ``failed``.
* Any other failure of a batch is taken to be some row's own fault. The batch is split in
  halves, each processed in its own transaction, down to the rows that fail alone: only such
  a row is marked ``failed``, with the error as its reason (staff retry it from the admin once
  the cause is fixed); every other row of the batch is credited.
"""

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from loyalty.errors import Conflict
from loyalty.money import points_for_amount
from members.models import Member
from members.selectors import member_segments, member_tiers_for_earning
from points.descriptions import earning_text, refund_text
from points.errors import InsufficientPoints
from points.models import EarningRule, Entry, Transaction
from points.services.earning import (
    campaigns_active,
    earning_points_calculate,
    earning_rule_matches,
    earning_rules_active,
)
from points.services.ingest import consumer_batch_size, consumer_max_batches
from points.services.ledger import LedgerBatch, accounts_lock
from points.services.sql import raw_cursor, rows_update

logger = logging.getLogger(__name__)

Status = Transaction.Status
_DONE = (Status.PROCESSED, Status.SKIPPED, Status.FAILED)


def transaction_entry_key(*, source: str, external_id: str) -> str:
    return f"tx:{source}:{external_id}"


_ROW_FIELDS = ("id", *Transaction.DELIVERED_FIELDS, "member_id", "status")


class _Row:
    """An inbox row being processed (lighter than a model instance)."""

    __slots__ = (*_ROW_FIELDS, "points", "processed_at", "status_reason")

    id: int
    source: str
    external_id: str
    type: str
    amount: Decimal
    currency: str
    occurred_at: dt.datetime
    channel: str
    merchant_category: str
    reverses: str
    member_id: int
    status: str

    def __init__(self, values: tuple) -> None:
        for name, value in zip(_ROW_FIELDS, values, strict=True):
            setattr(self, name, value)
        self.status_reason = ""
        self.points = 0
        self.processed_at: dt.datetime | None = None


_TABLE = Transaction._meta.db_table
_SELECT = f"SELECT {', '.join(_ROW_FIELDS)} FROM {_TABLE}"  # noqa: S608 - the model's own names


def _claim(queryset, limit: int | None = None) -> list[_Row]:
    """Lock and load rows no other consumer holds, oldest first."""
    rows = queryset.select_for_update(skip_locked=True).order_by("id").values_list(*_ROW_FIELDS)
    return [_Row(values) for values in (rows[:limit] if limit else rows)]


def _claim_pending(limit: int) -> list[_Row]:
    """Lock and load up to ``limit`` pending rows no other consumer holds, oldest first."""
    with raw_cursor() as cursor:
        # Walk the partial index of pending rows in id order and stop after ``limit``. The
        # planner would otherwise, whenever its statistics count few pending rows (a backlog
        # that built up since the last ANALYZE), fetch every pending row with a bitmap scan and
        # sort them all to take the first ``limit``: a cost growing with the backlog, per batch.
        cursor.execute(
            "SELECT current_setting('enable_bitmapscan'), "
            "set_config('enable_bitmapscan', 'off', true)"
        )
        previous = cursor.fetchone()[0]
        cursor.execute(
            f"{_SELECT} WHERE status = %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            [Status.PENDING, limit],
            binary=True,
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT set_config('enable_bitmapscan', %s, true)", [previous])
    return [_Row(values) for values in rows]


def _claim_parked(originals: list[_Row]) -> list[_Row]:
    """Lock and load the parked refunds of ``originals`` no other consumer holds."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for row in originals:
        by_source[row.source].append(row.external_id)
    condition = Q()
    for source, external_ids in by_source.items():
        condition |= Q(source=source, reverses__any=external_ids)
    # ``reverses <> ''`` lets the planner use the partial index on (source, reverses).
    parked = Transaction.objects.filter(condition, status=Status.PARKED).exclude(reverses="")
    return _claim(parked)


def _member_statuses(member_ids: list[int]) -> dict[int, str]:
    return dict(Member.objects.filter(pk__any=member_ids).values_list("pk", "status"))


def _stored_keys(keys: list[str]) -> set[str]:
    """Those of ``keys`` some entry already has."""
    found = Entry.objects.filter(idempotency_key__any=keys)
    return set(found.values_list("idempotency_key", flat=True))


class _Batch:
    def __init__(self, rows: list[_Row], parked: list[_Row]) -> None:
        self.now = timezone.now()
        # Accounts another consumer holds are skipped, not waited for: their rows stay pending
        # (unlocked again at commit) and go into a later batch, in the same order.
        self.accounts = accounts_lock(
            member_ids={row.member_id for row in rows + parked}, skip_locked=True
        )
        self.rows = [row for row in rows if row.member_id in self.accounts]
        self.parked = [row for row in parked if row.member_id in self.accounts]
        every = self.rows + self.parked
        self.member_ids = sorted(self.accounts)
        self.member_status = _member_statuses(self.member_ids)
        self.ledger = LedgerBatch(accounts=self.accounts, now=self.now)
        tiers = member_tiers_for_earning(member_ids=self.member_ids)
        self.tiers = {pk: code for pk, (code, _) in tiers.items()}
        self.multipliers = {pk: multiplier for pk, (_, multiplier) in tiers.items()}
        self.rules = earning_rules_active()
        self._candidates: dict[tuple, list[tuple[EarningRule, Decimal]]] = {}
        if not every:
            return
        first_day = min(self.ledger.business_date(row.occurred_at) for row in every)
        self.campaigns = campaigns_active(on_or_after=first_day)
        self.segments = member_segments(
            member_ids=self.member_ids,
            segment_ids={c.target_segment for c in self.campaigns if c.target_segment},
        )
        self.by_key = {(row.source, row.external_id): row for row in every}
        keys = [transaction_entry_key(source=r.source, external_id=r.external_id) for r in every]
        self.stored_keys = _stored_keys(keys)
        self._load_usage(first_day.replace(day=1))
        self._load_originals([row for row in every if row.reverses])

    def _load_usage(self, since: dt.date) -> None:
        self.day_usage: dict[tuple[int, int, dt.date], int] = defaultdict(int)
        self.month_usage: dict[tuple[int, int, dt.date], int] = defaultdict(int)
        capped = [rule.pk for rule in self.rules if rule.cap_per_day or rule.cap_per_month]
        if not capped:
            return
        rows = (
            Entry.objects.filter(
                member_id__in=self.member_ids,
                earning_rule_id__in=capped,
                earned_on__gte=since,
                kind=Entry.Kind.EARN,
            )
            .values("member_id", "earning_rule_id", "earned_on")
            .annotate(total=Sum("points"))
        )
        for row in rows:
            # ``earned_on__gte`` above leaves out entries without an earning date.
            self._use(row["member_id"], row["earning_rule_id"], row["earned_on"], row["total"])  # type: ignore[arg-type]

    def _use(self, member_id: int, rule_id: int, on: dt.date, points: int) -> None:
        self.day_usage[(member_id, rule_id, on)] += points
        self.month_usage[(member_id, rule_id, on.replace(day=1))] += points

    def _load_originals(self, reversals: list[_Row]) -> None:
        self.originals: dict[tuple[str, str], Transaction] = {}
        self.reversed_so_far: dict[tuple[str, str], tuple[Decimal, int]] = {}
        if not reversals:
            return
        wanted = {(row.source, row.reverses) for row in reversals}
        condition = Q()
        for source, external_id in wanted:
            condition |= Q(source=source, external_id=external_id)
        for original in Transaction.objects.filter(condition):
            self.originals[(original.source, original.external_id)] = original
        claimed = [row.id for row in reversals]
        condition = Q()
        for source, external_id in wanted:
            condition |= Q(source=source, reverses=external_id)
        totals = (
            Transaction.objects.filter(condition, status=Status.PROCESSED)
            .exclude(pk__in=claimed)
            .values("source", "reverses")
            .annotate(amount=Sum("amount"), points=Sum("points"))
        )
        for row in totals:
            self.reversed_so_far[(row["source"], row["reverses"])] = (
                row["amount"] or Decimal(0),
                -(row["points"] or 0),
            )

    def _rule(self, row: _Row, on: dt.date) -> EarningRule | None:
        """:func:`earning_rule_select` for the row: the rules that match everything but the
        amount are remembered per kind of transaction and day; the first of them whose minimum
        amount the row reaches applies, as the first matching rule would."""
        kind = (row.type, row.channel, row.merchant_category, row.currency, on)
        candidates = self._candidates.get(kind)
        if candidates is None:
            candidates = self._candidates[kind] = [
                (rule, rule.min_amount)
                for rule in self.rules
                if earning_rule_matches(
                    rule=rule,
                    type=row.type,
                    channel=row.channel,
                    merchant_category=row.merchant_category,
                    amount=rule.min_amount,
                    currency=row.currency,
                    on=on,
                )
            ]
        amount = row.amount
        return next((rule for rule, minimum in candidates if amount >= minimum), None)

    def _finish(self, row: _Row, status: str, reason: str = "", points: int = 0) -> None:
        row.status = status
        row.status_reason = reason[:200]
        row.points = points
        row.processed_at = self.now

    def earn(self, row: _Row) -> None:
        key = transaction_entry_key(source=row.source, external_id=row.external_id)
        if key in self.stored_keys:
            self._finish(row, Status.PROCESSED, "already credited")
            return
        status = self.member_status[row.member_id]
        if status != Member.Status.ACTIVE:
            self._finish(row, Status.SKIPPED, f"member_{status}")
            return
        on = self.ledger.business_date(row.occurred_at)
        rule = self._rule(row, on)
        if rule is None:
            self._finish(row, Status.PROCESSED, "no_rule")
            return
        earning = earning_points_calculate(
            rule=rule,
            amount=row.amount,
            on=on,
            tier_code=self.tiers.get(row.member_id),
            tier_multiplier=self.multipliers.get(row.member_id, Decimal(1)),
            campaigns=self.campaigns,
            segments=self.segments.get(row.member_id, frozenset()),
            earned_today=self.day_usage[(row.member_id, rule.pk, on)],
            earned_this_month=self.month_usage[(row.member_id, rule.pk, on.replace(day=1))],
        )
        if earning.points > 0:
            self.ledger.credit(
                member_id=row.member_id,
                points=earning.points,
                kind=Entry.Kind.EARN,
                idempotency_key=key,
                occurred_at=row.occurred_at,
                transaction_id=row.id,
                earning_rule_id=rule.pk,
                earned_on=on,
                rules=earning.explanation,
                description=earning_text(
                    rule=rule.name, campaign=earning.campaign.name if earning.campaign else None
                )[:200],
                reference=f"{row.source}:{row.external_id}",
            )
            self._use(row.member_id, rule.pk, on, earning.points)
        reason = "capped" if earning.explanation["caps_applied"] else ""
        if earning.points == 0 and not reason:
            reason = "below_unit"
        self._finish(row, Status.PROCESSED, reason, earning.points)

    def reverse(self, row: _Row) -> None:
        key = transaction_entry_key(source=row.source, external_id=row.external_id)
        if key in self.stored_keys:
            self._finish(row, Status.PROCESSED, "already reversed")
            return
        original_key = (row.source, row.reverses)
        original = self.by_key.get(original_key) or self.originals.get(original_key)
        if original is None or original.status not in _DONE:
            row.status, row.status_reason = Status.PARKED, "waiting for the original"
            return
        if original.reverses or original.member_id != row.member_id:
            self._finish(row, Status.FAILED, "not a transaction of this member to reverse")
            return
        if self.member_status[row.member_id] == Member.Status.CLOSED:
            self._finish(row, Status.SKIPPED, "member_closed")
            return
        amount_before, points_before = self.reversed_so_far.get(original_key, (Decimal(0), 0))
        amount_after = amount_before + row.amount
        if original.points <= 0:
            target = 0
        elif amount_after >= original.amount:
            target = original.points
        else:
            # A partial refund reverses its share of the points, rounded down overall.
            target = points_for_amount(
                amount=amount_after * original.points, amount_unit=original.amount
            )
        points = max(0, target - points_before)
        if points:
            self.ledger.debit(
                member_id=row.member_id,
                points=points,
                kind=Entry.Kind.REVERSE,
                idempotency_key=key,
                occurred_at=row.occurred_at,
                transaction_id=row.id,
                rules={"reverses": row.reverses, "original_points": original.points},
                description=refund_text(external_id=row.reverses)[:200],
                reference=f"{row.source}:{row.reverses}",
            )
        self.reversed_so_far[original_key] = (amount_after, points_before + points)
        self._finish(row, Status.PROCESSED, "" if points else "nothing to reverse", -points)

    def run(self) -> None:
        if not self.rows and not self.parked:
            return
        for row in self.rows:
            if not row.reverses:
                self._guarded(self.earn, row)
        for row in [row for row in self.rows if row.reverses] + self.parked:
            self._guarded(self.reverse, row)
        self.ledger.flush()
        every = self.rows + self.parked
        rows_update(every, ["status", "status_reason", "points", "processed_at"], model=Transaction)

    def _guarded(self, handler, row: _Row) -> None:
        try:
            handler(row)
        except (InsufficientPoints, Conflict) as exc:
            self._finish(row, Status.FAILED, str(exc))


# SQLSTATEs of failures that are the database's or the network's, not a row's: connection
# exceptions (class 08), serialization failure, deadlock, statement completion unknown, lock not
# available (lock_timeout, NOWAIT), too many connections, operator intervention (admin, crash
# shutdown, cannot connect now) and the server's own resource errors.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})
_TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "40003", "55P03", "53300", "53200", "57P01", "57P02", "57P03", "58000"}
)


def transient_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure worth retrying as it is: the connection or the server, not
    the data. Django raises ``django.db.OperationalError``/``InterfaceError`` with the psycopg
    error as ``__cause__``; an ``OperationalError`` without an SQLSTATE is a connection that
    went away before the server answered."""
    import psycopg

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, InterfaceError | psycopg.InterfaceError):
            return True
        if isinstance(current, psycopg.OperationalError):
            sqlstate = current.sqlstate
            return (
                sqlstate is None
                or sqlstate in _TRANSIENT_SQLSTATES
                or sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES
            )
        if isinstance(current, OperationalError) and current.__cause__ is None:
            return True
        current = current.__cause__
    return False


def transient_attempts() -> int:
    return max(1, int(getattr(settings, "POINTS_CONSUMER_TRANSIENT_ATTEMPTS", 4)))


def _transient_backoff(attempt: int) -> float:
    base = float(getattr(settings, "POINTS_CONSUMER_TRANSIENT_BACKOFF", 0.1))
    return min(base * 2 ** (attempt - 1), 5.0)


def _connection_reset() -> None:
    """Drop the connection after a transient failure; the next query opens a new one."""
    if connection.in_atomic_block:  # a caller's transaction: not ours to end
        return
    try:
        connection.close()
    except Exception:  # a connection that broke may fail to close too; it is dropped anyway
        logger.debug("closing a broken connection failed", exc_info=True)
        connection.connection = None


_T = TypeVar("_T")


def _retry_transient(work: Callable[[], _T], *, what: str) -> _T:
    """``work()``, run again (on a new connection, after a pause) while it fails for a transient
    reason; the last transient error is raised after ``transient_attempts()`` tries. Inside a
    caller's transaction nothing is retried (its connection cannot be replaced)."""
    attempts = transient_attempts()
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except Exception as exc:
            if not transient_error(exc) or attempt == attempts or connection.in_atomic_block:
                raise
            logger.warning(
                "%s: transient database failure (attempt %s of %s), retrying: %s",
                what,
                attempt,
                attempts,
                exc,
            )
            _connection_reset()
            time.sleep(_transient_backoff(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def transactions_process_batch(*, limit: int | None = None) -> int:
    """Process one batch of pending inbox rows in one database transaction; the number of rows
    claimed (0 when none were pending or free to claim).

    Also processes parked refunds whose original is in the batch, so a refund that arrived
    before its original is reversed in the same commit that credits the original. A transient
    failure runs the batch again whole, and is raised (rows left pending) if it persists; any
    other failure is looked for row by row (the module docstring).
    """
    limit = limit or consumer_batch_size()
    claimed: list[int] = []

    def attempt() -> int:
        claimed.clear()
        with transaction.atomic():
            rows = _claim_pending(limit)
            if not rows:
                return 0
            claimed.extend(row.id for row in rows)
            _batch_run(rows)
        return len(claimed)

    try:
        return _retry_transient(attempt, what="points batch")
    except Exception as exc:
        if not claimed or transient_error(exc):
            raise  # nothing claimed, or the database itself: every row is still pending
        # Some row's own fault. It must not hold the inbox back (the same oldest rows would be
        # claimed and fail again forever): find it by halves instead.
        logger.exception("points batch of %s rows failed; looking for the row", len(claimed))
        _rows_process_split(list(claimed))
    return len(claimed)


def _batch_run(rows: list[_Row]) -> None:
    originals = [row for row in rows if not row.reverses]
    parked = _claim_parked(originals) if originals else []
    _Batch(rows, parked).run()


def _rows_process(row_ids: list[int]) -> None:
    with transaction.atomic():
        rows = _claim(Transaction.objects.filter(pk__any=row_ids, status=Status.PENDING))
        if rows:
            _batch_run(rows)


def _rows_process_split(row_ids: list[int]) -> None:
    """Process ``row_ids`` (in id order) in one transaction; if that fails for a row's reason,
    each half on its own, down to single rows: a row that fails alone is marked failed. With
    one bad row in ``n`` this takes about ``2 log2 n`` transactions instead of ``n``."""
    try:
        _retry_transient(lambda: _rows_process(row_ids), what="points rows")
        return
    except Exception as exc:
        if transient_error(exc):
            raise  # the rows not processed yet stay pending
        if len(row_ids) == 1:
            _row_fail(row_ids[0], exc)
            return
    middle = len(row_ids) // 2
    _rows_process_split(row_ids[:middle])
    _rows_process_split(row_ids[middle:])


def _row_fail(row_id: int, exc: BaseException) -> None:
    """Mark a row that failed alone ``failed``, the error as its reason: nothing is lost, staff
    retry it from the admin once the cause is fixed."""
    logger.error("points inbox row %s failed", row_id, exc_info=exc)
    reason = f"{type(exc).__name__}: {exc}".strip()

    def mark() -> None:
        Transaction.objects.filter(pk=row_id, status=Status.PENDING).update(
            status=Status.FAILED, status_reason=reason[:200], processed_at=timezone.now()
        )

    _retry_transient(mark, what="points row failure")


def transactions_process(*, max_batches: int | None = None, limit: int | None = None) -> int:
    """Process batches until one is not full (the inbox had nothing more to claim) or
    ``max_batches`` ran; the number of rows processed.

    Stopping at the first batch that is not full, rather than claiming again at once, is what
    keeps a stream of small deliveries (one transaction a request) in batches: the rows that
    arrive meanwhile wake a coalesced consumer (:func:`points.services.ingest.consumer_enqueue`),
    which claims them together a moment later instead of one claim per row.
    """
    limit = limit or consumer_batch_size()
    total = 0
    for _batch in range(max_batches or consumer_max_batches()):
        count = transactions_process_batch(limit=limit)
        total += count
        if count < limit:
            break
    return total


def transactions_process_all() -> int:
    """Drain the inbox in this process (tests, demo data, the management command)."""
    total = 0
    while True:
        count = transactions_process(max_batches=1000)
        total += count
        if count == 0:
            return total
