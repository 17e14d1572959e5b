"""Building blocks for the tier tests: a ladder, snapshots, an evaluation run."""

import datetime as dt
from decimal import Decimal
from typing import Any

from members.models import (
    AssetSnapshot,
    Member,
    MemberTier,
    Tier,
    TierEvaluationRun,
    TierHistory,
    TierOverride,
)
from members.services.evaluation import tier_evaluate, tier_evaluation_start

AS_OF = dt.date(2026, 10, 31)
WINDOW = (dt.date(2026, 8, 31), dt.date(2026, 9, 30), dt.date(2026, 10, 31))

LADDER = [
    # code, rank, min_avg_aum, min_contribution, multiplier
    ("STANDARD", 10, None, None, "1.00"),
    ("GOLD", 20, "100000.00", "2000.00", "1.20"),
    ("PLATINUM", 30, "500000.00", "10000.00", "1.50"),
    ("DIAMOND", 40, "5000000.00", "50000.00", "2.00"),
    ("PRIVATE", 50, "10000000.00", "100000.00", "3.00"),
]


def ladder(**overrides) -> dict[str, Tier]:
    """The five-tier ladder; ``overrides`` apply to every tier (e.g. ``grace_periods=3``)."""
    tiers = {}
    for code, rank, aum, contribution, multiplier in LADDER:
        tiers[code] = Tier.objects.create(
            code=code,
            name_en=code.title(),
            name_zh_hans=f"{code}-中文",
            rank=rank,
            min_avg_aum=Decimal(aum) if aum else None,
            min_contribution=Decimal(contribution) if contribution else None,
            multiplier=Decimal(multiplier),
            **overrides,
        )
    return tiers


def snapshots(
    member: Member,
    aum: str | Decimal,
    contribution: str | Decimal = "0",
    *,
    dates=WINDOW,
) -> None:
    """The same AUM (as deposits) and contribution on each of ``dates`` (replacing any)."""
    for as_of in dates:
        AssetSnapshot.objects.update_or_create(
            member=member,
            as_of=as_of,
            defaults={"deposits": Decimal(aum), "contribution": Decimal(contribution)},
        )


def month_ends(last: dt.date, months: int = 3) -> tuple[dt.date, ...]:
    """The ``months`` month-ends ending with ``last``'s month."""
    dates = []
    year, month = last.year, last.month
    for _ in range(months):
        first_next = dt.date(year + (month == 12), month % 12 + 1, 1)
        dates.append(first_next - dt.timedelta(days=1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return tuple(reversed(dates))


def evaluate(as_of: dt.date = AS_OF, **kwargs):
    """Start a run and process it here (the task is enqueued on commit, which a test
    transaction never reaches)."""
    run = tier_evaluation_start(as_of=as_of, **kwargs)
    return tier_evaluate(run_id=run.run_id)


def tier_of(member: Member) -> str:
    from members.selectors import member_tier_get

    return member_tier_get(member=member).code  # type: ignore[union-attr]  # tiered in these tests


def members_state(*members: Member) -> dict[str, Any]:
    """What a refused request must leave as it was: the number of rows of every table of the
    members app and of the audit log, the rows themselves of the tables a tier, override,
    snapshot or member request writes, and the tier each of ``members`` holds (``None`` while no
    tier is configured). Equal before and after: nothing was added, removed or altered."""
    from django.apps import apps
    from django.db.models import Model

    from loyalty.models import AuditLog
    from members.selectors import member_tier_get

    models: list[type[Model]] = [*apps.get_app_config("members").get_models(), AuditLog]
    rows: list[type[Model]] = [
        Member,
        AssetSnapshot,
        Tier,
        MemberTier,
        TierOverride,
        TierHistory,
        TierEvaluationRun,
    ]
    tiers = {}
    for member in members:
        tier = member_tier_get(member=member)
        tiers[member.customer_no] = tier.code if tier else None
    return {
        "counts": {model._meta.label: model._default_manager.count() for model in models},
        "rows": {
            model._meta.label: list(model._default_manager.order_by("pk").values())
            for model in rows
        },
        "tiers": tiers,
    }
