# Functions with their own code and runtime (issue 18): Lambda's Runtime and Code.ZipFile. The zip
# is kept in PostgreSQL, content-addressed by its SHA-256, so that every worker host reaches the
# same bytes through the database it already uses, and a function's code commits with its row.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("durable_engine", "0008_pause"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[
                "CREATE TABLE durable_function_code (sha256 varchar(64) PRIMARY KEY, zip bytea NOT NULL, "
                "size bigint NOT NULL, created_at timestamptz NOT NULL)",
                "ALTER TABLE durable_function ADD COLUMN runtime varchar(32) NULL",
                "ALTER TABLE durable_function ADD COLUMN code_sha256 varchar(64) NULL "
                "REFERENCES durable_function_code (sha256)",
                "ALTER TABLE durable_function ADD COLUMN code_size bigint NULL",
            ],
            reverse_sql=[
                "ALTER TABLE durable_function DROP COLUMN code_size",
                "ALTER TABLE durable_function DROP COLUMN code_sha256",
                "ALTER TABLE durable_function DROP COLUMN runtime",
                "DROP TABLE durable_function_code",
            ],
            state_operations=[
                migrations.AddField(model_name="function", name="runtime", field=models.CharField(max_length=32, null=True)),
                migrations.AddField(
                    model_name="function", name="code_sha256", field=models.CharField(max_length=64, null=True)
                ),
                migrations.AddField(model_name="function", name="code_size", field=models.BigIntegerField(null=True)),
            ],
        ),
    ]
