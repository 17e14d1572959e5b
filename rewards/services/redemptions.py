"""Redemptions: points become a reward in one database transaction, and go back exactly once.

:func:`redemption_create` runs, in one transaction under the member's account lock:

0. the member's lots past their last day are expired first (the daily job's entries, once), so
   a redemption never spends points that have expired while the job has not run yet;
1. eligibility, asked of :func:`rewards.selectors.rewards_for_member` (the catalogue's own rule:
   status, window, tier, stock, budget, per-member limit, balance), so a member is refused for
   the reason the catalogue showed;
2. the points debit through the ledger (``points_debit``: lots consumed earliest expiry first,
   each consumption recorded; never below zero);
3. the coupon codes, taken with ``FOR UPDATE SKIP LOCKED`` (two redemptions never wait for or
   take the same code);
4. the month's budget and the stock, each by one conditional ``UPDATE`` that changes nothing when
   too little is left (and check constraints that refuse a negative stock or an overspent budget
   whatever the statement). These come last, after the member's message: the reward's row is
   the one every redemption of a popular reward contends for, and its lock is held only from
   there to the commit.

Any refusal raises before the commit, so nothing is half-written. The account lock serialises a
member's own redemptions: the limit and the balance are checked on what their previous ones
committed.

:func:`redemption_cancel` (member while pending, staff before fulfilment) refunds the points into
the lots they came from (``points_refund``), gives budget and stock back, voids the codes the
member was shown and marks the redemption cancelled, under the redemption's row lock and only
from ``pending``: asked twice, or concurrently, it refunds once. Creating, fulfilling and
cancelling each send the member a message.
"""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from loyalty.models import AuditAction
from loyalty.services import audit_log_record
from loyalty.timeutils import business_date
from members.errors import MemberInactive
from members.models import Member, Message
from members.services.messages import member_message_send
from points.descriptions import redemption_text
from points.errors import InsufficientPoints
from points.models import Entry
from points.services.expiry import member_lots_expire_due
from points.services.ledger import accounts_lock, points_debit, points_refund
from rewards.errors import (
    BudgetExhausted,
    CashNotDue,
    CashPaid,
    CashUnpaid,
    LimitExceeded,
    NotEligible,
    OutOfStock,
    RedemptionClosed,
    RewardNotFound,
)
from rewards.models import BudgetMonth, CouponCode, Redemption, Reward
from rewards.selectors import month_of, rewards_for_member
from rewards.services.codes import codes_low_notify

# Each ineligible reason's error (rewards.selectors.INELIGIBLE_REASONS).
REFUSALS: dict[str, type[Exception]] = {
    "member_inactive": MemberInactive,
    "not_started": NotEligible,
    "ended": NotEligible,
    "tier": NotEligible,
    "out_of_stock": OutOfStock,
    "budget_exhausted": BudgetExhausted,
    "limit_reached": LimitExceeded,
    "insufficient_points": InsufficientPoints,
}
MAX_QUANTITY = 10


def _names(reward: Reward) -> dict[str, str]:
    return {"en": reward.name_en, "zh_hans": reward.name_zh_hans}


def _message(redemption: Redemption, *, event: str, title: Any, body: Any) -> None:
    with translation.override(redemption.member.preferred_language):
        reward_name = redemption.reward.name
    member_message_send(
        member=redemption.member,
        kind=Message.Kind.REDEMPTION,
        title=title,
        body=body,
        dedupe_key=f"redemption:{redemption.pk}:{event}",
        data={
            "reward": reward_name,
            "quantity": redemption.quantity,
            "points": redemption.points_spent,
            "redemption_id": str(redemption.pk),
        },
    )


