from django.db import migrations

from loyalty.db import append_only


class Migration(migrations.Migration):
    dependencies = [("members", "0005_evaluation_write_indexes")]

    operations = [append_only("members_tierhistory")]
