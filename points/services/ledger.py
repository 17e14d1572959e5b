"""Writing the ledger: credits and debits that keep balance, entries and lots in step.

Everything that moves points goes through :class:`LedgerBatch` inside one database transaction,
after :func:`accounts_lock` has locked the accounts involved in primary-key order (so two writers
never wait on each other in a cycle). The batch keeps, per account,

* ``balance == sum(entries)`` (each entry records the ``balance_after``), and
* ``sum(lot.remaining) == max(balance, 0)``: credits repay a debt first, debits consume lots
  in expiry order (FIFO), and only a ``reverse`` may take the balance below zero;
* every debit records what it took from each lot (a :class:`~points.models.Consumption` row
  per lot, summing to the debit's points, less any debt a ``reverse`` left), so
  :func:`points_refund` puts exactly those points back into exactly those lots.

:func:`points_credit` and :func:`points_debit` are the public, single-entry API other apps use
(rewards redemptions, event attendance points); :func:`points_refund` undoes a debit.
"""

import datetime as dt
import logging
import os
import uuid
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.errors import Conflict, LoyaltyError
from loyalty.models import AuditAction, ProgrammeSettings
from loyalty.selectors import programme_settings_get
from loyalty.services import audit_log_record
from loyalty.timeutils import add_months, business_date, month_end
from members.errors import MemberInactive
from members.models import Member
from points.descriptions import expiry_text, forfeit_text
from points.errors import InsufficientPoints
from points.models import (
    CREDIT_KINDS,
    DEBIT_KINDS,
    EITHER_WAY_KINDS,
    Account,
    Consumption,
    Entry,
    Lot,
)
from points.services.sql import rows_create, rows_fetch, rows_update

logger = logging.getLogger(__name__)

# What credit() and debit() accept: the kinds the entry's check constraint signs that way.
CREDITS = frozenset(CREDIT_KINDS + EITHER_WAY_KINDS)
DEBITS = frozenset(DEBIT_KINDS + EITHER_WAY_KINDS)


class LedgerInconsistent(LoyaltyError):
    code = "ledger_inconsistent"
    status = 500
    default_detail = _("The points ledger is inconsistent; reconciliation is needed.")


def lot_expiry_date(*, earned_on: dt.date, settings: ProgrammeSettings) -> dt.date | None:
    """The last day points earned on ``earned_on`` may be used, under the programme's policy
    (``None`` when points never expire)."""
    policy = settings.expiry_policy
    if policy == ProgrammeSettings.ExpiryPolicy.NEVER:
        return None
    later = add_months(earned_on, settings.expiry_months)
    if policy == ProgrammeSettings.ExpiryPolicy.EXACT:
        return later
    return month_end(later)


class AccountState:
    """A locked account row as the ledger works on it (lighter than a model instance)."""

    __slots__ = ("balance", "id", "lifetime_earned", "lifetime_redeemed", "member_id", "updated_at")

    def __init__(self, id, member_id, balance, lifetime_earned, lifetime_redeemed, updated_at):
        self.id = id
        self.member_id = member_id
        self.balance = balance
        self.lifetime_earned = lifetime_earned
        self.lifetime_redeemed = lifetime_redeemed
        self.updated_at = updated_at

    @property
    def pk(self) -> int:
        return self.id


class LotState:
    """A lot created in this batch, before it is written."""

    __slots__ = ("earned_on", "entry_id", "expires_on", "id", "member_id", "points", "remaining")

    def __init__(self, *, member_id, points, remaining, earned_on, expires_on) -> None:
        self.id: int | None = None
        self.entry_id: int | None = None
        self.member_id = member_id
        self.points = points
        self.remaining = remaining
        self.earned_on = earned_on
        self.expires_on = expires_on

    @property
    def pk(self) -> int | None:
        return self.id


_ENTRY_ATTNAMES = tuple(field.attname for field in Entry._meta.concrete_fields)


_RANDOM: list[bytes] = []
# A forked process (a prefork worker) must never hand out the ids its parent drew.
os.register_at_fork(after_in_child=_RANDOM.clear)


def _uuid4() -> uuid.UUID:
    """``uuid.uuid4()``, drawing the operating system's random bytes 256 ids at a time."""
    try:
        random = _RANDOM.pop()
    except IndexError:
        pool = os.urandom(16 * 256)
        _RANDOM.extend(pool[start : start + 16] for start in range(16, len(pool), 16))
        random = pool[:16]
    return uuid.UUID(bytes=random, version=4)


