from django.db import migrations

from loyalty.db import append_only


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0001_initial"),
    ]

    operations = [
        append_only("points_entry"),
    ]
