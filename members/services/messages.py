"""Member messages: written once per ``dedupe_key``, delivered later through a channel.

:func:`member_message_send` writes a message in the member's language, and a second call with
the same key writes nothing (evaluation runs write theirs in SQL the same way, see
:func:`members.services.evaluation._tier_change_templates`). Delivery happens after the commit
and claims rows with ``SKIP LOCKED``, so parallel workers never send one message twice.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone, translation
from django.utils.functional import Promise

from members.models import Member, Message


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

    A ``title`` or ``body`` given as a lazy translation is a template: it is rendered in the
    member's preferred language with its ``%(name)s`` placeholders filled from ``data``. A plain
    string is final text and used as it is (a ``%`` in it is just a character). Delivery through
    an outside channel happens later (``members.tasks.messages_deliver_task``), after the commit.
    """
    data = data or {}

    def render(text: Any) -> str:
        return str(text) % data if isinstance(text, Promise) and data else str(text)

    with translation.override(member.preferred_language):
        rendered_title, rendered_body = render(title), render(body)
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
