from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("points", "0004_references_checked_per_statement")]

    operations = [
        # Names staff enter in both languages; the existing name is the English one.
        migrations.RenameField("earningrule", "name", "name_en"),
        migrations.AlterField(
            "earningrule",
            "name_en",
            models.CharField(max_length=100, verbose_name="name (English)"),
        ),
        migrations.AddField(
            "earningrule",
            "name_zh_hans",
            models.CharField(
                blank=True, max_length=100, verbose_name="name (Simplified Chinese)"
            ),
        ),
        migrations.RenameField("campaign", "name", "name_en"),
        migrations.AlterField(
            "campaign",
            "name_en",
            models.CharField(max_length=100, verbose_name="name (English)"),
        ),
        migrations.AddField(
            "campaign",
            "name_zh_hans",
            models.CharField(
                blank=True, max_length=100, verbose_name="name (Simplified Chinese)"
            ),
        ),
        # A member's ledger is read newest first by when the business happened.
        migrations.RemoveIndex("entry", "points_entry_member_idx"),
        migrations.AddIndex(
            "entry",
            models.Index(
                fields=["member", "-occurred_at", "-id"], name="points_entry_member_time_idx"
            ),
        ),
    ]
