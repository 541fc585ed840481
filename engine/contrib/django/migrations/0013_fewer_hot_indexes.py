# Every step writes a durable_operation row and two durable_event rows, and each index on those
# tables is one more entry to write (and, for the operation row, to write again whenever an
# indexed column changes). These indexes served nothing the others did not:
# - (execution_id) on both tables: the unique (execution_id, op_id) and (execution_id, event_id)
#   indexes answer every query by execution;
# - callback_id's LIKE index: no query matches callback ids by pattern;
# - (type, status): only the callback inbox asks for it, for open callbacks; a partial index
#   holds those alone, and a step's row never enters it;
# - callback_id's unique index held a NULL entry for every row that is not a callback: unique
#   among callbacks only, it holds only their rows.
# And every checkpoint updates its execution's row: with half of each page left free, the new
# version nearly always fits beside the old one (a HOT update), so no index of the table's ten
# gets a new entry.

from django.db import migrations

FORWARD = """
DROP INDEX IF EXISTS durable_operation_execution_id_44ab5d50;
DROP INDEX IF EXISTS durable_operation_callback_id_e285581a_like;
DROP INDEX IF EXISTS durable_op_type_status;
DROP INDEX IF EXISTS durable_event_execution_id_d285e7c3;
CREATE INDEX durable_op_open_callbacks ON durable_operation (execution_id)
    WHERE type = 'CALLBACK' AND status = 'STARTED';
ALTER TABLE durable_operation DROP CONSTRAINT durable_operation_callback_id_key;
CREATE UNIQUE INDEX durable_operation_callback_id ON durable_operation (callback_id)
    WHERE callback_id IS NOT NULL;
ALTER TABLE durable_execution SET (fillfactor = 50);
"""

BACKWARD = """
ALTER TABLE durable_execution RESET (fillfactor);
DROP INDEX durable_operation_callback_id;
ALTER TABLE durable_operation ADD CONSTRAINT durable_operation_callback_id_key UNIQUE (callback_id);
DROP INDEX durable_op_open_callbacks;
CREATE INDEX durable_event_execution_id_d285e7c3 ON durable_event (execution_id);
CREATE INDEX durable_op_type_status ON durable_operation (type, status);
CREATE INDEX durable_operation_callback_id_e285581a_like ON durable_operation (callback_id varchar_pattern_ops);
CREATE INDEX durable_operation_execution_id_44ab5d50 ON durable_operation (execution_id);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("durable_engine", "0012_deferred_outcome"),
    ]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD)]
