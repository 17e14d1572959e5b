"""Manual adjustments, maker-checker: one person requests, a different approver decides.

What approval would refuse is refused at request time too, by the same function
(:func:`adjustment_applicable_check`: a closed member, a debit beyond the balance), so a request
that can never be approved is never left pending. Approval checks again, on the balance read
under the account's lock: the balance may have moved between request and decision.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from loyalty.errors import four_eyes_check
from loyalty.models import AuditAction
from loyalty.services import audit_log_record
from members.errors import MemberInactive
from members.models import Member
from points.errors import AdjustmentDecided, InsufficientPoints
from points.models import Account, Adjustment, Entry
from points.services.ledger import LedgerBatch, accounts_lock

# The most points one adjustment may credit or debit (the API and the console refuse more).
ADJUSTMENT_LIMIT = 10_000_000


def _snapshot(adjustment: Adjustment) -> dict[str, Any]:
    return {
        "customer_no": adjustment.member.customer_no,
        "points": adjustment.points,
        "reason": adjustment.reason,
        "status": adjustment.status,
    }


def adjustment_applicable_check(*, member: Member, points: int, balance: int) -> None:
    """Raise what applying ``points`` to ``member`` with ``balance`` would raise: the one list
    of reasons an adjustment cannot be applied, for the request and the approval alike.

    ``MemberInactive`` for a closed member (a frozen one may still be corrected);
    ``InsufficientPoints`` for a debit larger than the spendable balance (never below zero).
    """
    if member.status == Member.Status.CLOSED:
        raise MemberInactive()
    if points < 0 and -points > max(balance, 0):
        raise InsufficientPoints()


@transaction.atomic
def adjustment_request(*, member: Member, points: int, reason: str, actor: Any) -> Adjustment:
    """Record a pending adjustment of ``points`` (non-zero); nothing moves until approved.
    Refused, writing nothing, when it could not be approved now
    (:func:`adjustment_applicable_check` on the current balance)."""
    balance = Account.objects.filter(member=member).values_list("balance", flat=True).first()
    adjustment_applicable_check(member=member, points=points, balance=balance or 0)
    adjustment = Adjustment.objects.create(
        member=member, points=points, reason=reason, requested_by=actor
    )
    audit_log_record(
        actor=actor,
        action=AuditAction.POINTS_ADJUSTMENT_REQUEST,
        target=adjustment,
        after=_snapshot(adjustment),
        reason=reason,
    )
    return adjustment


def _decide(*, adjustment: Adjustment, actor: Any) -> Adjustment:
    locked = Adjustment.objects.select_for_update().select_related("member").get(pk=adjustment.pk)
    if locked.status != Adjustment.Status.PENDING:
        raise AdjustmentDecided()
    four_eyes_check(requested_by_id=locked.requested_by_id, actor=actor)
    return locked


@transaction.atomic
def adjustment_approve(*, adjustment: Adjustment, actor: Any, note: str = "") -> Adjustment:
    """Apply a pending adjustment as an ``adjust`` entry, once, by someone other than its
    requester. A debit larger than the balance raises ``InsufficientPoints`` and leaves the
    adjustment pending."""
    adjustment = _decide(adjustment=adjustment, actor=actor)
    member = adjustment.member
    accounts = accounts_lock(member_ids=[member.pk])
    adjustment_applicable_check(
        member=member, points=adjustment.points, balance=accounts[member.pk].balance
    )
    before = _snapshot(adjustment)
    batch = LedgerBatch(accounts=accounts)
    operation = batch.credit if adjustment.points > 0 else batch.debit
    entry = operation(
        member_id=member.pk,
        points=abs(adjustment.points),
        kind=Entry.Kind.ADJUST,
        idempotency_key=f"adjustment:{adjustment.pk}",
        description=adjustment.reason[:200],
        reference=f"adjustment:{adjustment.pk}",
        rules={"adjustment": str(adjustment.pk), "requested_by": adjustment.requested_by_id},
    )
    batch.flush()
    adjustment.status = Adjustment.Status.APPROVED
    adjustment.decided_by = actor
    adjustment.decided_at = timezone.now()
    adjustment.decision_note = note
    adjustment.entry = entry.to_model()
    adjustment.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "entry"])
    audit_log_record(
        actor=actor,
        action=AuditAction.POINTS_ADJUSTMENT_APPROVE,
        target=adjustment,
        before=before,
        after={**_snapshot(adjustment), "balance_after": entry.balance_after},
        reason=note,
    )
    return adjustment


@transaction.atomic
def adjustment_reject(*, adjustment: Adjustment, actor: Any, note: str = "") -> Adjustment:
    """Close a pending adjustment without moving points (by someone other than its requester)."""
    adjustment = _decide(adjustment=adjustment, actor=actor)
    before = _snapshot(adjustment)
    adjustment.status = Adjustment.Status.REJECTED
    adjustment.decided_by = actor
    adjustment.decided_at = timezone.now()
    adjustment.decision_note = note
    adjustment.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit_log_record(
        actor=actor,
        action=AuditAction.POINTS_ADJUSTMENT_REJECT,
        target=adjustment,
        before=before,
        after=_snapshot(adjustment),
        reason=note,
    )
    return adjustment
