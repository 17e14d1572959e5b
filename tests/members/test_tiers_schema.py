"""The indexes of the tables an evaluation run writes in bulk: what reads need, nothing more."""

import pytest
from django.db import IntegrityError, connection, transaction

from members.models import MemberTier, Message, TierHistory
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

BULK_TABLES = [MemberTier, TierHistory, Message]


def _index_columns(table: str) -> list[tuple[str, list[str], bool, bool]]:
    """(name, key columns in order, partial, unique) of every index on ``table``."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname,
                   array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
                         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                         ORDER BY k.n),
                   x.indpred IS NOT NULL, x.indisunique
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = %s::regclass
            """,
            [table],
        )
        return [(name, list(cols), partial, unique) for name, cols, partial, unique in cursor]


@pytest.mark.parametrize("model", BULK_TABLES, ids=lambda m: m.__name__)
def test_references_other_than_tiers_lead_an_index(model):
    """Members, runs and overrides are looked up by these tables' rows (a member's history and
    messages, a run's changes, an override's effects): each such reference leads an index.
    Tier references do not: a handful of tiers, which are deactivated, never deleted."""
    leading = {columns[0] for _name, columns, *_ in _index_columns(model._meta.db_table)}
    references = [
        field.column
        for field in model._meta.concrete_fields
        if field.is_relation and field.related_model.__name__ != "Tier"
    ]
    assert references  # every bulk table refers to a member
    assert set(references) <= leading, (model.__name__, set(references) - leading)


@pytest.mark.parametrize("model", BULK_TABLES, ids=lambda m: m.__name__)
def test_no_index_is_a_prefix_of_another(model):
    """Every index on a bulk-written table costs each evaluation write: none is redundant."""
    indexes = _index_columns(model._meta.db_table)
    # Partial indexes (over a few rows only) are left out; a unique index is a constraint and
    # may lead with another's columns, but no plain index may lead any other's.
    plain = [(name, columns, unique) for name, columns, partial, unique in indexes if not partial]
    checked = [(name, columns) for name, columns, unique in plain if not unique]
    assert checked, indexes  # each table has a plain index to compare
    redundant = [
        (name, other)
        for name, columns in checked
        for other, other_columns, _unique in plain
        if other != name and other_columns[: len(columns)] == columns
    ]
    assert redundant == []


def test_message_dedupe_key_is_still_unique():
    member = MemberFactory()
    Message.objects.create(member=member, kind="general", title="t", body="b", dedupe_key="k:1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(member=member, kind="general", title="t", body="b", dedupe_key="k:1")


def test_tier_history_refuses_raw_update_and_delete():
    from django.db import DatabaseError

    from tests.members.tier_helpers import evaluate, ladder, snapshots

    ladder()
    snapshots(MemberFactory(), "600000.00")
    evaluate()
    assert TierHistory.objects.count() == 1
    for sql in (
        "UPDATE members_tierhistory SET reason = 'tampered'",
        "DELETE FROM members_tierhistory",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert TierHistory.objects.get().reason == "upgrade"
