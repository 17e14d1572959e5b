"""``reconcile_points`` proves each debit's consumption rows add up to it: each way of breaking
that by raw SQL makes the command fail, naming the member, the entry and the check."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from points.models import Entry
from rewards.services.redemptions import redemption_create
from tests.factories import MemberFactory
from tests.rewards.conftest import fund
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def redeemed(rich_member):
    fund(rich_member, 500)  # two lots: the redemption below draws from both
    redemption = redemption_create(
        member=rich_member, reward_id=RewardFactory(points_price=1200).pk
    )
    call_command("reconcile_points")  # consistent to begin with
    return redemption


def _fails(capsys, *fragments: str) -> None:
    capsys.readouterr()
    with pytest.raises(CommandError) as error:
        call_command("reconcile_points")
    assert error.value.returncode == 1
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err


def _sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _unguarded(statement: str, params=()) -> None:
    """``statement`` with the append-only trigger of the consumptions off, as a raw write by
    someone with the table owner's rights could do."""
    _sql(
        "ALTER TABLE points_consumption DISABLE TRIGGER USER; "
        f"{statement}; ALTER TABLE points_consumption ENABLE TRIGGER USER",
        params,
    )


def test_a_consumption_row_that_draws_too_much_is_found(redeemed, capsys):
    debit = redeemed.debit
    _unguarded("UPDATE points_consumption SET points = points + 1 WHERE entry_id = %s", [debit.pk])
    _fails(capsys, f"member {debit.member_id}", f"entry {debit.pk}", "consumptions != debit")


def test_a_missing_consumption_row_is_found(redeemed, capsys):
    debit = redeemed.debit
    _unguarded(
        "DELETE FROM points_consumption WHERE id = "
        "(SELECT min(id) FROM points_consumption WHERE entry_id = %s)",
        [debit.pk],
    )
    _fails(capsys, f"entry {debit.pk}", "consumptions != debit")


def test_a_consumption_of_a_credit_is_found(redeemed, capsys):
    credit = Entry.objects.filter(member=redeemed.member, kind="bonus").first()
    _sql(
        "INSERT INTO points_consumption (entry_id, lot_id, member_id, points) "
        "VALUES (%s, %s, %s, 5)",
        [credit.pk, credit.lot.pk, credit.member_id],
    )
    _fails(capsys, f"entry {credit.pk}", "consumptions != debit")


def test_a_consumption_booked_to_another_member_is_found(redeemed, capsys):
    debit = redeemed.debit
    stranger = MemberFactory()
    _unguarded(
        "UPDATE points_consumption SET member_id = %s WHERE entry_id = %s",
        [stranger.pk, debit.pk],
    )
    _fails(capsys, f"entry {debit.pk}", "consumptions != debit")
