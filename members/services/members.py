"""Members: created and updated from the CRM, frozen, unfrozen and closed, every change audited.

An update locks the member's row; every change records its audit row in the same transaction,
so the change and its record commit or roll back together (a create that loses a race with a
concurrent one becomes an update). A status change takes one path
(:func:`member_freeze`, :func:`member_unfreeze`, :func:`member_close`) however it arrives, the
CRM's :func:`member_upsert` included, so it has the same effects every time.

Closing keeps the points through a notice period (``ProgrammeSettings.closure_notice_days``) and
tells the member; within it, :func:`member_reopen` makes the member active again with every point.
After it, :func:`members_closures_finalise` makes each closure final: it sends
``members.signals.member_closure_final`` inside the transaction, so points forfeits the balance in
it, and the member never changes again. So no single caller can wipe a balance at once.
"""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.models import AuditAction
from loyalty.selectors import programme_settings_get
from loyalty.services import audit_log_record
from loyalty.timeutils import business_date
from members.errors import MemberClosed
from members.models import Member, Message
from members.services.messages import member_message_send
from members.signals import member_closure_final

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

    A ``status`` in ``fields`` goes through :func:`member_freeze`, :func:`member_unfreeze`,
    :func:`member_close` or :func:`member_reopen`, so a status change has the same effects
    however it arrives.
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
        if member.status == Member.Status.CLOSED and status == Member.Status.ACTIVE:
            # Reopened first (within the notice period, else refused), then updated.
            member = member_reopen(member=member, actor=actor, reason="CRM update")
        elif member.status == Member.Status.CLOSED and (
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
    *, member: Member, actor: Any, to: str, reason: str, action: AuditAction, reopen: bool = False
) -> Member:
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == Member.Status.CLOSED and not (reopen and _reopenable(member)):
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


def closure_notice() -> dt.timedelta:
    return dt.timedelta(days=programme_settings_get().closure_notice_days)


def _reopenable(member: Member) -> bool:
    """Closed, not final, and within the notice period."""
    if member.closure_final_at is not None or member.status_changed_at is None:
        return False
    return timezone.now() < member.status_changed_at + closure_notice()


@transaction.atomic
def member_close(*, member: Member, actor: Any, reason: str = "") -> Member:
    """Close: the member neither earns nor redeems, keeps their points through the notice period
    and is told when they will be forfeited."""
    before = member.status
    member = _status_change(
        member=member,
        actor=actor,
        to=Member.Status.CLOSED,
        reason=reason,
        action=AuditAction.MEMBER_CLOSE,
    )
    if before != Member.Status.CLOSED and member.status_changed_at is not None:
        final_on = business_date(member.status_changed_at + closure_notice())
        member_message_send(
            member=member,
            kind=Message.Kind.GENERAL,
            title=_("Your membership is closed"),
            body=_(
                "Your membership was closed. Your points are kept until %(date)s; if the "
                "membership is not reopened by then, they are forfeited. Please contact us if "
                "you did not ask for this."
            ),
            dedupe_key=f"member-closed:{member.pk}:{member.status_changed_at.isoformat()}",
            data={"date": final_on.isoformat()},
        )
    return member


@transaction.atomic
def member_reopen(*, member: Member, actor: Any, reason: str = "") -> Member:
    """Make a closed member active again, every point kept: only within the notice period and
    before the closure is final (else 409 ``member_closed``)."""
    return _status_change(
        member=member,
        actor=actor,
        to=Member.Status.ACTIVE,
        reason=reason,
        action=AuditAction.MEMBER_REOPEN,
        reopen=True,
    )


FINALISE_CHUNK = 500


def members_closures_finalise(*, now: dt.datetime | None = None) -> int:
    """Make final every closure whose notice period is over: one transaction per member (the
    row locked, the closure re-checked, ``member_closure_final`` sent so points forfeits the
    balance). Members are read in chunks of ids, never all at once. Returns how many."""
    cutoff = (now or timezone.now()) - closure_notice()
    due = Member.objects.filter(
        status=Member.Status.CLOSED, closure_final_at__isnull=True, status_changed_at__lte=cutoff
    )
    done, last_id = 0, 0
    while True:
        ids = list(
            due.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:FINALISE_CHUNK]
        )
        if not ids:
            return done
        for member_id in ids:
            done += _closure_finalise(member_id=member_id, cutoff=cutoff)
        last_id = ids[-1]


@transaction.atomic
def _closure_finalise(*, member_id: int, cutoff: dt.datetime) -> int:
    member = Member.objects.select_for_update().get(pk=member_id)
    closed = member.status == Member.Status.CLOSED and member.closure_final_at is None
    if not closed or member.status_changed_at is None or member.status_changed_at > cutoff:
        return 0  # reopened, or finalised by another run, since it was listed
    member.closure_final_at = timezone.now()
    member.save(update_fields=["closure_final_at", "updated_at"])
    member_closure_final.send(sender=Member, member=member, actor=None)
    return 1
