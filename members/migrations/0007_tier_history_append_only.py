from django.db import migrations

from loyalty.db import append_only


class Migration(migrations.Migration):
    dependencies = [("members", "0006_snapshot_unique_on_sqlite")]

    operations = [append_only("members_tierhistory")]
