from django.db import migrations


def register(apps, schema_editor):
    from points.schedule import points_periodic_tasks_register

    points_periodic_tasks_register(
        crontab_model=apps.get_model("django_celery_beat", "CrontabSchedule"),
        periodic_task_model=apps.get_model("django_celery_beat", "PeriodicTask"),
        timezone="Asia/Shanghai",
    )


def unregister(apps, schema_editor):
    from points.schedule import PERIODIC_TASKS

    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    periodic_task.objects.filter(name__in=[name for name, *_ in PERIODIC_TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0002_entry_append_only"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(register, unregister)]
