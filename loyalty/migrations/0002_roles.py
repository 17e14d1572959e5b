from django.db import migrations

from loyalty.db import append_only
from loyalty.roles import ROLE_PERMISSIONS


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in ROLE_PERMISSIONS:
        Group.objects.get_or_create(name=role)


def delete_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


def create_programme_settings(apps, schema_editor):
    ProgrammeSettings = apps.get_model("loyalty", "ProgrammeSettings")
    ProgrammeSettings.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("loyalty", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_roles, delete_roles),
        migrations.RunPython(create_programme_settings, migrations.RunPython.noop),
        append_only("loyalty_auditlog"),
    ]
