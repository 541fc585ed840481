"""B2b's ideal engine (``bench.inprocess.ideal_invocation``) and its rows in bench/report.py.

The ideal engine is a baseline, so it must do the work it stands for: every invocation of B2b's
handler replays what came before, runs one step and starts one wait, and each checkpoint call and
each ending is one durable write. Run here in-process on the test server; the bench runs the same
function as a Celery task, one message per invocation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import psycopg
import pytest

from bench import baselines, inprocess, report

STEPS = 4


@pytest.fixture
def conn() -> Iterator[psycopg.Connection]:
    dsn = os.environ["DATABASE_URL"]
    baselines.ensure_table(dsn)
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection
        connection.execute(f"DROP TABLE {baselines.BASELINE_TABLE}")


def _writes(conn: psycopg.Connection) -> int:
    row = conn.execute(f"SELECT count(*) FROM {baselines.BASELINE_TABLE}").fetchone()
    assert row is not None
    return int(row[0])


def test_each_invocation_replays_runs_one_step_and_writes_once_per_checkpoint_and_ending(
    conn: psycopg.Connection,
) -> None:
    ops: dict = {}
    writes_per_invocation = []
    for invocation in range(1, STEPS + 2):
        ops = json.loads(json.dumps(ops))  # the state travels in a Celery message: JSON only
        before = _writes(conn)
        done = inprocess.ideal_invocation(conn, ops, STEPS)
        writes_per_invocation.append(_writes(conn) - before)
        steps = [op for op in ops.values() if op["Type"] == "STEP"]
        waits = [op for op in ops.values() if op["Type"] == "WAIT"]
        assert len(steps) == min(invocation, STEPS) and all(op["Status"] == "SUCCEEDED" for op in steps)
        assert len(waits) == min(invocation, STEPS) and all(op["Status"] == "SUCCEEDED" for op in waits)
        assert done == (invocation == STEPS + 1)
    # A step's SUCCEED and a wait's START are two checkpoint calls; the last invocation only replays.
    assert writes_per_invocation == [3] * STEPS + [1]


def test_the_ideal_engine_rows_are_shown_beside_b2b_not_judged() -> None:
    def summary(ratio: float) -> dict:
        spread = {"median": ratio, "min": ratio, "max": ratio, "rounds": 5}
        return {"ratio_p50": ratio, "ratio_blocks": spread}

    b2b = summary(3.2) | {"ideal_engine": summary(2.0) | {"engine_ratio_p50": 1.6}}
    rows = {row.key: row for row in report.rows_for({"B2b": b2b})}
    assert rows["B2b_suspending_10_steps_p50"].verdict() == report.FLOOR_FAILED
    ideal, own = rows["B2b_ideal_engine_p50"], rows["B2b_own_p50"]
    assert ideal.kind == own.kind == "reference"
    assert (ideal.value, ideal.floor, ideal.target) == (2.0, 2.5, 1.5)
    assert ideal.verdict() == "reference (would be: below target)"
    assert (own.value, own.target) == (1.6, report.B1_OWN_SYNC_LEVELS[1])
    assert "B2b_ideal_engine_p50" not in {row.key for row in report.rows_for({"B2b": summary(3.2)})}
