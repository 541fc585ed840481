"""engine/rows.py: the Status enums are the only place a status set is spelled, they travel as
plain text, and the typed execution row has exactly the columns its queries select."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import typing
from enum import StrEnum
from pathlib import Path

import orjson

from engine import db, rows
from engine.rows import (
    AttemptOutcome,
    BodyRunOutcome,
    Execution,
    ExecutionStatus,
    HandlerStatus,
    InvocationOutcome,
    OperationStatus,
)
from engine.sql import Q

ROOT = Path(__file__).resolve().parents[2]
KINDS: tuple[type[StrEnum], ...] = (
    ExecutionStatus,
    OperationStatus,
    InvocationOutcome,
    HandlerStatus,
    BodyRunOutcome,
    AttemptOutcome,
)
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def status_sets_spelled_outside_rows(source: str) -> list[tuple[int, list[str]]]:
    """Literal sets, tuples and lists of two or more strings that are all statuses of one kind."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Set | ast.Tuple | ast.List) or len(node.elts) < 2:
            continue
        texts = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if len(texts) == len(node.elts) and any(set(texts) <= {s.value for s in kind} for kind in KINDS):
            found.append((node.lineno, texts))
    return found


def test_no_status_set_is_declared_outside_rows() -> None:
    spelled = {}
    for folder in ("engine", "executions", "lab"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts or path == ROOT / "engine" / "rows.py":
                continue
            for line, texts in status_sets_spelled_outside_rows(path.read_text()):
                spelled[f"{path.relative_to(ROOT)}:{line}"] = texts
    assert not spelled, f"status sets spelled outside engine/rows.py (import them from there): {spelled}"


def test_the_scan_finds_a_planted_status_set() -> None:
    planted = 'DONE = {"SUCCEEDED", "FAILED"}\nOK = ("succeeded", "suspended")\nLAB = {"RUNNING", "WAITING"}\n'
    assert status_sets_spelled_outside_rows(planted) == [(1, ["SUCCEEDED", "FAILED"]), (2, ["succeeded", "suspended"])]


def test_statuses_are_the_plain_text_of_rows_json_and_sql() -> None:
    assert ExecutionStatus.FAILED == "FAILED" and "FAILED" in rows.EXECUTION_ENDED
    assert "RUNNING" not in rows.EXECUTION_ENDED and "READY" in rows.OPERATION_OPEN
    assert json.dumps([ExecutionStatus.PAUSED]) == '["PAUSED"]' == orjson.dumps([ExecutionStatus.PAUSED]).decode()
    assert db._json_dumps({"Status": OperationStatus.CANCELLED}) == b'{"Status":"CANCELLED"}'
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT %(s)s::text AS s, %(s)s = 'killed' AS same", {"s": InvocationOutcome.KILLED}
        ).fetchone()
    assert row == {"s": "killed", "same": True}
    assert type(row["s"]) is str


def test_the_operation_statuses_are_open_or_ended() -> None:
    assert set(OperationStatus) == rows.OPERATION_OPEN | rows.OPERATION_ENDED
    assert not rows.OPERATION_OPEN & rows.OPERATION_ENDED


def test_the_execution_row_has_exactly_the_columns_its_queries_select() -> None:
    fields = [field.name for field in dataclasses.fields(Execution)]
    for name in ("execution_by_arn", "list_function_executions_newest_first", "list_function_executions_oldest_first"):
        text = getattr(Q, name)
        with db.transaction() as conn, conn.cursor() as cursor:
            cursor.execute(text, dict.fromkeys(PLACEHOLDER.findall(text)))  # NULLs: no row, but the columns
            assert cursor.description is not None
            assert [column.name for column in cursor.description] == fields, name


def test_the_duties_working_row_has_the_same_columns_as_the_read_only_one() -> None:
    # rows.execution_row casts to ExecutionRow from Execution's fields: the two must not drift.
    typed = typing.get_type_hints(rows.ExecutionRow)
    assert list(typed) == [field.name for field in dataclasses.fields(Execution)]
    assert typed == typing.get_type_hints(Execution)


def test_an_execution_row_is_read_only_and_reports_its_pause() -> None:
    values = {field.name: None for field in dataclasses.fields(Execution)}
    running = Execution(**{**values, "status": "RUNNING", "pause_state": "PAUSED"})
    assert running.reported_status == "PAUSED"
    assert Execution(**{**values, "status": "FAILED"}).reported_status == "FAILED"
    try:
        running.status = "FAILED"  # type: ignore[misc]  # the point: a frozen row refuses it
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("an Execution row could be changed")
