from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone, translation

from loyalty.services import audit_log_record
from members.errors import MemberClosed
from members.models import AssetSnapshot, Member, Message
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
SNAPSHOT_AMOUNTS = ("deposits", "wealth", "funds", "insurance", "loans", "contribution")


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
    if created:
        member = Member(customer_no=customer_no, **fields)
        member.full_clean(validate_unique=False)
        try:
            with transaction.atomic():
                member.save()
        except IntegrityError:
            # A concurrent request created it first: this one becomes an update.
            return member_upsert(customer_no=customer_no, actor=actor, status=status, **fields)
        audit_log_record(actor=actor, action="member.create", target=member, after=_profile(member))
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
                action="member.update",
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


def _status_change(*, member: Member, actor: Any, to: str, reason: str, action: str) -> Member:
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
        member=member, actor=actor, to=Member.Status.FROZEN, reason=reason, action="member.freeze"
    )


@transaction.atomic
def member_unfreeze(*, member: Member, actor: Any, reason: str = "") -> Member:
    return _status_change(
        member=member, actor=actor, to=Member.Status.ACTIVE, reason=reason, action="member.unfreeze"
    )


@transaction.atomic
def member_close(*, member: Member, actor: Any, reason: str = "") -> Member:
    """Close for good. Receivers of ``member_closed`` (points) forfeit what is left, in the same
    transaction, so a closed member never keeps a balance."""
    member = _status_change(
        member=member, actor=actor, to=Member.Status.CLOSED, reason=reason, action="member.close"
    )
    member_closed.send(sender=Member, member=member, actor=actor)
    return member


def asset_snapshots_store(*, snapshots: list[dict[str, Any]]) -> dict[str, int]:
    """Store validated snapshots in one transaction: new ones are created, a re-sent one replaces
    the stored values for its member and date (never a second row).

    Each item has ``member_id``, ``as_of`` and the amounts of :data:`SNAPSHOT_AMOUNTS`.
    Returns counts: ``created``, ``updated`` (values changed), ``unchanged`` (identical re-send).
    """
    if not snapshots:
        return {"created": 0, "updated": 0, "unchanged": 0}
    keys = {(item["member_id"], item["as_of"]) for item in snapshots}
    member_ids = {member_id for member_id, _ in keys}
    dates = {as_of for _, as_of in keys}
    now = timezone.now()
    with transaction.atomic():
        # Rows are locked and written in key order, so overlapping batches never deadlock.
        existing = {
            (row["member_id"], row["as_of"]): row
            for row in AssetSnapshot.objects.select_for_update()
            .filter(member_id__in=member_ids, as_of__in=dates)
            .order_by("member_id", "as_of")
            .values("member_id", "as_of", *SNAPSHOT_AMOUNTS)
        }
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        rows = []
        for item in sorted(snapshots, key=lambda item: (item["member_id"], item["as_of"])):
            stored = existing.get((item["member_id"], item["as_of"]))
            amounts = {name: Decimal(item.get(name) or 0) for name in SNAPSHOT_AMOUNTS}
            if stored is None:
                counts["created"] += 1
            elif all(stored[name] == amounts[name] for name in SNAPSHOT_AMOUNTS):
                counts["unchanged"] += 1
                continue
            else:
                counts["updated"] += 1
            rows.append(
                AssetSnapshot(
                    member_id=item["member_id"], as_of=item["as_of"], updated_at=now, **amounts
                )
            )
        AssetSnapshot.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["member", "as_of"],
            update_fields=[*SNAPSHOT_AMOUNTS, "updated_at"],
            batch_size=1000,
        )
    return counts


def member_message_send(
    *,
    member: Member,
    kind: str,
    title: Any,
    body: Any,
    dedupe_key: str,
    data: dict[str, Any] | None = None,
) -> Message | None:
    """Write a message to ``member``, once per ``dedupe_key``; ``None`` if it already exists.

    ``title`` and ``body`` may be lazy translations (with ``%(name)s`` placeholders filled from
    ``data``): they are rendered in the member's preferred language. Delivery through an outside
    channel happens later (``members.tasks.messages_deliver_task``), after the commit.
    """
    data = data or {}
    with translation.override(member.preferred_language):
        rendered_title = str(title) % data if data else str(title)
        rendered_body = str(body) % data if data else str(body)
    message, created = Message.objects.get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "member": member,
            "kind": kind,
            "title": rendered_title[:200],
            "body": rendered_body,
            "data": data,
        },
    )
    return message if created else None


def messages_mark_read(*, member: Member, message_ids: list[str]) -> int:
    return Message.objects.filter(member=member, id__in=message_ids, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def messages_deliver(*, limit: int = 500) -> int:
    """Hand pending messages to the channel named by ``MESSAGE_CHANNEL`` and mark them sent.

    Rows are claimed with ``SKIP LOCKED`` so parallel workers never send one message twice. The
    ``log`` channel (the default) writes each message to the ``members.delivery`` logger, which
    a log shipper forwards to the bank's push and SMS gateway.
    """
    import logging

    from django.conf import settings

    channel = getattr(settings, "MESSAGE_CHANNEL", "log")
    logger = logging.getLogger("members.delivery")
    with transaction.atomic():
        batch = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(delivery=Message.Delivery.PENDING)
            .select_related("member")
            .order_by("created_at")[:limit]
        )
        for message in batch:
            logger.info(
                "deliver channel=%s member=%s kind=%s title=%s",
                channel,
                message.member.customer_no,
                message.kind,
                message.title,
            )
        now = timezone.now()
        Message.objects.filter(pk__in=[m.pk for m in batch]).update(
            delivery=Message.Delivery.SENT, delivered_at=now
        )
    return len(batch)
