# Pause and resume (PauseDurableExecution / ResumeDurableExecution). The engine's tables are
# unmanaged since 0007, so the columns are added with SQL and Django's state is told separately.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("durable_engine", "0007_unmanaged_read_only"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[
                "ALTER TABLE durable_execution ADD COLUMN pause_state varchar(16) NULL "
                "CHECK (pause_state IN ('PAUSING', 'PAUSED'))",
                "ALTER TABLE durable_execution ADD COLUMN pause jsonb NULL",
            ],
            reverse_sql=[
                "ALTER TABLE durable_execution DROP COLUMN pause",
                "ALTER TABLE durable_execution DROP COLUMN pause_state",
            ],
            state_operations=[
                migrations.AddField(
                    model_name="execution", name="pause_state", field=models.CharField(max_length=16, null=True)
                ),
                migrations.AddField(model_name="execution", name="pause", field=models.JSONField(null=True)),
            ],
        ),
    ]
