"""The monthly tier evaluation as a django-celery-beat schedule staff can see and edit."""

from typing import Any

from django.conf import settings

TIER_EVALUATION_TASK = "members.tier_evaluate"
TIER_EVALUATION_SCHEDULE_NAME = "Monthly tier evaluation"
TIER_OVERRIDES_EXPIRE_TASK = "members.tier_overrides_expire"
TIER_OVERRIDES_EXPIRE_SCHEDULE_NAME = "Daily tier override expiry"
CLOSURES_FINALISE_TASK = "members.closures_finalise"
CLOSURES_FINALISE_SCHEDULE_NAME = "Daily closure finalisation"
SEGMENTS_REFRESH_TASK = "members.segments_refresh"
SEGMENTS_REFRESH_SCHEDULE_NAME = "Nightly segment refresh"


def tier_evaluation_schedule_ensure(*, apps: Any = None) -> Any:
    """Register (once) the monthly evaluation (02:00 on the 1st in the business time zone, as of
    the end of the previous month), the daily override expiry (00:10), the daily closure
    finalisation (00:20) and the nightly segment refresh (01:30); returns the monthly entry.
    An existing entry is left as staff configured it.

    ``apps`` is a migration's app registry; without it the installed models are used.
    """
    if apps is None:
        from django_celery_beat.models import CrontabSchedule, PeriodicTask
    else:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    entries = [
        (
            SEGMENTS_REFRESH_SCHEDULE_NAME,
            SEGMENTS_REFRESH_TASK,
            {"minute": "30", "hour": "1", "day_of_month": "*"},
            "Refreshes every segment's members from its rule and counts them.",
        ),
        (
            CLOSURES_FINALISE_SCHEDULE_NAME,
            CLOSURES_FINALISE_TASK,
            {"minute": "20", "hour": "0", "day_of_month": "*"},
            "Makes final the closures whose notice period is over (their points are forfeited).",
        ),
        (
            TIER_OVERRIDES_EXPIRE_SCHEDULE_NAME,
            TIER_OVERRIDES_EXPIRE_TASK,
            {"minute": "10", "hour": "0", "day_of_month": "*"},
            "Moves members whose tier override expired back to their qualified tier.",
        ),
        (
            TIER_EVALUATION_SCHEDULE_NAME,
            TIER_EVALUATION_TASK,
            {"minute": "0", "hour": "2", "day_of_month": "1"},
            "Evaluates every member's tier as of the end of the previous month.",
        ),
    ]
    task = None
    for name, task_name, when, description in entries:
        task = PeriodicTask.objects.filter(name=name).first()
        if task is not None:
            continue
        crontab, _ = CrontabSchedule.objects.get_or_create(
            month_of_year="*", day_of_week="*", timezone=settings.BUSINESS_TIME_ZONE, **when
        )
        task = PeriodicTask.objects.create(
            name=name, task=task_name, crontab=crontab, kwargs="{}", description=description
        )
    return task
