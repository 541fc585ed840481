"""The project's Celery app plus what the bench's baselines need: a result backend and no-op tasks.

The worker the bench starts runs this module (``celery -A bench.celery_app``), so engine tasks and
baseline tasks share one app, one broker and one worker, as benchmarks.md requires.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg

from durable_site.celery import app

# Only the baseline round trip (``noop.delay().get()``) needs results; engine tasks keep
# ignore_result=True. Redis stores results without polling, so ``.get()`` adds no interval.
app.conf.result_backend = os.environ.get("DURABLE_BENCH_RESULT_BACKEND") or app.conf.broker_url
app.conf.result_expires = 600


@app.task(name="bench.noop", ignore_result=False)
def noop() -> None:
    """One Celery round trip's worth of work: nothing."""


@app.task(name="bench.noop_fire", ignore_result=True)
def noop_fire() -> None:
    """The enqueue half of the B3 baseline: a message the worker drains."""


_ideal = threading.local()


def _ideal_connection() -> psycopg.Connection:
    """One autocommit connection per worker process to the bench database, as the ideal engine has."""
    conn = getattr(_ideal, "conn", None)
    if conn is None or conn.closed:
        conn = _ideal.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return conn


@app.task(name="bench.ideal_hop", ignore_result=True)
def ideal_hop(run_id: str, ops: dict[str, Any], steps: int) -> None:
    """B2b's ideal engine through Celery: one invocation (``bench.inprocess.ideal_invocation``),
    then the next one is a message, as the engine's is; the last NOTIFYs ``durable_done``."""
    from bench.inprocess import ideal_invocation

    conn = _ideal_connection()
    if ideal_invocation(conn, ops, steps):
        conn.execute("SELECT pg_notify('durable_done', %s)", (run_id,))
    else:
        ideal_hop.delay(run_id, ops, steps)