def _take_codes(*, reward: Reward, redemption: Redemption, quantity: int, now: dt.datetime) -> int:
    if not reward.uses_codes:
        return 0
    table = connection.ops.quote_name(CouponCode._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET redemption_id = %s, issued_at = %s WHERE id IN ("  # noqa: S608
            f"SELECT id FROM {table} WHERE reward_id = %s AND redemption_id IS NULL "
            "AND (expires_on IS NULL OR expires_on >= %s) ORDER BY id LIMIT %s "
            "FOR UPDATE SKIP LOCKED)",
            [redemption.pk, now, reward.pk, business_date(now), quantity],
        )
        return cursor.rowcount


def _spend_budget(*, reward: Reward, redemption: Redemption) -> bool:
    """Add the redemption's points to the spending of its ``budget_month`` unless that passes
    the reward's budget."""
    if redemption.budget_month is None:
        return True
    points = redemption.points_spent
    table = connection.ops.quote_name(BudgetMonth._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS b (reward_id, month, points_spent) "
            "SELECT %s, %s, %s WHERE %s <= %s "
            "ON CONFLICT (reward_id, month) DO UPDATE "
            "SET points_spent = b.points_spent + EXCLUDED.points_spent "
            "WHERE b.points_spent + EXCLUDED.points_spent <= %s",
            [
                reward.pk,
                redemption.budget_month,
                points,
                points,
                reward.monthly_points_budget,
                reward.monthly_points_budget,
            ],
        )
        return cursor.rowcount == 1


def _take_stock(*, reward: Reward, quantity: int) -> bool:
    if reward.stock is None:
        return True
    return bool(
        Reward.objects.filter(pk=reward.pk, stock__gte=quantity).update(stock=F("stock") - quantity)
    )


def redemption_create(*, member: Member, reward_id: Any, quantity: int = 1) -> Redemption:
    """Redeem ``quantity`` of a reward for ``member`` (see the module's docstring for the
    order and the guarantees). Raises the refusal's error with nothing written:
    :class:`~rewards.errors.RewardNotFound`, ``NotEligible``, ``OutOfStock``,
    ``BudgetExhausted``, ``LimitExceeded``, ``InsufficientPoints`` or ``MemberInactive``."""
    if not 1 <= quantity <= MAX_QUANTITY:
        raise ValueError(f"quantity must be 1 to {MAX_QUANTITY}")
    now = timezone.now()
    with transaction.atomic():
        accounts = accounts_lock(member_ids=[member.pk])
        member_lots_expire_due(accounts=accounts, member_id=member.pk)
        account = accounts[member.pk]
        member = Member.objects.get(pk=member.pk)  # the status as of the lock
        reward = (
            rewards_for_member(member=member, quantity=quantity, now=now, balance=account.balance)
            .filter(pk=reward_id)
            .first()
        )
        if reward is None:
            raise RewardNotFound()
        reason = reward.ineligible_reason  # type: ignore[attr-defined]  # an annotation
        if reason:
            raise REFUSALS[reason]()
        points = reward.points_price * quantity
        redemption = Redemption(
            member=member,
            reward=reward,
            quantity=quantity,
            points_spent=points,
            cash_amount=(reward.cash_price * quantity).quantize(Decimal("0.01")),
            currency=reward.currency,
            created_at=now,
            # The month whose budget it spends, so a cancellation gives back only that.
            budget_month=month_of(now) if reward.monthly_points_budget is not None else None,
        )
        redemption.debit = points_debit(
            member=member,
            points=points,
            kind=Entry.Kind.REDEEM,
            idempotency_key=f"redemption:{redemption.pk}",
            reference=f"redemption:{redemption.pk}",
            description=redemption_text(kind=Entry.Kind.REDEEM, names=_names(reward)),
            rules={"reward": _names(reward)},
        )
        redemption.save(force_insert=True)
        taken = _take_codes(reward=reward, redemption=redemption, quantity=quantity, now=now)
        if reward.uses_codes and taken < quantity:
            raise OutOfStock()
        if reward.uses_codes:
            codes_low_notify(reward=reward)
        _message(
            redemption,
            event="created",
            title=_("You redeemed %(reward)s"),
            body=_(
                "%(points)s points were spent on %(quantity)s x %(reward)s. We will tell you when "
                "it is on its way."
            ),
        )
        if not _spend_budget(reward=reward, redemption=redemption):
            raise BudgetExhausted()
        if not _take_stock(reward=reward, quantity=quantity):
            raise OutOfStock()
    return redemption


def _locked(redemption: Redemption) -> Redemption:
    return (
        Redemption.objects.select_for_update(of=("self",))
        .select_related("member", "reward", "debit")
        .get(pk=redemption.pk)
    )


def redemption_cancel(*, redemption: Redemption, actor: Any = None, reason: str = "") -> Redemption:
    """Cancel a pending redemption: points back into their lots, budget and stock back (in the
    order a redemption takes them, so the two never deadlock). Its coupon codes were shown to
    the member, so they are void: kept by the cancelled redemption, never given again.

    ``actor`` is the staff user (``None``: the member). A cancelled one is returned unchanged
    (asked twice, it refunds once); a fulfilled one raises :class:`RedemptionClosed`. A member
    cannot cancel once the co-payment is paid (:class:`CashPaid`); staff can, and the audit row
    records the cash to pay back. Once a closed membership is final the points cannot come back
    (``MemberInactive``)."""
    with transaction.atomic():
        redemption = _locked(redemption)
        if redemption.status == Redemption.Status.CANCELLED:
            return redemption
        if redemption.status != Redemption.Status.PENDING:
            raise RedemptionClosed()
        if actor is None and redemption.cash_paid_at is not None:
            raise CashPaid()
        reward = redemption.reward
        now = timezone.now()
        redemption.refund = points_refund(
            debit=redemption.debit,
            reference=f"redemption:{redemption.pk}",
            description=redemption_text(kind=Entry.Kind.REFUND, names=_names(reward)),
            rules={"reward": _names(reward)},
        )
        if redemption.budget_month is not None:
            BudgetMonth.objects.filter(reward=reward, month=redemption.budget_month).update(
                points_spent=F("points_spent") - redemption.points_spent
            )
        Reward.objects.filter(pk=reward.pk, stock__isnull=False).update(
            stock=F("stock") + redemption.quantity
        )
        redemption.status = Redemption.Status.CANCELLED
        redemption.cancelled_at = now
        redemption.cancelled_by = actor
        redemption.cancel_reason = reason[:500]
        redemption.save(
            update_fields=["status", "refund", "cancelled_at", "cancelled_by", "cancel_reason"]
        )
        if actor is not None:
            audit_log_record(
                actor=actor,
                action=AuditAction.REDEMPTION_CANCEL,
                target=redemption,
                before={"status": Redemption.Status.PENDING},
                after={
                    "status": Redemption.Status.CANCELLED,
                    "cash_to_pay_back": redemption.cash_amount if redemption.cash_paid_at else 0,
                },
                reason=reason,
            )
        _message(
            redemption,
            event="cancelled",
            title=_("Your redemption of %(reward)s was cancelled"),
            body=_("%(points)s points are back in your account."),
        )
    return redemption


def redemption_fulfil(*, redemption: Redemption, actor: Any, note: str = "") -> Redemption:
    """Mark a pending redemption fulfilled (the gift shipped, the service given). A cash
    co-payment must be paid first. Fulfilling a fulfilled one changes nothing."""
    with transaction.atomic():
        redemption = _locked(redemption)
        if redemption.status == Redemption.Status.FULFILLED:
            return redemption
        if redemption.status != Redemption.Status.PENDING:
            raise RedemptionClosed()
        if redemption.cash_amount > 0 and redemption.cash_paid_at is None:
            raise CashUnpaid()
        redemption.status = Redemption.Status.FULFILLED
        redemption.fulfilled_at = timezone.now()
        redemption.fulfilled_by = actor
        redemption.save(update_fields=["status", "fulfilled_at", "fulfilled_by"])
        audit_log_record(
            actor=actor,
            action=AuditAction.REDEMPTION_FULFIL,
            target=redemption,
            before={"status": Redemption.Status.PENDING},
            after={"status": Redemption.Status.FULFILLED},
            reason=note,
        )
        _message(
            redemption,
            event="fulfilled",
            title=_("%(reward)s is on its way"),
            body=_("Your redemption of %(quantity)s x %(reward)s has been fulfilled."),
        )
    return redemption


def redemption_cash_paid(*, redemption: Redemption, actor: Any, reference: str) -> Redemption:
    """Record that the bank collected the cash co-payment (the integration account reports it).
    Reported again with the same reference, nothing changes."""
    with transaction.atomic():
        redemption = _locked(redemption)
        if redemption.cash_paid_at is not None and redemption.cash_payment_reference == reference:
            return redemption
        if redemption.cash_amount <= 0 or redemption.cash_paid_at is not None:
            raise CashNotDue()
        if redemption.status != Redemption.Status.PENDING:
            raise RedemptionClosed()
        redemption.cash_paid_at = timezone.now()
        redemption.cash_payment_reference = reference[:64]
        redemption.save(update_fields=["cash_paid_at", "cash_payment_reference"])
        audit_log_record(
            actor=actor,
            action=AuditAction.REDEMPTION_CASH_PAID,
            target=redemption,
            after={"cash_amount": redemption.cash_amount, "reference": reference},
        )
    return redemption
