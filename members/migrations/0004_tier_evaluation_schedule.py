from django.db import migrations


def schedule(apps, schema_editor):
    from members.schedules import tier_evaluation_schedule_ensure

    tier_evaluation_schedule_ensure(apps=apps)


def unschedule(apps, schema_editor):
    from members.schedules import TIER_EVALUATION_SCHEDULE_NAME

    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name=TIER_EVALUATION_SCHEDULE_NAME
    ).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("members", "0003_tiers"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