class EntryState:
    """An entry written by this batch (lighter than a model instance until someone needs one:
    :meth:`to_model`)."""

    __slots__ = _ENTRY_ATTNAMES

    # Set from ``values`` (the entry's column attnames) rather than one by one.
    balance_after: int
    member_id: int
    points: int

    def __init__(self, **values: Any) -> None:
        self.id: int | None = None
        self.public_id = _uuid4()
        self.description = ""
        self.reference = ""
        self.transaction_id = None
        self.earning_rule_id = None
        self.earned_on = None
        self.rules: dict[str, Any] = {}
        self.expires_on = None
        for name, value in values.items():
            setattr(self, name, value)

    @property
    def pk(self) -> int | None:
        return self.id

    def to_model(self) -> Entry:
        entry = Entry(**{name: getattr(self, name) for name in _ENTRY_ATTNAMES})
        entry._state.adding = self.id is None
        return entry


class ConsumptionState:
    """What a debit took from one lot, until :meth:`LedgerBatch.flush` writes it (the entry's
    and a new lot's ids exist only then)."""

    __slots__ = ("entry", "entry_id", "id", "lot", "lot_id", "member_id", "points")

    def __init__(self, *, entry: "EntryState", lot: "Lot | LotState", points: int) -> None:
        self.id: int | None = None
        self.entry = entry
        self.lot = lot
        self.member_id = entry.member_id
        self.points = points
        self.entry_id: int | None = None
        self.lot_id: int | None = None


def _lot_order(lot: Lot | LotState) -> tuple:
    return (lot.expires_on is None, lot.expires_on or dt.date.max, lot.earned_on, lot.pk or 0)


def accounts_create(*, member_ids: list[int]) -> None:
    """Create the missing accounts of ``member_ids`` (sorted, so concurrent creators never wait
    on each other in a cycle); an account a concurrent transaction creates first is kept.

    The ingest calls it in the transaction that stores the inbox rows, so a consumer finds the
    accounts already there and never waits on another consumer's uncommitted new account.
    """
    if not member_ids:
        return
    table = connection.ops.quote_name(Account._meta.db_table)
    now = timezone.now()
    rows_fetch(
        f"INSERT INTO {table} "  # noqa: S608 - the model's own table
        "(member_id, balance, lifetime_earned, lifetime_redeemed, created_at, updated_at) "
        "SELECT m, 0, 0, 0, %s, %s FROM unnest(%b::bigint[]) AS m "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS a WHERE a.member_id = m) "
        "ORDER BY m ON CONFLICT (member_id) DO NOTHING",
        [now, now, sorted(set(member_ids))],
    )


