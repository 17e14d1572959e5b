"""References checked once per statement (loyalty.db.checked_references) hold like foreign keys.

Every relation declared without a database foreign key must be checked by the statement
triggers, and the table it points at must refuse DELETE and re-keying; a dangling reference,
written through the ORM or raw SQL, one row or many, is refused and nothing is stored.
"""

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.models import ForeignKey

from members.models import Member, MemberTier, Message, Tier, TierEvaluationRun, TierHistory
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

UNCONSTRAINED = [
    field
    for model in apps.get_models()
    for field in model._meta.concrete_fields
    if isinstance(field, ForeignKey) and not field.db_constraint  # type: ignore[attr-defined]  # set in ForeignKey.__init__, missing from django-stubs
]


def _triggers(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [table],
        )
        return dict(cursor.fetchall())


def _no_member_id() -> int:
    return (Member.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def test_some_relations_are_checked_per_statement():
    assert {f"{f.model.__name__}.{f.name}" for f in UNCONSTRAINED} >= {
        "MemberTier.member",
        "MemberTier.tier",
        "TierHistory.member",
        "TierHistory.run",
        "Message.member",
    }


@pytest.mark.parametrize("field", UNCONSTRAINED, ids=lambda f: f"{f.model.__name__}.{f.name}")
def test_every_relation_without_a_foreign_key_is_checked_and_its_target_undeletable(field):
    table = field.model._meta.db_table
    target = field.related_model._meta.db_table
    triggers = _triggers(table)
    on_insert = triggers[f"{table}_insert_references"]
    assert "FOR EACH STATEMENT" in on_insert
    assert f"'{field.column}', '{target}', '{field.target_field.column}'" in on_insert
    on_update = triggers[f"{table}_{field.column}_update_reference"]
    assert f"UPDATE OF {field.column}" in on_update
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = %s", [f"{table}_{field.column}_reference"]
        )
        source = cursor.fetchone()[0]
    assert f"FROM {target} WHERE {field.target_field.column} = NEW.{field.column}" in source
    target_triggers = _triggers(target)
    assert {f"{target}_no_delete", f"{target}_no_rekey"} <= set(target_triggers) or (
        f"{target}_append_only" in target_triggers  # no UPDATE or DELETE at all
    )


def test_a_dangling_member_is_refused_through_the_orm():
    with pytest.raises(IntegrityError, match="members_member"), transaction.atomic():
        Message.objects.create(
            member_id=_no_member_id(), kind="general", title="t", body="b", dedupe_key="x:1"
        )
    assert not Message.objects.exists()


def test_one_dangling_row_fails_the_whole_statement():
    members = MemberFactory.create_batch(3)
    rows = [m.pk for m in members] + [_no_member_id()]
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO members_message (id, member_id, kind, title, body, data, dedupe_key,
                                         created_at, delivery)
            SELECT gen_random_uuid(), m, 'general', 't', 'b', '{}', 'k:' || m, now(), 'pending'
            FROM unnest(%s::bigint[]) AS m
            """,
            [rows],
        )
    assert not Message.objects.exists()
    with connection.cursor() as cursor:  # the same statement without the bad row is fine
        cursor.execute(
            """
            INSERT INTO members_message (id, member_id, kind, title, body, data, dedupe_key,
                                         created_at, delivery)
            SELECT gen_random_uuid(), m, 'general', 't', 'b', '{}', 'k:' || m, now(), 'pending'
            FROM unnest(%s::bigint[]) AS m
            """,
            [rows[:3]],
        )
    assert Message.objects.count() == 3


def test_an_update_to_a_dangling_tier_is_refused(tier_ladder_min):
    member = MemberFactory()
    state = MemberTier.objects.create(member=member, tier=tier_ladder_min)
    missing = (Tier.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    with pytest.raises(IntegrityError, match="members_tier"), transaction.atomic():
        MemberTier.objects.filter(pk=state.pk).update(tier_id=missing)
    upsert = (
        "INSERT INTO members_membertier (member_id, tier_id, since, failing_count, updated_at) "
        "VALUES (%s, %s, now(), 0, now()) "
        "ON CONFLICT (member_id) DO UPDATE SET tier_id = EXCLUDED.tier_id"
    )
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(upsert, [member.pk, missing])
    state.refresh_from_db()
    assert state.tier_id == tier_ladder_min.pk


def test_history_refuses_an_unknown_run(tier_ladder_min):
    member = MemberFactory()
    with pytest.raises(IntegrityError, match="members_tierevaluationrun"), transaction.atomic():
        TierHistory.objects.create(
            member=member,
            to_tier=tier_ladder_min,
            reason="upgrade",
            run_id=10**9,
            as_of="2026-10-31",
        )


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM members_member WHERE id = %s",
        "UPDATE members_member SET id = id + 1000000 WHERE id = %s",
    ],
    ids=["delete", "re-key"],
)
def test_members_are_never_deleted_or_re_keyed(sql):
    member = MemberFactory()
    with (
        pytest.raises(IntegrityError, match="never deleted"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [member.pk])
    assert Member.objects.filter(pk=member.pk).exists()
    Member.objects.filter(pk=member.pk).update(name="Renamed")  # other columns still change


def test_tiers_and_runs_are_never_deleted(tier_ladder_min):
    with pytest.raises(IntegrityError), transaction.atomic():
        Tier.objects.filter(pk=tier_ladder_min.pk).delete()
    run = TierEvaluationRun.objects.create(as_of="2026-10-31")
    with pytest.raises(IntegrityError), transaction.atomic():
        TierEvaluationRun.objects.filter(pk=run.pk).delete()
    assert Tier.objects.filter(pk=tier_ladder_min.pk).exists()


@pytest.fixture
def tier_ladder_min(db):
    return Tier.objects.create(code="BASE", name_en="Base", rank=10)


def test_copy_is_checked_too():
    """The ledger writes with COPY (points.services.sql.rows_create): the statement check runs
    for it as for an INSERT."""
    from points.models import Transaction
    from points.services.sql import rows_create

    member = MemberFactory()

    def inbox_row(external_id: str, member_id: int) -> Transaction:
        return Transaction(
            external_id=external_id,
            member_id=member_id,
            type="card_spend",
            amount="10.00",
            occurred_at="2026-11-01T00:00:00Z",
            channel="pos",
            via="api",
        )

    with pytest.raises(IntegrityError, match="members_member"), transaction.atomic():
        rows_create(
            [inbox_row("c-1", member.pk), inbox_row("c-2", _no_member_id())], model=Transaction
        )
    assert not Transaction.objects.exists()
    rows_create([inbox_row("c-1", member.pk)], model=Transaction)
    assert Transaction.objects.get().member_id == member.pk
