"""What every benchmark shares: the bench database, the engine wired to it, functions, results."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import engine
from bench.harness import BenchDatabase, QueueDispatcher, StatementCounter
from engine import db as engine_db
from engine import invoker, registry, speedups
from engine.duties.start import StartRequest, start_execution

MAX_EXECUTION_TIMEOUT = 31_622_400


@dataclass
class BenchContext:
    """Shared state of one bench run; benchmarks add their raw figures to ``results``."""

    database: BenchDatabase
    quick: bool
    out: TextIO
    counter: StatementCounter
    dispatcher: QueueDispatcher = field(default_factory=QueueDispatcher)
    results: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    close_django: Callable[[], None] = lambda: None
    only: frozenset[str] = frozenset()  # run only these keys (e.g. "B8"); empty = all

    @property
    def dsn(self) -> str:
        return self.database.dsn

    def log(self, message: str) -> None:
        self.out.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
        self.out.flush()

    def close_pools(self) -> None:
        """Close every connection this process holds to the bench database."""
        engine_db.close()
        self.close_django()

    def in_process(self) -> None:
        """Route invocations to this process's queue (B1, B4, B4b): no Celery, no worker."""
        engine.configure(dispatcher=self.dispatcher)
        speedups.install()  # this process runs the invocations, as a worker does
        self.dispatcher.drain()

    def function(self, name: str, handler: str, *, timeout: int = 900, execution_timeout: int = 3600) -> dict[str, Any]:
        registry.create_function(
            name,
            {
                "Handler": handler,
                "Timeout": timeout,
                "DurableConfig": {"ExecutionTimeout": execution_timeout, "RetentionPeriodInDays": 1},
            },
            replace=True,
        )
        return registry.get_function_row(name)

    def start(
        self, fn: dict[str, Any], event: Any, *, name: str | None = None, time_scale: float = 1.0
    ) -> dict[str, Any]:
        request = StartRequest(fn, name, json.dumps(event), "Event", time_scale)
        row, _ = start_execution(request)
        return row

    def run_inline(self, execution_id: int) -> None:
        """Run the invocations an in-process execution is owed until none is queued."""
        self.dispatcher.drain()
        invoker.run_invocation(execution_id)
        for owed in self.dispatcher.drain():
            invoker.run_invocation(owed)

    def execution(self, execution_id: int) -> dict[str, Any]:
        with engine_db.transaction() as conn:
            row = conn.execute(
                "SELECT status, result, counters FROM durable_execution WHERE id = %s", (execution_id,)
            ).fetchone()
        assert row is not None
        return dict(row)
