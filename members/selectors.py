from django.db.models import OuterRef, QuerySet, Subquery

from members.errors import MemberNotFound
from members.models import AssetSnapshot, Member


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
