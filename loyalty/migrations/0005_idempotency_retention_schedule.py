"""The daily purge of expired Idempotency-Key records on the beat schedule (03:40, business time
zone). An existing entry, as staff configured it, is left alone."""

from django.conf import settings
from django.db import migrations

NAME = "loyalty: purge expired idempotency keys"
TASK = "loyalty.idempotency_records_purge"


def register(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    periodic_task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    if periodic_task_model.objects.filter(name=NAME).exists():
        return
    schedule, _ = crontab_model.objects.get_or_create(
        minute="40",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.BUSINESS_TIME_ZONE,
    )
    periodic_task_model.objects.create(
        name=NAME,
        task=TASK,
        crontab=schedule,
        enabled=True,
        description="Deletes Idempotency-Key records older than IDEMPOTENCY_RETENTION_DAYS.",
    )


def unregister(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0004_plausibility_limits"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(register, unregister)]
