"""The monthly tier evaluation as a django-celery-beat schedule staff can see and edit."""

from typing import Any

from django.conf import settings

TIER_EVALUATION_TASK = "members.tier_evaluate"
TIER_EVALUATION_SCHEDULE_NAME = "Monthly tier evaluation"


def tier_evaluation_schedule_ensure(*, apps: Any = None) -> Any:
    """Register (once) the monthly evaluation: 02:00 on the 1st in the business time zone, as of
    the end of the previous month. An existing entry is left as staff configured it.

    ``apps`` is a migration's app registry; without it the installed models are used.
    """
    if apps is None:
        from django_celery_beat.models import CrontabSchedule, PeriodicTask
    else:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    existing = PeriodicTask.objects.filter(name=TIER_EVALUATION_SCHEDULE_NAME).first()
    if existing is not None:
        return existing
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="2",
        day_of_month="1",
        month_of_year="*",
        day_of_week="*",
        timezone=settings.BUSINESS_TIME_ZONE,
    )
    return PeriodicTask.objects.create(
        name=TIER_EVALUATION_SCHEDULE_NAME,
        task=TIER_EVALUATION_TASK,
        crontab=crontab,
        kwargs="{}",
        description="Evaluates every member's tier as of the end of the previous month.",
    )
