from celery import shared_task

from members.services import messages_deliver


@shared_task(name="members.messages_deliver")
def messages_deliver_task(limit: int = 500) -> int:
    """Send pending member messages through the configured channel."""
    return messages_deliver(limit=limit)
