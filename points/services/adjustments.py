"""Manual adjustments, maker-checker: one person requests, a different approver decides."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from loyalty.errors import four_eyes_check
from loyalty.models import AuditAction
from loyalty.services import audit_log_record
from members.errors import MemberInactive
from members.models import Member
from points.errors import AdjustmentDecided
from points.models import Adjustment, Entry
from points.services.ledger import LedgerBatch, accounts_lock


def _snapshot(adjustment: Adjustment) -> dict[str, Any]:
    return {
        "customer_no": adjustment.member.customer_no,
        "points": adjustment.points,
        "reason": adjustment.reason,
        "status": adjustment.status,
    }


@transaction.atomic
def adjustment_request(*, member: Member, points: int, reason: str, actor: Any) -> Adjustment:
    """Record a pending adjustment of ``points`` (non-zero); nothing moves until approved."""
    if member.status == Member.Status.CLOSED:
        raise MemberInactive()
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
    if member.status == Member.Status.CLOSED:
        raise MemberInactive()
    before = _snapshot(adjustment)
    batch = LedgerBatch(accounts=accounts_lock(member_ids=[member.pk]))
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
