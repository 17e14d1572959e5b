from decimal import Decimal

from django.db.models import OuterRef, QuerySet, Subquery

from members.errors import MemberNotFound
from members.models import AssetSnapshot, Member, Message


def _latest_snapshot(field: str) -> Subquery:
    return Subquery(
        AssetSnapshot.objects.filter(member=OuterRef("pk")).order_by("-as_of").values(field)[:1]
    )


def member_list() -> QuerySet[Member]:
    """Members with their latest AUM, contribution and snapshot date (``latest_*``)."""
    return Member.objects.annotate(
        latest_aum=_latest_snapshot("aum"),
        latest_contribution=_latest_snapshot("contribution"),
        latest_as_of=_latest_snapshot("as_of"),
    )


def member_get(*, customer_no: str) -> Member:
    member = member_list().filter(customer_no=customer_no).first()
    if member is None:
        raise MemberNotFound()
    return member


def member_snapshots(*, member: Member, limit: int = 12) -> list[AssetSnapshot]:
    return list(member.snapshots.order_by("-as_of")[:limit])


def member_messages(*, member: Member) -> QuerySet[Message]:
    return Message.objects.filter(member=member).order_by("-created_at")


def member_tier_codes(*, member_ids: list[int]) -> dict[int, str | None]:
    """Each member's current tier code (``None`` while the member has no tier).

    Earning rules use it for campaign targets. Until tiers exist, nobody has one.
    """
    return dict.fromkeys(member_ids)


def member_points_multipliers(*, member_ids: list[int]) -> dict[int, Decimal]:
    """Each member's tier points multiplier, for earning. Until tiers exist, 1 for everyone."""
    return dict.fromkeys(member_ids, Decimal(1))
