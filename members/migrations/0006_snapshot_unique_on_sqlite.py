"""The snapshot's unique constraint carries AUM and contribution as included columns (an
index-only read for tier evaluation on PostgreSQL). SQLite cannot include columns, so Django
skips the constraint there; this gives the development database the plain unique index that
``ON CONFLICT (member_id, as_of)`` needs."""

from django.db import migrations

INDEX = "snapshot_member_as_of_uniq_sqlite"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {INDEX} "
            "ON members_assetsnapshot (member_id, as_of)"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("members", "0005_evaluation_write_indexes")]

    operations = [migrations.RunPython(forward, backward)]
