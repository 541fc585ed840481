"""Fixtures of the fuzz suite: a function and an execution to aim at, users, and a database fingerprint.

Rejected calls need no worker: the suite runs without the ``stack`` fixture except where a valid
call must really run (a pending callback to answer).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from django.db import connection

T = TypeVar("T")
FUZZ_FUNCTION = "fuzz-target"
# Waits for a callback: once invoked it stays put, so it adds no background writes.
FUZZ_HANDLER = "demos.approval.handler"
# More than 900 s: a RequestResponse invoke is refused at once instead of waiting for a worker.
FUZZ_CONFIG = {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 1}


@pytest.fixture(scope="session", autouse=True)
def _real_database(django_db_blocker: Any) -> Iterator[None]:
    """Pages, engine and fingerprints share the session's real database (module fixtures included)."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def fuzz_target(django_db_blocker: Any) -> dict[str, Any]:
    """A durable function and one started execution of it (queued when no worker runs)."""
    import engine

    lam = engine.client()
    with django_db_blocker.unblock():
        with contextlib.suppress(lam.exceptions.ResourceConflictException):
            lam.create_function(FunctionName=FUZZ_FUNCTION, Handler=FUZZ_HANDLER, DurableConfig=FUZZ_CONFIG)
        started = lam.invoke(
            FunctionName=FUZZ_FUNCTION, InvocationType="Event", Payload=b'{"amount": 5}', DurableExecutionName="seed"
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM durable_execution WHERE arn = %s", [started["DurableExecutionArn"]])
            (pk,) = cursor.fetchone()
    return {"function": FUZZ_FUNCTION, "arn": started["DurableExecutionArn"], "pk": pk}


# Every row a fuzzed call could reach: all functions (no background loop writes them), and every
# row of the fuzz function's executions and asynchronous invocations. Rows of other tests'
# executions are left out: a worker still finishing them must not look like a rejected call's write.
SCOPED_ROWS = {
    "durable_function": "TRUE",
    "durable_function_code": "TRUE",
    "durable_execution": "function_name LIKE 'fuzz-%%'",
    "durable_async_invocation": "function_name LIKE 'fuzz-%%'",
    # Worker processes renew their lease here every few seconds; no call of any entry point writes it.
    "durable_worker": "FALSE",
}
EXECUTION_ROWS = "execution_id IN (SELECT id FROM durable_execution WHERE function_name LIKE 'fuzz-%%')"


@functools.cache
def engine_tables() -> tuple[str, ...]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name LIKE 'durable\\_%%' ORDER BY 1"
        )
        return tuple(name for (name,) in cursor.fetchall())


def fingerprint() -> dict[str, tuple[int, str]]:
    """Row count and md5 of every engine table ``durable_*`` (the rows in scope, see SCOPED_ROWS)."""
    parts = [
        f"SELECT '{table}', count(*), md5(coalesce(string_agg(t::text, '' ORDER BY t::text), '')) "
        f"FROM {table} t WHERE {SCOPED_ROWS.get(table, EXECUTION_ROWS)}"
        for table in engine_tables()
    ]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts))
        return {table: (count, digest) for table, count, digest in cursor.fetchall()}


def changed_tables(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    return sorted(table for table in before.keys() | after.keys() if before.get(table) != after.get(table))


def wait_quiet(timeout: float = 20) -> None:
    """Wait until no process changes a row in scope (a worker may still be running a fuzz start)."""
    deadline = time.monotonic() + timeout
    last = fingerprint()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = fingerprint()
        if now == last:
            return
        last = now


# The fingerprint after the last checked call: the next call's "before", one query saved per call.
_last: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _fresh_fingerprint() -> Iterator[None]:
    _last.clear()  # fixtures may have changed rows in scope since the last test
    yield


def assert_rejection_stores_nothing(call: Callable[[], T], rejected: Callable[[T], bool], label: Any) -> T:
    """Run ``call``; when ``rejected(outcome)``, no engine row in scope may have changed.

    A difference is checked once more on a quiet database with a fresh "before", because the suite
    shares the session's worker with other tests (and runs accepted fuzz starts): a rejected call
    repeated is still rejected and still writes nothing.
    """
    before = _last.get("fingerprint") or fingerprint()
    for attempt in (1, 2):
        outcome = call()
        after = _last["fingerprint"] = fingerprint()
        changed = changed_tables(before, after)
        if not rejected(outcome) or not changed:
            return outcome
        if attempt == 1:
            wait_quiet()
            before = fingerprint()
    pytest.fail(f"a rejected call changed {changed}: {label!r} -> {outcome!r}"[:2000])
