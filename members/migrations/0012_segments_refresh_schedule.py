"""The nightly segment refresh on the beat schedule (01:30, business time zone)."""

from django.db import migrations


def schedule(apps, schema_editor):
    from members.schedules import tier_evaluation_schedule_ensure

    tier_evaluation_schedule_ensure(apps=apps)  # adds the nightly segment refresh


def unschedule(apps, schema_editor):
    from members.schedules import SEGMENTS_REFRESH_SCHEDULE_NAME

    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name=SEGMENTS_REFRESH_SCHEDULE_NAME
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("members", "0011_segments_member_value"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
