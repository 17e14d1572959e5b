"""The points jobs on the beat schedule, stored with django-celery-beat so staff can edit them
in the admin. Registering leaves rows that already exist (and staff edits) alone."""

PERIODIC_TASKS = (
    # name, task, crontab (minute, hour), description
    # Registered every five minutes by migration 0003; 0006 moves it to every 30 seconds.
    ("points: sweep the transaction inbox", "points.transactions_sweep", ("*/5", "*")),
    ("points: expire due points and warn", "points.expire_due", ("30", "0")),
    ("points: reconcile accounts", "points.reconcile", ("0", "2")),
)


def points_periodic_tasks_register(*, crontab_model, periodic_task_model, timezone: str) -> int:
    """Create the points jobs that are missing; the number created. Takes the models so a
    data migration can pass its historical ones."""
    created = 0
    for name, task, (minute, hour) in PERIODIC_TASKS:
        if periodic_task_model.objects.filter(name=name).exists():
            continue
        schedule, _ = crontab_model.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone=timezone,
        )
        periodic_task_model.objects.create(name=name, task=task, crontab=schedule, enabled=True)
        created += 1
    return created
