"""Builders of the KPI tests' data: a two-tier ladder, members who join and leave on given days,
and ledger entries, transactions, snapshots and events placed at business moments."""

import datetime as dt
from decimal import Decimal
from typing import cast

import time_machine

from events.models import Event, Feedback, Invitation
from insights.models import Survey, SurveyResponse
from loyalty.timeutils import business_tz
from members.models import Member, MemberTier, Tier
from points.models import Entry, Lot, Transaction
from points.services.expiry import points_expire_due
from points.services.ledger import points_credit, points_debit, points_refund
from rewards.models import Redemption, Reward
from tests.factories import AssetSnapshotFactory, MemberFactory
from tests.rewards.factories import RewardFactory


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    """A business moment: ``hour`` o'clock in Asia/Shanghai on ``day``."""
    return dt.datetime.combine(day, dt.time(hour), tzinfo=business_tz())


def ladder() -> dict[str, Tier]:
    standard = Tier.objects.create(code="STANDARD", name_en="Standard", rank=10)
    gold = Tier.objects.create(
        code="GOLD", name_en="Gold", rank=20, min_avg_aum=Decimal("100000.00")
    )
    return {"STANDARD": standard, "GOLD": gold}


def member(
    *, joined: dt.date, tier: Tier | None = None, closed: dt.date | None = None, **fields
) -> Member:
    """A member who joined on ``joined``, in ``tier`` (none: no tier state, so the lowest);
    close it with :func:`close` once its points are in place."""
    created = cast(Member, MemberFactory(joined_at=joined, **fields))
    if tier is not None:
        MemberTier.objects.create(member=created, tier=tier)
    return created


def close(member: Member, day: dt.date, hour: int = 12) -> None:
    Member.objects.filter(pk=member.pk).update(
        status=Member.Status.CLOSED, status_changed_at=at(day, hour)
    )


def earn(member: Member, points: int, day: dt.date, *, kind: str = "earn") -> Entry:
    return points_credit(
        member=member,
        points=points,
        kind=kind,
        idempotency_key=f"t:{member.pk}:{kind}:{day}:{points}",
        occurred_at=at(day),
    )


def redeem(member: Member, points: int, day: dt.date) -> Entry:
    with time_machine.travel(at(day), tick=False):
        return points_debit(
            member=member, points=points, idempotency_key=f"t:{member.pk}:redeem:{day}:{points}"
        )


def refund(debit: Entry, day: dt.date) -> Entry:
    with time_machine.travel(at(day), tick=False):
        return points_refund(debit=debit)


def expire_due(day: dt.date) -> dict[str, int]:
    """The daily expiry job as it runs on ``day``."""
    with time_machine.travel(at(day, 2), tick=False):
        return points_expire_due(today=day)


def lot_expires(entry: Entry, on: dt.date) -> Lot:
    Lot.objects.filter(entry=entry).update(expires_on=on)
    return Lot.objects.get(entry=entry)


def transaction(member: Member, day: dt.date, *, status: str = "processed", amount="100.00"):
    return Transaction.objects.create(
        member=member,
        external_id=f"T{member.pk}-{day}-{status}-{amount}",
        type="card_spend",
        amount=Decimal(amount),
        occurred_at=at(day),
        channel="pos",
        via="api",
        status=status,
    )


def redemption(member: Member, debit: Entry, day: dt.date) -> Redemption:
    redemption = Redemption.objects.create(
        member=member,
        reward=cast(Reward, RewardFactory()),
        quantity=1,
        points_spent=-debit.points,
        debit=debit,
        status=Redemption.Status.PENDING,
    )
    Redemption.objects.filter(pk=redemption.pk).update(created_at=at(day))
    return redemption


def snapshot(member: Member, as_of: dt.date, aum: str, contribution: str = "0.00"):
    return AssetSnapshotFactory(
        member=member, as_of=as_of, deposits=Decimal(aum), contribution=Decimal(contribution)
    )


def event(starts: dt.date) -> Event:
    start = at(starts, 19)
    return Event.objects.create(
        title_en=f"Salon {starts}",
        kind="salon",
        capacity=100,
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        rsvp_deadline=start - dt.timedelta(days=1),
        invite_at=start - dt.timedelta(days=10),
        status=Event.Status.PUBLISHED,
    )


def invite(event: Event, member: Member, status: str) -> Invitation:
    return Invitation.objects.create(event=event, member=member, status=status)


def feedback(invitation: Invitation, *, rating: int, nps: int, day: dt.date) -> Feedback:
    given = Feedback.objects.create(invitation=invitation, rating=rating, nps=nps)
    Feedback.objects.filter(pk=given.pk).update(created_at=at(day))
    return given


def survey_answer(member: Member, score: int | None, day: dt.date | None) -> SurveyResponse:
    survey, _ = Survey.objects.get_or_create(
        question_en="How likely are you to recommend us?",
        defaults={"status": Survey.Status.SENT, "sent_at": at(dt.date(2026, 9, 1))},
    )
    return SurveyResponse.objects.create(
        survey=survey,
        member=member,
        score=score,
        answered_at=at(day) if day else None,
    )
