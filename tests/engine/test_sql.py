"""The engine's SQL lives in named queries (engine/sql/*.sql): each parses against the real schema,
and no other engine module spells SQL in a string."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import engine
from engine import db, store
from engine.sql import Q, parse

ENGINE = Path(engine.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")

# Where NULL (of unknown type) leaves an operator ambiguous, the query is checked with values of
# the types its caller passes.
_NOW = datetime(2026, 1, 1, tzinfo=UTC)
TYPED_SAMPLES = {
    "claim_invocation": {"now": _NOW, "lease_grace": timedelta(seconds=1)},
    "presumed_lost": {"now": _NOW, "after": timedelta(seconds=1), "backstop": timedelta(seconds=1)},
    "due_timer_executions_with_grace": {"now": _NOW, "grace": timedelta(seconds=1)},
    "next_timer_due_with_grace": {"now": _NOW, "grace": timedelta(seconds=1)},
}
# A template has a part composed with psycopg.sql; it is checked with one sample composition.
TEMPLATES = {
    "update_execution_columns": {
        "assignments": sql.SQL("{} = {}").format(sql.Identifier("status"), sql.Placeholder("status"))
    },
    "purge_rows_of": {"table": sql.Identifier("durable_event")},
}


def composed(name: str, text: str) -> sql.Composable:
    """The named query as it is sent: a template with its sample composition."""
    return sql.SQL(text).format(**TEMPLATES[name]) if name in TEMPLATES else sql.SQL(text)


def test_every_named_query_parses_and_plans_against_the_schema() -> None:
    assert len(Q) > 50
    failures = []
    for name, text in Q:
        if text.startswith("LISTEN "):  # a utility statement: neither EXPLAIN nor PREPARE takes it
            assert re.fullmatch(r"LISTEN \w+", text), name
            continue
        statement = composed(name, text)
        params = dict.fromkeys(PLACEHOLDER.findall(text)) | TYPED_SAMPLES.get(name, {})
        if name in TEMPLATES:
            params["status"] = None
        try:
            # EXPLAIN plans without running: data-modifying statements write nothing.
            with db.transaction() as conn:
                conn.execute(sql.SQL("EXPLAIN {}").format(statement), params)
        except psycopg.Error as exc:
            failures.append(f"{Q.files[name]}: {name}: {exc}")
    assert not failures, "\n".join(failures)


def test_a_query_with_a_typo_fails_the_parse_check() -> None:
    """The check above can fail: a misspelt column is refused by the server."""
    broken = Q.execution_by_arn.replace("pending_finish", "pending_finnish")
    with pytest.raises(psycopg.errors.UndefinedColumn), db.transaction() as conn:
        conn.execute(sql.SQL("EXPLAIN {}").format(sql.SQL(broken)), {"arn": None})


def test_queries_use_named_placeholders_only() -> None:
    positional = [name for name, text in Q if "%s" in text]
    assert not positional, f"use %(name)s placeholders: {positional}"


def test_the_loader_refuses_duplicate_names_and_stray_sql() -> None:
    assert parse("-- name: a\n-- why\nSELECT 1;\n\n-- name: b\nSELECT 2\n") == {"a": "SELECT 1", "b": "SELECT 2"}
    with pytest.raises(ValueError, match="defined twice"):
        parse("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
    with pytest.raises(ValueError, match="before the first"):
        parse("SELECT 0\n-- name: a\nSELECT 1\n")
    with pytest.raises(ValueError, match="empty"):
        parse("-- name: a\n-- only a comment\n")
    with pytest.raises(AttributeError, match="no_such_query"):
        _ = Q.no_such_query


def test_own_timer_kinds_are_spelled_alike_in_every_statement() -> None:
    spelled = {
        match
        for path in ENGINE.joinpath("sql").glob("*.sql")
        for match in re.findall(r"ARRAY\[('wait'[^\]]*)\]", path.read_text())
    }
    assert spelled, "no statement spells the own timer kinds"
    for kinds in spelled:
        assert tuple(k.strip().strip("'") for k in kinds.split(",")) == store.OWN_TIMER_KINDS


# --- no SQL outside engine/sql/ -----------------------------------------------------------------

SQL_IN_TEXT = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\bWITH\s+\w+\s+AS\s*\(|^\s*(?:UN)?LISTEN\s+\w+\s*$|\bpg_notify\s*\(|\bpg_advisory",
    re.MULTILINE,
)


def sql_literals(source: str) -> list[str]:
    """The string literals of a module that look like SQL; docstrings are prose and left out."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and SQL_IN_TEXT.search(node.value)
    ]


def engine_modules() -> list[Path]:
    loader = ENGINE / "sql" / "__init__.py"
    return [path for path in sorted(ENGINE.rglob("*.py")) if path != loader]


def test_no_engine_module_spells_sql_in_a_string() -> None:
    offenders = {
        str(path.relative_to(ENGINE)): found for path in engine_modules() if (found := sql_literals(path.read_text()))
    }
    assert not offenders, f"move these statements to engine/sql/*.sql: {offenders}"


def test_the_sql_check_catches_a_planted_statement() -> None:
    api = (ENGINE / "api.py").read_text()
    assert not sql_literals(api)
    planted = api + '\n\nROWS = "SELECT id FROM durable_execution WHERE arn = %s"\n'
    assert sql_literals(planted) == ["SELECT id FROM durable_execution WHERE arn = %s"]
    assert sql_literals('def f(conn):\n    conn.execute(f"UPDATE durable_timer SET due_at = {x}")\n')
    assert not sql_literals('def f():\n    """Select a row from the table; a NOTIFY wakes it."""\n')
    assert not sql_literals('log.debug("closing the LISTEN connection failed")\n')
    assert sql_literals('listener.execute("LISTEN durable_timers")\n')


def test_every_named_query_is_used() -> None:
    """A query no engine module names is dead text that the next reader takes for a live path."""
    source = "\n".join(path.read_text() for path in engine_modules())
    unused = sorted(name for name, _ in Q if f"Q.{name}" not in source)
    assert not unused, f"named queries no engine module uses: {unused}"
