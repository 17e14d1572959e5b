"""Each ledger kind's sign has one source (points.models): the database's check constraint and
the ledger's credit and debit agree on it for every kind."""

import pytest
from django.db import IntegrityError, transaction

from points.models import Entry, EntryKind
from points.services.ledger import CREDITS, DEBITS, points_credit, points_debit
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def _database_accepts(member, kind: str, points: int) -> bool:
    try:
        with transaction.atomic():
            Entry.objects.create(
                member=member,
                kind=kind,
                points=points,
                balance_after=max(points, 0),
                idempotency_key=f"sign:{kind}:{points}",
            )
    except IntegrityError:
        return False
    return True


@pytest.mark.parametrize("kind", EntryKind.values)
def test_the_database_signs_each_kind_as_the_ledger_does(kind):
    member = MemberFactory()
    assert _database_accepts(member, kind, 5) == (kind in CREDITS)
    assert _database_accepts(member, kind, -5) == (kind in DEBITS)
    assert not _database_accepts(member, kind, 0)


def test_every_kind_has_a_direction_and_the_ledger_refuses_the_other():
    assert set(EntryKind) == CREDITS | DEBITS
    member = MemberFactory()
    points_credit(member=member, points=100, idempotency_key="seed")
    for kind in DEBITS - CREDITS:
        with pytest.raises(ValueError, match="not a credit kind"):
            points_credit(member=member, points=1, idempotency_key=f"c:{kind}", kind=kind)
    for kind in CREDITS - DEBITS:
        with pytest.raises(ValueError, match="not a debit kind"):
            points_debit(member=member, points=1, idempotency_key=f"d:{kind}", kind=kind)
