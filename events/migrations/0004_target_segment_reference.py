"""An event's target segment becomes a reference to a segment. Before segments existed the
column could hold any id and named no segment; such ids are cleared first (the event invited
as if it named none, and still does)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0003_invitation_references_checked_per_statement"),
        ("members", "0011_segments_member_value"),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE events_event SET target_segment = NULL WHERE target_segment IS NOT NULL",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="event",
            name="target_segment",
            field=models.ForeignKey(
                blank=True,
                help_text=(
                    "Members must also be in this segment (as refreshed when invitations go out)."
                ),
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="members.segment",
                verbose_name="target segment",
            ),
        ),
    ]
