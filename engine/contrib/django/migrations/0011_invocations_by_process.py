# The workers page counts the invocations each worker process ran since it started (issue 19):
# without this index that count reads the whole durable_invocation table every refresh (about
# 1 s at 500k invocations).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("durable_engine", "0010_workers"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX durable_invocation_process ON durable_invocation (worker, pid, started_at)",
            reverse_sql="DROP INDEX durable_invocation_process",
        ),
    ]
