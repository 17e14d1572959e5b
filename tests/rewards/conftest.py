import pytest

from points.models import Entry
from points.services.ledger import points_credit
from tests.factories import MemberFactory


def fund(member, points: int, *, key: str | None = None, occurred_at=None) -> Entry:
    """Credit ``points`` to ``member`` as a bonus (one lot)."""
    return points_credit(
        member=member,
        points=points,
        idempotency_key=key or f"test-bonus:{member.pk}:{Entry.objects.count()}",
        occurred_at=occurred_at,
    )


@pytest.fixture
def rich_member(db):
    member = MemberFactory()
    fund(member, 1000)
    return member
