"""Expiry: what is left of a lot after its last valid day is expired, exactly once.

Each lot's expiry entry has the idempotency key ``expire:lot:<id>``, and the lot's ``remaining``
drops to zero in the same transaction under the account lock, so a second run (or a concurrent
one) finds nothing left to expire.
"""

import datetime as dt
import logging
from collections import defaultdict
from typing import cast

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from loyalty.selectors import programme_settings_get
from loyalty.timeutils import business_today
from members.models import Member, Message
from members.services.messages import member_message_send
from points.descriptions import expiry_text
from points.models import Lot
from points.services.ledger import AccountState, LedgerBatch, accounts_lock

logger = logging.getLogger(__name__)

EXPIRY_CHUNK = 500


def points_expire_due(*, today: dt.date | None = None) -> dict[str, int]:
    """Expire the remaining points of every lot whose last valid day is before ``today``
    (the business date by default), in chunks of members, one transaction each.

    Returns ``{"lots", "points"}`` expired by this run.
    """
    today = today or business_today()
    expired_lots = expired_points = 0
    last_member = 0
    while True:
        member_ids = list(
            Lot.objects.filter(remaining__gt=0, expires_on__lt=today, member_id__gt=last_member)
            .order_by("member_id")
            .values_list("member_id", flat=True)
            .distinct()[:EXPIRY_CHUNK]
        )
        if not member_ids:
            break
        last_member = member_ids[-1]
        with transaction.atomic():
            batch = LedgerBatch(accounts=accounts_lock(member_ids=member_ids))
            due = (
                Lot.objects.select_for_update()
                .filter(member_id__in=member_ids, remaining__gt=0, expires_on__lt=today)
                .order_by("member_id", "id")
            )
            for lot in due:
                entry = batch.expire_lot(
                    lot=lot,
                    idempotency_key=f"expire:lot:{lot.pk}",
                    description=expiry_text(expires_on=lot.expires_on),
                )
                if entry is not None:
                    expired_lots += 1
                    expired_points -= entry.points
            batch.flush()
    if expired_lots:
        logger.info("expired %s points from %s lots", expired_points, expired_lots)
    return {"lots": expired_lots, "points": expired_points}


def member_lots_expire_due(
    *, accounts: dict[int, AccountState], member_id: int, today: dt.date | None = None
) -> int:
    """Expire what is left of the member's lots whose last day is before ``today``, inside the
    caller's transaction, on the account the caller has locked (``accounts``, updated in place):
    a redemption calls it first, so points past their last day are never spent while the daily
    job has not yet run. The entries are the job's own (``expire:lot:<id>``), so each lot still
    expires once. Returns the number of lots expired."""
    today = today or business_today()
    due = list(
        Lot.objects.select_for_update()
        .filter(member_id=member_id, remaining__gt=0, expires_on__lt=today)
        .order_by("id")
    )
    if not due:
        return 0
    batch = LedgerBatch(accounts=accounts)
    expired = 0
    for lot in due:
        entry = batch.expire_lot(
            lot=lot,
            idempotency_key=f"expire:lot:{lot.pk}",
            description=expiry_text(expires_on=lot.expires_on),
        )
        expired += entry is not None
    batch.flush()
    return expired


def points_expiry_warn(*, today: dt.date | None = None) -> int:
    """Tell each member, once per expiry date, how many points expire within the programme's
    warning period (``expiry_warning_days``). Returns the number of messages written."""
    today = today or business_today()
    settings = programme_settings_get()
    horizon = today + dt.timedelta(days=settings.expiry_warning_days)
    due: dict[tuple[int, dt.date], int] = defaultdict(int)
    rows = Lot.objects.filter(
        remaining__gt=0, expires_on__gte=today, expires_on__lte=horizon
    ).values_list("member_id", "expires_on", "remaining")
    for member_id, expires_on, remaining in rows:
        # ``expires_on__gte`` above leaves out the lots that never expire (NULL).
        due[(member_id, cast(dt.date, expires_on))] += remaining
    members = Member.objects.in_bulk({member_id for member_id, _ in due})
    sent = 0
    for (member_id, expires_on), points in sorted(due.items()):
        member = members[member_id]
        if member.status == Member.Status.CLOSED:
            continue
        message = member_message_send(
            member=member,
            kind=Message.Kind.POINTS_EXPIRING,
            title=_("%(points)s points expire on %(date)s"),
            body=_(
                "%(points)s of your points expire at the end of %(date)s. "
                "Redeem them for a reward before then."
            ),
            dedupe_key=f"points-expiring:{member_id}:{expires_on.isoformat()}",
            data={"points": points, "date": expires_on.isoformat()},
        )
        sent += message is not None
    return sent
