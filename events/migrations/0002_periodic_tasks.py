"""The events jobs on the beat schedule (business time zone): invitations every minute,
reminders hourly, lapsed seat offers every five minutes, no-shows hourly. An entry that exists,
as staff configured it, is left alone; reversing removes the entries by name."""

from django.conf import settings
from django.db import migrations

PERIODIC_TASKS = (
    # name, task, (minute, hour), description
    (
        "events: send due invitations",
        "events.invitations_send",
        ("*", "*"),
        "Invites the members each published event targets once its invite time has come.",
    ),
    (
        "events: send reminders",
        "events.reminders_send",
        ("15", "*"),
        "Reminds the accepted invitations of the events starting within 24 hours.",
    ),
    (
        "events: pass on lapsed seat offers",
        "events.offers_lapse",
        ("*/5", "*"),
        "Offers not confirmed in time lapse; their seats go to the next on the waitlist.",
    ),
    (
        "events: mark no-shows",
        "events.no_shows_mark",
        ("40", "*"),
        "Accepted members who did not check in at an event that has ended are no-shows.",
    ),
)


def register(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    periodic_task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, (minute, hour), description in PERIODIC_TASKS:
        if periodic_task_model.objects.filter(name=name).exists():
            continue
        schedule, _ = crontab_model.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
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
        ("events", "0001_events_invitations_feedback"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(register, unregister)]
