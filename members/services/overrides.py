"""Tier overrides, maker-checker: one person asks for a member to hold a tier until a date, a
different person approves or rejects it.

Nothing changes until the approval. A member has at most one pending request. Approving puts the
member in the tier at once, with history, a message and the audit row in one transaction, under
the lock that keeps evaluation chunks out (so none can overwrite it); evaluations then keep the
member there until the override expires, and :func:`tier_overrides_expire` moves them back to
the tier they qualify for with the evaluation's own decision.
"""

import datetime as dt
import json
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from loyalty.errors import four_eyes_check
from loyalty.models import AuditAction
from loyalty.services import audit_log_record
from loyalty.timeutils import business_date, business_today
from members.errors import (
    MemberClosed,
    TierInactive,
    TierOverrideExpired,
    TierOverrideNotFound,
    TierOverrideNotPending,
    TierOverridePending,
)
from members.models import (
    Member,
    MemberTier,
    Message,
    Tier,
    TierEvaluationRun,
    TierHistory,
    TierOverride,
)
from members.services.evaluation import (
    _tier_change_templates,
    _tier_change_text,
    _tier_payload,
    tier_default_as_of,
)
from members.services.messages import member_message_send
from members.tier_sql import TIER_STATE_LOCK, evaluate_sql


@transaction.atomic
def tier_override_request(
    *, member: Member, tier: Tier, reason: str, expires_at: dt.datetime, actor: Any
) -> TierOverride:
    """Ask for ``member`` to hold ``tier`` until ``expires_at``; nothing changes until a
    different person approves. A member has at most one pending request."""
    if member.status == Member.Status.CLOSED:
        raise MemberClosed()
    if not tier.active:
        raise TierInactive()
    if expires_at <= timezone.now():
        raise TierOverrideExpired()
    try:
        with transaction.atomic():
            override = TierOverride.objects.create(
                member=member, tier=tier, reason=reason, expires_at=expires_at, requested_by=actor
            )
    except IntegrityError:
        raise TierOverridePending() from None
    audit_log_record(
        actor=actor,
        action=AuditAction.TIER_OVERRIDE_REQUEST,
        target=member,
        after={"override": str(override.id), "tier": tier.code, "expires_at": expires_at},
        reason=reason,
    )
    return override


def _override_for_decision(*, override_id: Any, actor: Any) -> TierOverride:
    override = (
        TierOverride.objects.select_for_update()
        .select_related("member", "tier")
        .filter(id=override_id)
        .first()
    )
    if override is None:
        raise TierOverrideNotFound()
    if override.status != TierOverride.Status.PENDING:
        raise TierOverrideNotPending()
    four_eyes_check(requested_by_id=override.requested_by_id, actor=actor)
    return override


@transaction.atomic
def tier_override_approve(*, override_id: Any, actor: Any, note: str = "") -> TierOverride:
    """Approve a pending override (by someone other than the requester) and put the member in
    its tier at once, with history and a message. Evaluations keep it until it expires."""
    override = _override_for_decision(override_id=override_id, actor=actor)
    now = timezone.now()
    if override.expires_at <= now:
        raise TierOverrideExpired()
    if override.member.status == Member.Status.CLOSED:
        raise MemberClosed()
    override.status = TierOverride.Status.APPROVED
    override.decided_by = actor
    override.decided_at = now
    override.decision_note = note
    override.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    with connection.cursor() as cursor:
        # Wait for evaluation chunks in progress, so none can overwrite this change.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TIER_STATE_LOCK])
    member = override.member
    state = MemberTier.objects.select_for_update().filter(member=member).first()
    previous = state.tier if state else Tier.objects.filter(active=True).order_by("rank").first()
    if state is None:
        state = MemberTier(member=member, tier=override.tier)
    changed = previous is None or previous.pk != override.tier_id
    state.tier = override.tier
    state.override = override
    state.failing_count = 0
    state.updated_at = now
    if changed:
        state.since = now
    state.save()
    if changed:
        TierHistory.objects.create(
            member=member,
            from_tier=previous,
            to_tier=override.tier,
            reason=TierHistory.Reason.OVERRIDE,
            override=override,
            occurred_at=now,
        )
        title, body = _tier_change_text(
            language=member.preferred_language,
            previous=previous or override.tier,
            tier=override.tier,
            as_of=business_today(),
            until=business_date(override.expires_at),
        )
        member_message_send(
            member=member,
            kind=Message.Kind.TIER_CHANGE,
            title=title,
            body=body,
            dedupe_key=f"tier-override:{override.id}",
            data={
                "tier": override.tier.code,
                "previous": previous.code if previous else None,
                "until": override.expires_at,
                "direction": "override",
            },
        )
    audit_log_record(
        actor=actor,
        action=AuditAction.TIER_OVERRIDE_APPROVE,
        target=member,
        before={"tier": previous.code if previous else None},
        after={"tier": override.tier.code, "override": str(override.id)},
        reason=note or override.reason,
    )
    return override


@transaction.atomic
def tier_override_reject(*, override_id: Any, actor: Any, note: str = "") -> TierOverride:
    """Reject a pending override (by someone other than the requester); nothing else changes."""
    override = _override_for_decision(override_id=override_id, actor=actor)
    override.status = TierOverride.Status.REJECTED
    override.decided_by = actor
    override.decided_at = timezone.now()
    override.decision_note = note
    override.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit_log_record(
        actor=actor,
        action=AuditAction.TIER_OVERRIDE_REJECT,
        target=override.member,
        after={"override": str(override.id), "tier": override.tier.code},
        reason=note,
    )
    return override


def tier_overrides_expire(*, now: dt.datetime | None = None) -> int:
    """Put members whose approved override has expired back in the tier they qualify for (as
    of the latest evaluation), with history and a message, instead of leaving them in it until
    the next monthly run. Returns how many members moved.

    Runs the evaluation's own decision for each such member (a handful a day), under the lock
    that keeps evaluation chunks out, so a run in progress cannot decide for them at the same
    time.
    """
    now = now or timezone.now()
    expired = list(
        MemberTier.objects.filter(override__isnull=False, override__expires_at__lte=now)
        .order_by("member_id")
        .values_list("member_id", "override_id")
    )
    tiers = list(Tier.objects.order_by("rank"))
    if not expired or not any(tier.active for tier in tiers):
        return 0
    last_run = (
        TierEvaluationRun.objects.filter(status=TierEvaluationRun.Status.DONE)
        .order_by("-as_of")
        .first()
    )
    as_of = last_run.as_of if last_run else tier_default_as_of()
    sql, params = evaluate_sql(tiers=[_tier_payload(t) for t in tiers], as_of=as_of)
    params["templates"] = json.dumps(_tier_change_templates(tiers=tiers, as_of=as_of))
    moved = 0
    for member_id, override_id in expired:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TIER_STATE_LOCK])
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(
                sql,
                {
                    **params,
                    "run_pk": None,
                    "run_id": f"override-{override_id}",
                    "lo": member_id - 1,
                    "hi": member_id,
                    "now": now,
                },
            )
            names = [column.name for column in cursor.description]
            counts = dict(zip(names, cursor.fetchone(), strict=True))
            moved += counts["history"]
    return moved
