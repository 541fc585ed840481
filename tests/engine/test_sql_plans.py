"""The generic plans of the engine's statements, as a fresh install's tables get them.

psycopg prepares each named query once it has run a few times, and the server then keeps one
generic plan per connection, planned without the parameters' values on the statistics of the
moment, until the table's next ANALYZE. On tables as small as a fresh install's, a statement that
names one execution by its id and also tests an indexed status used to tie between the primary key
and the status index, and took the status index: until autovacuum analyzed the table, each
checkpoint walked every RUNNING execution (engine/sql/__init__.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from engine import db
from engine.sql import Q
from tests.engine.test_sql import PLACEHOLDER, TYPED_SAMPLES, composed

# Statements that select by status on purpose: the re-dispatcher's scan of executions owing an
# invocation, and the dead-letter queue.
SCANS_BY_STATUS = {"presumed_lost", "dead_letters"}
SQL_TYPES = {datetime: "timestamptz", timedelta: "interval"}


def positional(text: str, samples: dict[str, Any]) -> tuple[str, list[str]]:
    """The statement with $n parameters, as psycopg sends it, and each parameter's declared type
    ('unknown' lets the server infer it, as it does for psycopg's untyped NULLs)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = PLACEHOLDER.sub(number, text)
    return text, [SQL_TYPES.get(type(samples.get(name)), "unknown") for name in names]


def scanned_indexes(plan: dict[str, Any]) -> Iterator[str]:
    if "Index Name" in plan:
        yield plan["Index Name"]
    for child in plan.get("Plans", []):
        yield from scanned_indexes(child)


@pytest.fixture
def fresh_tables() -> Iterator[psycopg.Connection[Any]]:
    """A connection whose search path finds empty copies (with every index) of the durable_*
    tables, as on a fresh install; all of it is rolled back when the test ends."""
    with psycopg.connect(db.dsn(), prepare_threshold=None) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'durable%%'"
        ).fetchall()
        conn.execute("CREATE SCHEMA plan_probe")
        for (name,) in tables:
            conn.execute(
                sql.SQL("CREATE TABLE plan_probe.{0} (LIKE public.{0} INCLUDING ALL)").format(sql.Identifier(name))
            )
        conn.execute("SET LOCAL search_path = plan_probe, public")
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        try:
            yield conn
        finally:
            conn.rollback()


def generic_plan(conn: psycopg.Connection[Any], name: str, text: str) -> dict[str, Any]:
    """The plan a prepared statement of ``text`` keeps: planned once, without parameter values."""
    numbered, types = positional(composed(name, text).as_string(conn), TYPED_SAMPLES.get(name, {}))
    conn.execute(f"PREPARE probe ({', '.join(types)}) AS {numbered}" if types else f"PREPARE probe AS {numbered}")
    try:
        arguments = f"({', '.join(['NULL'] * len(types))})" if types else ""
        row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE probe{arguments}").fetchone()
    finally:
        conn.execute("DEALLOCATE probe")
    assert row is not None
    plans: list[dict[str, Any]] = row[0] if isinstance(row[0], list) else json.loads(row[0])
    plan: dict[str, Any] = plans[0]["Plan"]
    return plan


def status_indexes(conn: psycopg.Connection[Any]) -> set[str]:
    """The copies' indexes that lead with a status column: a statement that names its row by a
    key must not walk one of these, whatever the statistics say."""
    rows = conn.execute(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]"
        " WHERE n.nspname = 'plan_probe' AND a.attname = 'status'"
    ).fetchall()
    return {name for (name,) in rows}


def status_index_walks(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    walks = {}
    indexes = status_indexes(conn)
    assert len(indexes) >= 2, indexes  # the executions' and the async invocations'
    for name, text in Q:
        if text.startswith("LISTEN ") or name in SCANS_BY_STATUS:
            continue
        used = set(scanned_indexes(generic_plan(conn, name, text))) & indexes
        if used:
            walks[name] = used
    return walks


def test_no_statement_keyed_by_a_row_walks_a_status_index(fresh_tables: psycopg.Connection[Any]) -> None:
    walks = status_index_walks(fresh_tables)
    assert not walks, f"these statements' generic plans walk a status index: {walks}"


def test_the_plan_check_sees_a_status_index_walk(fresh_tables: psycopg.Connection[Any]) -> None:
    """The check above can fail: the guarded checkpoint as it was written before, with a plain
    status test, takes the status index on the fresh tables."""
    before = Q.write_transition_guarded.replace("(status = 'RUNNING') IS TRUE", "status = 'RUNNING'")
    assert before != Q.write_transition_guarded
    used = set(scanned_indexes(generic_plan(fresh_tables, "write_transition_guarded", before)))
    assert used & status_indexes(fresh_tables)
