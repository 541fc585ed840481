# A chained invoke's target that ends while the parent's invocation is still running leaves its
# outcome on the parent's operation row; the parent's invocation end applies it, so the history
# reads InvocationCompleted before ChainedInvoke{Succeeded,Failed,...} as AWS's does.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("durable_engine", "0011_invocations_by_process"),
    ]

    operations = [
        migrations.RunSQL(
            sql="ALTER TABLE durable_operation ADD COLUMN deferred_outcome jsonb",
            reverse_sql="ALTER TABLE durable_operation DROP COLUMN deferred_outcome",
        ),
    ]
