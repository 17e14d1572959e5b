"""Building blocks for the tier tests: a ladder, snapshots, an evaluation run."""

import datetime as dt
from decimal import Decimal

from members.models import AssetSnapshot, Member, Tier
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
