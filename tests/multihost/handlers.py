"""The multi-host test's handler: steps, a wait and a callback, each step body counted in PostgreSQL.

Every run of a step body inserts a row into ``multihost_body_run`` (committed before the body
does its work, so a run cut short by a SIGKILL is counted too) and marks it ended when the body
returns: an account of body runs kept apart from the engine's own replay record, which the test
compares with what each step's semantics allow.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy

TABLE = """CREATE TABLE IF NOT EXISTS multihost_body_run (
    id bigserial PRIMARY KEY, key text NOT NULL, step text NOT NULL, host text NOT NULL, pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(), ended_at timestamptz)"""

_conn: psycopg.Connection | None = None


def _db() -> psycopg.Connection:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return _conn


def _body(key: str, step: str, value: Any, seconds: float) -> Any:
    conn = _db()
    row = conn.execute(
        "INSERT INTO multihost_body_run (key, step, host, pid) VALUES (%s, %s, %s, %s) RETURNING id",
        (key, step, os.environ.get("DURABLE_HOST_ID", ""), os.getpid()),
    ).fetchone()
    assert row is not None
    time.sleep(seconds)
    conn.execute("UPDATE multihost_body_run SET ended_at = clock_timestamp() WHERE id = %s", (row[0],))
    return value


# At most once per attempt; an attempt cut short fails with StepInterruptedError and is retried.
AT_MOST_ONCE = StepConfig(
    step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=4,
            initial_delay=Duration.from_seconds(1),
            max_delay=Duration.from_seconds(1),
            jitter_strategy=JitterStrategy.NONE,
        )
    ),
)


def expected(n: int, key: str) -> dict[str, Any]:
    """What ``journey`` returns for ``{"n": n, "key": key}`` once its callback is answered ``approved-<key>``."""
    return {"key": key, "a": n * 2, "b": n * 3, "answer": f"approved-{key}", "c": n * 5}


@durable_execution
def journey(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Step a (at least once), wait 1 s, step b (at most once per retry), a callback, step c."""
    n, key, seconds = int(event["n"]), str(event["key"]), float(event.get("sleep", 0.1))
    a = context.step(lambda _: _body(key, "a", n * 2, seconds), name="a")
    context.wait(Duration.from_seconds(1), name="pause")
    b = context.step(lambda _: _body(key, "b", n * 3, seconds), name="b", config=AT_MOST_ONCE)
    answer = context.create_callback(name="approval").result()
    c_seconds = float(event.get("sleep_c", seconds))
    c = context.step(lambda _: _body(key, "c", n * 5, c_seconds), name="c")
    return {"key": key, "a": a, "b": b, "answer": answer, "c": c}
