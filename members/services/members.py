"""Members: created and updated from the CRM, frozen, unfrozen and closed, every change audited.

An update locks the member's row; every change records its audit row in the same transaction,
so the change and its record commit or roll back together (a create that loses a race with a
concurrent one becomes an update). A status change takes one path
(:func:`member_freeze`, :func:`member_unfreeze`, :func:`member_close`) however it arrives, the
CRM's :func:`member_upsert` included, so it has the same effects every time. A closed member never
changes again; closing sends ``members.signals.member_closed`` inside the transaction, so points
forfeits the balance in it.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from loyalty.models import AuditAction
from loyalty.services import audit_log_record
from members.errors import MemberClosed
from members.models import Member
from members.signals import member_closed

MEMBER_FIELDS = (
    "name",
    "gender",
    "birth_date",
    "phone",
    "email",
    "occupation",
    "income_band",
    "city",
    "branch_code",
    "credit_grade",
    "risk_level",
    "marketing_consent",
    "preferred_language",
    "joined_at",
)


def _profile(member: Member) -> dict[str, Any]:
    return model_to_dict(member, fields=(*MEMBER_FIELDS, "status"))


@transaction.atomic
def member_upsert(*, customer_no: str, actor: Any, **fields: Any) -> tuple[Member, bool]:
    """Create the member or update the given fields (the CRM may send only what changed).

    A ``status`` in ``fields`` goes through :func:`member_freeze`, :func:`member_unfreeze` or
    :func:`member_close`, so a status change has the same effects however it arrives.
    Returns ``(member, created)``.
    """
    status = fields.pop("status", None)
    unknown = set(fields) - set(MEMBER_FIELDS)
    if unknown:
        raise TypeError(f"member_upsert() got unknown fields: {sorted(unknown)}")
    member = Member.objects.select_for_update().filter(customer_no=customer_no).first()
    created = member is None
    if member is None:  # ``created``; spelled out so type checkers narrow ``member``
        member = Member(customer_no=customer_no, **fields)
        member.full_clean(validate_unique=False)
        try:
            with transaction.atomic():
                member.save()
        except IntegrityError:
            # A concurrent request created it first: this one becomes an update.
            return member_upsert(customer_no=customer_no, actor=actor, status=status, **fields)
        audit_log_record(
            actor=actor, action=AuditAction.MEMBER_CREATE, target=member, after=_profile(member)
        )
    else:
        if member.status == Member.Status.CLOSED and (
            fields or status not in (None, member.status)
        ):
            raise MemberClosed()
        before = _profile(member)
        changed = [name for name, value in fields.items() if getattr(member, name) != value]
        for name in changed:
            setattr(member, name, fields[name])
        if changed:
            member.full_clean()
            member.save(update_fields=[*changed, "updated_at"])
            audit_log_record(
                actor=actor,
                action=AuditAction.MEMBER_UPDATE,
                target=member,
                before=before,
                after=_profile(member),
            )
    if status is not None and status != member.status:
        transition = {
            Member.Status.FROZEN: member_freeze,
            Member.Status.ACTIVE: member_unfreeze,
            Member.Status.CLOSED: member_close,
        }[Member.Status(status)]
        member = transition(member=member, actor=actor, reason="CRM update")
    return member, created


def _status_change(
    *, member: Member, actor: Any, to: str, reason: str, action: AuditAction
) -> Member:
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == Member.Status.CLOSED:
        raise MemberClosed()
    if member.status == to:
        return member
    before = member.status
    member.status = to
    member.status_changed_at = timezone.now()
    member.save(update_fields=["status", "status_changed_at", "updated_at"])
    audit_log_record(
        actor=actor,
        action=action,
        target=member,
        before={"status": before},
        after={"status": to},
        reason=reason,
    )
    return member


@transaction.atomic
def member_freeze(*, member: Member, actor: Any, reason: str = "") -> Member:
    """A frozen member neither earns nor redeems until unfrozen."""
    return _status_change(
        member=member,
        actor=actor,
        to=Member.Status.FROZEN,
        reason=reason,
        action=AuditAction.MEMBER_FREEZE,
    )


@transaction.atomic
def member_unfreeze(*, member: Member, actor: Any, reason: str = "") -> Member:
    return _status_change(
        member=member,
        actor=actor,
        to=Member.Status.ACTIVE,
        reason=reason,
        action=AuditAction.MEMBER_UNFREEZE,
    )


@transaction.atomic
def member_close(*, member: Member, actor: Any, reason: str = "") -> Member:
    """Close for good. Receivers of ``member_closed`` (points) forfeit what is left, in the same
    transaction, so a closed member never keeps a balance."""
    member = _status_change(
        member=member,
        actor=actor,
        to=Member.Status.CLOSED,
        reason=reason,
        action=AuditAction.MEMBER_CLOSE,
    )
    member_closed.send(sender=Member, member=member, actor=actor)
    return member
