# One row per member (the ranked items in a JSON list) instead of one per item: the nightly
# job writes a tenth of the rows and replaces them in place (INSERT ... ON CONFLICT), with no
# DELETE of the previous run's rows. The rows are recomputed every night, so the table is
# re-created rather than converted.

import django.db.models.deletion
import django.db.models.lookups
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0001_kpis_recommendations_surveys"),
        ("members", "0011_segments_member_value"),
    ]

    operations = [
        migrations.DeleteModel(
            name="Recommendation",
        ),
        migrations.CreateModel(
            name="Recommendation",
            fields=[
                (
                    "member",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="members.member",
                        verbose_name="member",
                    ),
                ),
                (
                    "holdout",
                    models.BooleanField(
                        default=False,
                        help_text="The member gets popularity only.",
                        verbose_name="holdout",
                    ),
                ),
                ("items", models.JSONField(default=list, verbose_name="items")),
                (
                    "computed_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="computed at"
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="insights.recommendationrun",
                        verbose_name="run",
                    ),
                ),
            ],
            options={
                "verbose_name": "recommendation",
                "verbose_name_plural": "recommendations",
                "ordering": ["member"],
                "constraints": [
                    models.CheckConstraint(
                        condition=django.db.models.lookups.Exact(
                            models.Func(
                                models.F("items"),
                                models.Value(
                                    '$.type() == "array" && !(exists($[*] ? ('
                                    '!(@.type == "reward" || @.type == "event") || !(exists(@.id)) || !(exists(@.score))'
                                    " || !(exists(@.reason)))))"
                                ),
                                function="jsonb_path_match",
                                output_field=models.BooleanField(),
                            ),
                            True,
                        ),
                        name="recommendation_items_well_formed",
                    )
                ],
            },
        ),
    ]