def accounts_lock(
    *, member_ids: list[int] | set[int], skip_locked: bool = False
) -> dict[int, AccountState]:
    """Lock (``SELECT ... FOR UPDATE``, in primary-key order) the accounts of ``member_ids``,
    creating the missing ones. Must run inside a transaction; the locks last until it ends.

    With ``skip_locked``, accounts another transaction holds are left out of the result instead
    of waited for (the consumer leaves their rows for its next batch)."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    if not skip_locked:
        accounts_create(member_ids=ids)
        return _accounts_select_for_update(ids, skip_locked=False)
    # Skipping locked accounts never waits for one, so the order of locking does not matter:
    # lock what exists, then create the missing ones (the ingest usually did) and lock those.
    accounts = _accounts_select_for_update(ids, skip_locked=True)
    missing = [member_id for member_id in ids if member_id not in accounts]
    if missing:
        accounts_create(member_ids=missing)
        accounts.update(_accounts_select_for_update(missing, skip_locked=True))
    return accounts


def _accounts_select_for_update(ids: list[int], *, skip_locked: bool) -> dict[int, AccountState]:
    table = connection.ops.quote_name(Account._meta.db_table)
    skip = " SKIP LOCKED" if skip_locked else ""
    rows = rows_fetch(
        "SELECT id, member_id, balance, lifetime_earned, lifetime_redeemed, updated_at "  # noqa: S608
        f"FROM {table} WHERE member_id = ANY(%b::bigint[]) ORDER BY id FOR UPDATE{skip}",
        [ids],
        binary=True,
    )
    return {row[1]: AccountState(*row) for row in rows}


class LedgerBatch:
    """Credits and debits on locked accounts, written in bulk by :meth:`flush`.

    Entries are collected in memory and inserted with one ``INSERT`` per table; lots consumed
    by debits are updated in one statement; balances likewise.
    """

    def __init__(
        self, *, accounts: dict[int, AccountState], now: dt.datetime | None = None
    ) -> None:
        self.accounts = accounts
        self.now = now or timezone.now()
        self.settings = programme_settings_get()
        self.entries: list[EntryState] = []
        self._new_lots: list[tuple[EntryState, LotState]] = []
        self._open_lots: dict[int, list[Lot | LotState]] = {}
        self._dirty_lots: dict[int | None, Lot | LotState] = {}
        self._consumptions: list[ConsumptionState] = []
        self._touched: set[int] = set()
        self._keys: set[str] = set()
        self._days: dict[dt.datetime, dt.date] = {}
        self._expiry: dict[dt.date, dt.date | None] = {}

    def business_date(self, moment: dt.datetime) -> dt.date:
        """:func:`loyalty.timeutils.business_date`, remembered for the batch (a batch's
        transactions share few distinct timestamps' days)."""
        try:
            return self._days[moment]
        except KeyError:
            day = self._days[moment] = business_date(moment)
            return day

    def _account(self, member_id: int) -> AccountState:
        try:
            return self.accounts[member_id]
        except KeyError:
            raise LedgerInconsistent(f"account of member {member_id} is not locked") from None

    def _entry(self, *, member_id: int, kind: str, points: int, **fields: Any) -> EntryState:
        key = fields["idempotency_key"]
        if key in self._keys:
            raise Conflict(_("An entry with this idempotency key is already in this batch."))
        self._keys.add(key)
        account = self._account(member_id)
        account.balance += points
        account.updated_at = self.now
        self._touched.add(member_id)
        entry = EntryState(
            member_id=member_id,
            kind=kind,
            points=points,
            balance_after=account.balance,
            created_at=self.now,
            **fields,
        )
        self.entries.append(entry)
        return entry

    def lots_load(self, *, member_ids: list[int] | set[int]) -> None:
        """Lock and cache the open lots of these members (needed before debiting them)."""
        wanted = sorted(set(member_ids) - set(self._open_lots))
        if not wanted:
            return
        for member_id in wanted:
            self._open_lots[member_id] = []
        rows = (
            Lot.objects.select_for_update()
            .filter(member_id__in=wanted, remaining__gt=0)
            .order_by("member_id", "id")
        )
        lot: Lot | LotState
        for lot in rows:
            self._open_lots[lot.member_id].append(lot)
        # Lots credited earlier in this batch are not in the database yet.
        for _entry, lot in self._new_lots:
            if lot.member_id in self._open_lots and lot.remaining > 0 and lot.member_id in wanted:
                self._open_lots[lot.member_id].append(lot)
        for member_id in wanted:
            self._open_lots[member_id].sort(key=_lot_order)

    def credit(
        self,
        *,
        member_id: int,
        points: int,
        kind: str,
        idempotency_key: str,
        occurred_at: dt.datetime | None = None,
        **fields: Any,
    ) -> EntryState:
        """Add ``points`` (> 0). They repay any debt first; the rest forms a lot that expires
        under the programme's policy."""
        if points <= 0 or kind not in CREDITS:
            raise ValueError(f"invalid credit {kind} {points}")
        occurred_at = occurred_at or self.now
        account = self._account(member_id)
        debt = max(0, -account.balance)
        earned_on = self.business_date(occurred_at)
        try:
            expires_on = self._expiry[earned_on]
        except KeyError:
            expires_on = lot_expiry_date(earned_on=earned_on, settings=self.settings)
            self._expiry[earned_on] = expires_on
        entry = self._entry(
            member_id=member_id,
            kind=kind,
            points=points,
            idempotency_key=idempotency_key,
            occurred_at=occurred_at,
            expires_on=expires_on,
            **fields,
        )
        if kind != Entry.Kind.REFUND:
            account.lifetime_earned += points
        else:
            account.lifetime_redeemed = max(0, account.lifetime_redeemed - points)
        lot = LotState(
            member_id=member_id,
            points=points,
            remaining=points - min(points, debt),
            earned_on=earned_on,
            expires_on=expires_on,
        )
        self._new_lots.append((entry, lot))
        if member_id in self._open_lots and lot.remaining > 0:
            self._open_lots[member_id].append(lot)
            self._open_lots[member_id].sort(key=_lot_order)
        return entry

    def debit(
        self,
        *,
        member_id: int,
        points: int,
        kind: str,
        idempotency_key: str,
        occurred_at: dt.datetime | None = None,
        **fields: Any,
    ) -> EntryState:
        """Take ``points`` (> 0) from the oldest-expiring lots first.

        Raises :class:`InsufficientPoints` when the balance is short, except for a ``reverse``,
        which claws back what it can and leaves the rest as debt (a negative balance).
        """
        if points <= 0 or kind not in DEBITS:
            raise ValueError(f"invalid debit {kind} {points}")
        account = self._account(member_id)
        available = max(account.balance, 0)
        if points > available and kind != Entry.Kind.REVERSE:
            raise InsufficientPoints()
        taken = self._consume(member_id=member_id, points=min(points, available))
        if kind == Entry.Kind.REDEEM:
            account.lifetime_redeemed += points
        elif kind == Entry.Kind.REVERSE:
            account.lifetime_earned = max(0, account.lifetime_earned - points)
        entry = self._entry(
            member_id=member_id,
            kind=kind,
            points=-points,
            idempotency_key=idempotency_key,
            occurred_at=occurred_at or self.now,
            **fields,
        )
        self._consumptions.extend(
            ConsumptionState(entry=entry, lot=lot, points=take) for lot, take in taken
        )
        return entry

    def _consume(self, *, member_id: int, points: int) -> list[tuple[Lot | LotState, int]]:
        """Take ``points`` from the member's open lots, earliest expiry first; what was taken
        from which lot."""
        if points == 0:
            return []
        self.lots_load(member_ids=[member_id])
        lots = self._open_lots[member_id]
        left = points
        taken: list[tuple[Lot | LotState, int]] = []
        for lot in lots:
            if left == 0:
                break
            take = min(lot.remaining, left)
            if take == 0:
                continue
            lot.remaining -= take
            left -= take
            taken.append((lot, take))
            if lot.pk:
                self._dirty_lots[lot.pk] = lot
        self._open_lots[member_id] = [lot for lot in lots if lot.remaining > 0]
        if left:
            raise LedgerInconsistent(f"lots of member {member_id} are short by {left} points")
        return taken

    def expire_lot(
        self,
        *,
        lot: Lot | LotState,
        idempotency_key: str,
        description: str,
        points: int | None = None,
    ) -> EntryState | None:
        """Expire what is left of ``lot`` (locked by the caller, or loaded by
        :meth:`lots_load`), or only ``points`` of it; ``None`` when nothing is left."""
        self.lots_load(member_ids=[lot.member_id])
        cached = next((item for item in self._open_lots[lot.member_id] if item.pk == lot.pk), None)
        if cached is None or cached.remaining == 0:
            return None
        points = cached.remaining if points is None else min(points, cached.remaining)
        cached.remaining -= points
        self._dirty_lots[cached.pk] = cached
        if cached.remaining == 0:
            self._open_lots[lot.member_id].remove(cached)
        entry = self._entry(
            member_id=lot.member_id,
            kind=Entry.Kind.EXPIRE,
            points=-points,
            idempotency_key=idempotency_key,
            occurred_at=self.now,
            description=description,
            reference=f"lot:{cached.pk}",
            rules={"expires_on": cached.expires_on.isoformat() if cached.expires_on else None},
        )
        self._consumptions.append(ConsumptionState(entry=entry, lot=cached, points=points))
        return entry

    def refund(
        self,
        *,
        debit: Entry,
        idempotency_key: str,
        today: dt.date,
        description: Any = "",
        reference: str = "",
        rules: dict[str, Any] | None = None,
    ) -> EntryState:
        """Give back a debit's points into the very lots it drew from (locked by the caller's
        account lock), each keeping its expiry date: one ``refund`` entry of what the debit
        took. Points put back into a lot whose last day is before ``today`` expire again at
        once (an ``expire`` entry per such lot, of just those points: what the lot still held
        is left to the expiry job, as before). A debt the member ran up since is repaid
        first, from the restored points that expire soonest."""
        member_id = debit.member_id
        drawn = list(Consumption.objects.filter(entry=debit).order_by("id"))
        points = sum(row.points for row in drawn)
        if points <= 0:
            raise ValueError(f"entry {debit.pk} drew nothing from lots")
        account = self._account(member_id)
        debt = max(0, -account.balance)
        entry = self._entry(
            member_id=member_id,
            kind=Entry.Kind.REFUND,
            points=points,
            idempotency_key=idempotency_key,
            occurred_at=self.now,
            description=str(description)[:200],
            reference=reference or f"entry:{debit.public_id}",
            rules={**(rules or {}), "refunds": str(debit.public_id)},
        )
        account.lifetime_redeemed = max(0, account.lifetime_redeemed - points)
        self.lots_load(member_ids=[member_id])
        lots = {
            lot.pk: lot
            for lot in Lot.objects.select_for_update()
            .filter(pk__in=[row.lot_id for row in drawn])
            .order_by("id")
        }
        for lot_id in lots:
            # An open lot is cached by lots_load: restore through the cached object.
            cached = next((item for item in self._open_lots[member_id] if item.pk == lot_id), None)
            if cached is not None:
                lots[lot_id] = cached  # type: ignore[assignment]
        restored = sorted(lots.values(), key=_lot_order)
        given = {row.lot_id: row.points for row in drawn}
        for lot in restored:
            back = given[lot.pk]
            repay = min(debt, back)
            debt -= repay
            back -= repay
            if back == 0:
                continue
            if lot.remaining == 0:
                self._open_lots[member_id].append(lot)
                self._open_lots[member_id].sort(key=_lot_order)
            lot.remaining += back
            self._dirty_lots[lot.pk] = lot
            if lot.expires_on is not None and lot.expires_on < today:
                self.expire_lot(
                    lot=lot,
                    idempotency_key=f"{idempotency_key}:expire:lot:{lot.pk}",
                    description=expiry_text(expires_on=lot.expires_on),
                    points=back,
                )
        return entry

    def flush(self) -> list[EntryState]:
        """Write what the batch did: entries, new lots, consumed lots and balances."""
        if self.entries:
            rows_create(self.entries, model=Entry)
        new_lots = []
        for entry, lot in self._new_lots:
            lot.entry_id = entry.pk
            new_lots.append(lot)
        if new_lots:
            rows_create(new_lots, model=Lot)
        if self._consumptions:
            for consumption in self._consumptions:
                consumption.entry_id = consumption.entry.pk
                consumption.lot_id = consumption.lot.pk
            rows_create(self._consumptions, model=Consumption)
        if self._dirty_lots:
            rows_update(list(self._dirty_lots.values()), ["remaining"], model=Lot)
        if self._touched:
            rows_update(
                [self.accounts[member_id] for member_id in sorted(self._touched)],
                ["balance", "lifetime_earned", "lifetime_redeemed", "updated_at"],
                model=Account,
            )
        written = self.entries
        self.entries, self._new_lots, self._dirty_lots, self._touched = [], [], {}, set()
        self._consumptions = []
        return written


def _existing_entry(
    *, idempotency_key: str, member: Member, kind: str, points: int
) -> Entry | None:
    entry = Entry.objects.filter(idempotency_key=idempotency_key).first()
    if entry is None:
        return None
    if entry.member_id != member.pk or entry.kind != kind or abs(entry.points) != points:
        raise Conflict(_("This idempotency key was already used for a different ledger entry."))
    return entry


def _single_entry(
    *, member: Member, points: int, kind: str, idempotency_key: str, debit: bool, **fields: Any
) -> Entry:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise ValueError("points must be a positive integer")
    with transaction.atomic():
        existing = _existing_entry(
            idempotency_key=idempotency_key, member=member, kind=kind, points=points
        )
        if existing is not None:
            return existing
        accounts = accounts_lock(member_ids=[member.pk])
        # A concurrent writer with the same key held the lock until it committed: look again.
        existing = _existing_entry(
            idempotency_key=idempotency_key, member=member, kind=kind, points=points
        )
        if existing is not None:
            return existing
        batch = LedgerBatch(accounts=accounts)
        operation = batch.debit if debit else batch.credit
        entry = operation(
            member_id=member.pk,
            points=points,
            kind=kind,
            idempotency_key=idempotency_key,
            **fields,
        )
        try:
            with transaction.atomic():
                batch.flush()
        except IntegrityError:
            existing = _existing_entry(
                idempotency_key=idempotency_key, member=member, kind=kind, points=points
            )
            if existing is None:
                raise
            return existing
        return entry.to_model()


def points_credit(
    *,
    member: Member,
    points: int,
    kind: str = Entry.Kind.BONUS,
    idempotency_key: str,
    reference: str = "",
    description: str = "",
    rules: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> Entry:
    """Credit ``points`` (> 0) to ``member`` once per ``idempotency_key``: a repeated call
    returns the first entry. ``kind`` is ``earn``, ``bonus``, ``refund`` or ``adjust``.

    Raises :class:`MemberInactive` for a closed member, or a frozen one earning.
    """
    if kind not in CREDITS:
        raise ValueError(f"{kind} is not a credit kind")
    if member.status == Member.Status.CLOSED or (
        member.status == Member.Status.FROZEN and kind in (Entry.Kind.EARN, Entry.Kind.BONUS)
    ):
        raise MemberInactive()
    return _single_entry(
        member=member,
        points=points,
        kind=kind,
        idempotency_key=idempotency_key,
        debit=False,
        reference=reference,
        description=str(description)[:200],
        rules=rules or {},
        occurred_at=occurred_at,
    )


def points_debit(
    *,
    member: Member,
    points: int,
    kind: str = Entry.Kind.REDEEM,
    idempotency_key: str,
    reference: str = "",
    description: str = "",
    rules: dict[str, Any] | None = None,
) -> Entry:
    """Debit ``points`` (> 0) from ``member`` once per ``idempotency_key``, consuming lots in
    expiry order. Never takes the balance below zero: raises :class:`InsufficientPoints`
    (nothing written) when the balance is short. A frozen or closed member cannot redeem.

    Call it inside your own ``transaction.atomic()`` to make the debit part of a larger unit
    (a redemption with its stock decrement): the account stays locked until that commits.
    """
    if kind not in DEBITS or kind == Entry.Kind.REVERSE:
        raise ValueError(f"{kind} is not a debit kind points_debit may write")
    if kind == Entry.Kind.REDEEM and member.status != Member.Status.ACTIVE:
        raise MemberInactive()
    return _single_entry(
        member=member,
        points=points,
        kind=kind,
        idempotency_key=idempotency_key,
        debit=True,
        reference=reference,
        description=str(description)[:200],
        rules=rules or {},
    )


def points_refund(
    *,
    debit: Entry,
    description: Any = "",
    reference: str = "",
    rules: dict[str, Any] | None = None,
) -> Entry:
    """Give a ``redeem`` debit's points back, once per debit (the refund's idempotency key is
    the debit's: a repeated call returns the first refund), into the lots it drew from with
    their original expiry dates; what has expired in between expires again at once. Call it
    inside the transaction that cancels what the points paid for.

    Raises :class:`MemberInactive` once a closed membership is final (its points forfeited):
    points given back then would never be forfeited."""
    if debit.kind != Entry.Kind.REDEEM:
        raise ValueError(f"only a redemption's debit is refunded, not {debit.kind}")
    key = f"refund:{debit.public_id}"
    with transaction.atomic():
        accounts = accounts_lock(member_ids=[debit.member_id])
        member = Member.objects.get(pk=debit.member_id)
        existing = _existing_entry(
            idempotency_key=key, member=member, kind=Entry.Kind.REFUND, points=-debit.points
        )
        if existing is not None:
            return existing
        if member.closure_final_at is not None:
            raise MemberInactive()
        batch = LedgerBatch(accounts=accounts)
        state = batch.refund(
            debit=debit,
            idempotency_key=key,
            today=business_date(batch.now),
            description=description,
            reference=reference,
            rules=rules,
        )
        batch.flush()
        return state.to_model()


def points_forfeit(*, member: Member, actor: Any = None) -> Entry | None:
    """Forfeit a closed member's whole positive balance (one ``forfeit`` entry, once).

    Runs inside the transaction that makes the closure final, once its notice period is over
    (``members.signals.member_closure_final``).
    """
    with transaction.atomic():
        accounts = accounts_lock(member_ids=[member.pk])
        account = accounts[member.pk]
        key = f"forfeit:member:{member.pk}"
        if account.balance <= 0 or Entry.objects.filter(idempotency_key=key).exists():
            return None
        before = account.balance
        batch = LedgerBatch(accounts=accounts)
        state = batch.debit(
            member_id=member.pk,
            points=account.balance,
            kind=Entry.Kind.FORFEIT,
            idempotency_key=key,
            description=forfeit_text(),
            reference=f"member:{member.customer_no}",
        )
        batch.flush()
        entry = state.to_model()
        audit_log_record(
            actor=actor,
            action=AuditAction.POINTS_FORFEIT,
            target=member,
            before={"balance": before},
            after={"balance": 0},
            reason="membership closed",
        )
        return entry


def member_closed_receiver(sender: Any, member: Member, actor: Any = None, **kwargs: Any) -> None:
    points_forfeit(member=member, actor=actor)
