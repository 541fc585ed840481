"""Raw-psycopg baselines: the least any PostgreSQL-backed design pays for the same work.

Imports only psycopg and the standard library so the B7 baseline processes start fast (spawn).
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg

PAYLOAD_JSON = json.dumps(
    {
        "order": 123456,
        "customer": "c-0001",
        "items": [{"sku": "sku-42", "qty": 2}, {"sku": "sku-7", "qty": 1}],
        "total": 99.5,
        "ok": True,
    }
)
BASELINE_TABLE = "bench_baseline"
INSERT_SQL = f"INSERT INTO {BASELINE_TABLE} (doc) VALUES (%s)"


def ensure_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {BASELINE_TABLE} (id bigserial PRIMARY KEY, doc jsonb NOT NULL)")
        conn.execute(f"TRUNCATE {BASELINE_TABLE}")


def insert_commit_loop(dsn: str, count: int, *, synchronous_commit: bool = True) -> float:
    """Seconds for ``count`` single-row INSERT+COMMITs on one connection (B1 baseline)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SET synchronous_commit = {'on' if synchronous_commit else 'off'}")
        start = time.perf_counter()
        for _ in range(count):
            conn.execute(INSERT_SQL, (PAYLOAD_JSON,))
        return time.perf_counter() - start


def insert_for(dsn: str, start_at: float, seconds: float, results: Any) -> None:
    """Insert+commit in a loop from ``start_at`` (wall clock) for ``seconds``; put the row count.

    Runs in a spawned process (B7): two of them stand for the worker pool's two processes.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        time.sleep(max(0.0, start_at - time.time()))
        end, rows = time.perf_counter() + seconds, 0
        while time.perf_counter() < end:
            conn.execute(INSERT_SQL, (PAYLOAD_JSON,))
            rows += 1
    results.put(rows)


def select_and_load(conn: psycopg.Connection, execution_id: int) -> float:
    """Seconds to SELECT an execution's operation documents and ``json.loads`` each (B4 floor)."""
    start = time.perf_counter()
    rows = conn.execute(
        "SELECT doc::text FROM durable_operation WHERE execution_id = %s ORDER BY ordinal", (execution_id,)
    ).fetchall()
    docs = [json.loads(row[0]) for row in rows]
    elapsed = time.perf_counter() - start
    assert docs
    return elapsed


def select_summary_and_dump(conn: psycopg.Connection, execution_id: int) -> tuple[float, int]:
    """Seconds to SELECT the operations' summary columns and ``json.dumps`` them (B5 floor)."""
    start = time.perf_counter()
    rows = conn.execute(
        """SELECT op_id, parent_id, name, type, sub_type, status, attempt, started_at, ended_at
           FROM durable_operation WHERE execution_id = %s ORDER BY ordinal""",
        (execution_id,),
    ).fetchall()
    body = json.dumps([list(row) for row in rows], default=str)
    return time.perf_counter() - start, len(body)
