"""Two executions side by side: facts, counters, and their operations aligned row by row.

Operations are aligned by name and occurrence (the second "charge" with the second "charge"),
which works for two runs of one function and for two different functions that share step names.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine import timeline
from engine.contrib.django.models import Operation
from executions.selectors import sdk_decoded
from lab.charts import row_key

COUNTERS = (
    ("invocations", "Invocations"),
    ("attempts", "Attempts"),
    ("failed_attempts", "Failed attempts"),
    ("replays", "Replays"),
    ("body_runs", "Body runs"),
    ("checkpoints", "Checkpoints"),
    ("effects", "Side effects"),
    ("duplicate_effects", "Duplicate side effects"),
    ("wall_seconds", "Wall time (s)"),
    ("billed_seconds", "Billed time (s)"),
    ("suspended_seconds", "Suspended time (s)"),
)


@dataclass(frozen=True)
class Pair:
    label: str
    a: Any
    b: Any

    @property
    def differs(self) -> bool:
        return self.a != self.b

    @property
    def delta(self) -> float | None:
        if isinstance(self.a, int | float) and isinstance(self.b, int | float) and not isinstance(self.a, bool):
            return round(self.b - self.a, 3)
        return None


@dataclass(frozen=True)
class OpSide:
    """One side of an aligned operation row."""

    status: str
    type: str
    attempts: list[str]
    body_runs: int
    replays: int
    offset: float | None
    duration: float | None
    output: str

    def facts(self) -> tuple[Any, ...]:
        return (self.status, self.attempts, self.body_runs, self.output)


@dataclass
class OpRow:
    key: str
    occurrence: int
    a: OpSide | None = None
    b: OpSide | None = None

    @property
    def differs(self) -> bool:
        if self.a is None or self.b is None:
            return True
        return self.a.facts() != self.b.facts()

    @property
    def changed(self) -> set[str]:
        if self.a is None or self.b is None:
            return {"presence"}
        names = ("status", "attempts", "body_runs", "output")
        return {n for n, x, y in zip(names, self.a.facts(), self.b.facts(), strict=True) if x != y}


@dataclass
class ExecutionDiff:
    a: dict[str, Any]
    b: dict[str, Any]
    facts: list[Pair] = field(default_factory=list)
    counters: list[Pair] = field(default_factory=list)
    operations: list[OpRow] = field(default_factory=list)

    @property
    def differing_operations(self) -> int:
        return sum(1 for row in self.operations if row.differs)


def execution_diff(arn_a: str, arn_b: str) -> ExecutionDiff:
    """Compare two executions (raises ResourceNotFoundException for an unknown ARN)."""
    a, b = timeline.execution_timeline(arn_a), timeline.execution_timeline(arn_b)
    diff = ExecutionDiff(a, b)
    diff.facts = _facts(a["execution"], b["execution"])
    diff.counters = [Pair(label, a["counters"].get(key), b["counters"].get(key)) for key, label in COUNTERS]
    diff.operations = _aligned(a, _outputs(arn_a), b, _outputs(arn_b))
    return diff


def _facts(a: dict[str, Any], b: dict[str, Any]) -> list[Pair]:
    return [
        Pair("Function", a["function_name"], b["function_name"]),
        Pair("Status", a["status"], b["status"]),
        Pair("Time scale", a["time_scale"], b["time_scale"]),
        Pair("Input", _pretty(a["input"]), _pretty(b["input"])),
        Pair("Result", _pretty(a["result"]), _pretty(b["result"])),
        Pair("Error", _pretty(a["error"]), _pretty(b["error"])),
    ]


def _pretty(value: Any) -> str:
    """One line of sorted JSON: two runs' values compare at a glance, and long ones wrap."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def _operation_value(payload: Any) -> str:
    """An operation's checkpointed payload, decoded from the SDK's typed envelope when it is one
    (as the operation drawer shows it), on one line."""
    decoded = sdk_decoded(payload, op_id="", arn="")
    return _pretty(decoded if decoded is not None else payload)


def _outputs(arn: str) -> dict[str, str]:
    """Each operation's recorded result or error, from its stored document."""
    rows = Operation.objects.filter(execution__arn=arn).values_list("op_id", "doc")
    outputs = {}
    for op_id, doc in rows:
        for key, details in (doc or {}).items():
            if key.endswith("Details") and isinstance(details, dict):
                if details.get("Result") is not None:
                    outputs[op_id] = _operation_value(details["Result"])
                elif details.get("Error"):
                    error = details["Error"]
                    outputs[op_id] = f"{error.get('ErrorType', '')}: {error.get('ErrorMessage', '')}"
    return outputs


def _sides(data: dict[str, Any], outputs: dict[str, str]) -> dict[tuple[str, int], OpSide]:
    start: datetime = data["execution"]["started_at"]
    seen: Counter[str] = Counter()
    sides = {}
    for op in data["operations"]:
        key = row_key(op)
        seen[key] += 1
        ended = op["ended_at"]
        sides[(key, seen[key])] = OpSide(
            status=op["status"],
            type=op.get("sub_type") or op["type"],
            attempts=[f"a{a['attempt']} {a['outcome']}" for a in op["attempts"]],
            body_runs=len(op.get("body_runs") or []),
            replays=op.get("replay_count", len(op["replays"])),
            offset=round((op["started_at"] - start).total_seconds(), 3),
            duration=round((ended - op["started_at"]).total_seconds(), 3) if ended else None,
            output=outputs.get(op["op_id"], ""),
        )
    return sides


def _aligned(a: dict[str, Any], out_a: dict[str, str], b: dict[str, Any], out_b: dict[str, str]) -> list[OpRow]:
    left, right = _sides(a, out_a), _sides(b, out_b)
    keys = list(dict.fromkeys([*left, *right]))
    return [
        OpRow(key, occurrence, left.get((key, occurrence)), right.get((key, occurrence))) for key, occurrence in keys
    ]
