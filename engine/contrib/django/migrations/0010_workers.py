# Many hosts (issue 19): each worker process registers itself and renews a lease, so a host that
# vanishes without a goodbye is found by the others; and an invocation's replay record (body runs,
# log lines) is shipped to PostgreSQL in chunks while it runs, so losing a host loses at most the
# last moments of it.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("durable_engine", "0009_function_code"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[
                # One row per worker process (role 'main' for the Celery parent, 'pool' for a child
                # that runs invocations). heartbeat_at is the lease: renewed every few seconds by the
                # host's main process; stopped_at is set by a clean shutdown (or a replaced child).
                "CREATE TABLE durable_worker (id bigserial PRIMARY KEY, host_id varchar(128) NOT NULL, "
                "hostname varchar(255) NOT NULL, pid integer NOT NULL, role varchar(8) NOT NULL, "
                "started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL, "
                "stopped_at timestamptz NULL, lost_at timestamptz NULL, "
                "UNIQUE (host_id, pid, started_at))",
                "CREATE INDEX durable_worker_live ON durable_worker (host_id, heartbeat_at) WHERE stopped_at IS NULL",
                # The replay record of a running invocation, shipped while it runs: each chunk holds
                # the journal entries (JSON lines) written since the previous one.
                "CREATE TABLE durable_journal_chunk (id bigserial PRIMARY KEY, request_id varchar(64) NOT NULL, "
                "execution_id bigint NOT NULL REFERENCES durable_execution (id) ON DELETE CASCADE, "
                "invocation_seq integer NOT NULL, entries jsonb NOT NULL, shipped_at timestamptz NOT NULL)",
                "CREATE INDEX durable_journal_chunk_request ON durable_journal_chunk (request_id, id)",
                "CREATE INDEX durable_journal_chunk_execution ON durable_journal_chunk (execution_id)",
                "CREATE INDEX durable_invocation_open ON durable_invocation (worker) WHERE ended_at IS NULL",
            ],
            reverse_sql=[
                "DROP INDEX durable_invocation_open",
                "DROP TABLE durable_journal_chunk",
                "DROP TABLE durable_worker",
            ],
            state_operations=[
                migrations.CreateModel(
                    name="Worker",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("host_id", models.CharField(max_length=128)),
                        ("hostname", models.CharField(max_length=255)),
                        ("pid", models.IntegerField()),
                        ("role", models.CharField(max_length=8)),
                        ("started_at", models.DateTimeField()),
                        ("heartbeat_at", models.DateTimeField()),
                        ("stopped_at", models.DateTimeField(null=True)),
                        ("lost_at", models.DateTimeField(null=True)),
                    ],
                    options={"db_table": "durable_worker", "managed": False},
                ),
            ],
        ),
    ]
