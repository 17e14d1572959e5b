"""The inbox sweeper runs every 30 seconds (it was every five minutes): with
``POINTS_SWEEP_AFTER_SECONDS`` (30 by default) a lost wake-up costs seconds, not minutes. A
schedule staff have changed from the original is left alone."""

from django.db import migrations

SWEEP = "points: sweep the transaction inbox"


def every_30_seconds(apps, schema_editor):
    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    task = periodic_task.objects.filter(
        name=SWEEP, crontab__minute="*/5", crontab__hour="*"
    ).first()
    if task is None:
        return
    task.interval, _ = interval.objects.get_or_create(every=30, period="seconds")
    task.crontab = None
    task.save(update_fields=["interval", "crontab"])


def every_five_minutes(apps, schema_editor):
    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    task = periodic_task.objects.filter(
        name=SWEEP, interval__every=30, interval__period="seconds"
    ).first()
    if task is None:
        return
    task.crontab, _ = crontab.objects.get_or_create(
        minute="*/5",
        hour="*",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="Asia/Shanghai",
    )
    task.interval = None
    task.save(update_fields=["interval", "crontab"])


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0005_entry_time_order_translated_names"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(every_30_seconds, every_five_minutes)]
