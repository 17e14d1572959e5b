"""The insights jobs on the beat schedule (business time zone): the KPI snapshots of the month
just closed, with every member's value and churn risk, at 02:30 on the 1st; the
recommendations nightly at 03:00 (after the segment refresh at 01:30). An entry that exists,
as staff configured it, is left alone; reversing removes the entries by name."""

from django.conf import settings
from django.db import migrations

PERIODIC_TASKS = (
    # name, task, (minute, hour, day of month), description
    (
        "insights: monthly KPI snapshots and customer values",
        "insights.kpi_snapshots_refresh",
        ("30", "2", "1"),
        "Stores the KPIs of the month just closed and refreshes every member's value and churn "
        "risk.",
    ),
    (
        "insights: nightly recommendations",
        "insights.recommendations_refresh",
        ("0", "3", "*"),
        "Ranks the rewards and events recommended to every active member.",
    ),
)


def register(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    periodic_task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, (minute, hour, day), description in PERIODIC_TASKS:
        if periodic_task_model.objects.filter(name=name).exists():
            continue
        schedule, _ = crontab_model.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month=day,
            month_of_year="*",
            timezone=settings.BUSINESS_TIME_ZONE,
        )
        periodic_task_model.objects.create(
            name=name, task=task, crontab=schedule, enabled=True, description=description
        )


def unregister(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[name for name, *_ in PERIODIC_TASKS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0002_recommendations_per_member"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(register, unregister)]
