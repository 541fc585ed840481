"""The counts a seed states, read from the engine's record the same way whatever language ran.

A demo that runs in Python and in TypeScript is worth as much as the claim that both SDKs behave
alike, so each language's run is counted by the same functions here, from what the engine
stored: the invocations, the checkpointed attempts, the execution's status, and the invocations
in which a step's body ran.

A body run is read from two records that both SDKs leave: the log lines the SDK's logger
attributed to the step (Python's through the worker's journal, which notes the operation id of
each record; JavaScript's as the structured line its logger writes, with ``operationId``), and
the checkpoint of a result the body produced. The first is what seed 000 itself counts from
CloudWatch ("the first column is the lambda invocation ID, … the third is the log to show the
code executed"): a body that is killed mid-run never checkpoints anything. The engine's own
body-run record (``durable_body_run``) is not used here: it comes from the Python SDK's
instrumentation plugin, so it has nothing for a function run on Node.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from engine import timeline
from engine.contrib.django.models import LogLine
from engine.errors import ResourceNotFoundException
from engine.rows import ExecutionStatus, OperationStatus
from lab import scenarios
from lab.selectors import VariantRow

# A callback someone answered (approved or rejected), as against one still open or timed out.
ANSWERED = frozenset({OperationStatus.SUCCEEDED, OperationStatus.FAILED})

SEED_000_STEP = "Step #2"
# Attempt outcomes that a body produced (its result or its own error); "interrupted" is the
# SDK finding an earlier body cut short, in an invocation that did not run it.
BODY_OUTCOMES = {"succeeded", "failed", "retry"}


# --- body runs per invocation ---------------------------------------------------------------------


def log_operations(execution_id: int) -> dict[int, set[str]]:
    """For each invocation, the operation ids its SDK logger attributed log lines to."""
    seen: dict[int, set[str]] = defaultdict(set)
    lines = LogLine.objects.filter(execution_id=execution_id).values_list("invocation_seq", "op_id", "message")
    for seq, op_id, message in lines:
        op = op_id or _structured_operation(message)
        if op:
            seen[seq].add(op)
    return seen


def _structured_operation(message: str) -> str:
    """The ``operationId`` of a structured (JSON) log line, as the JavaScript SDK's logger writes it."""
    if not message.startswith("{") or "operationId" not in message:
        return ""
    try:
        record = json.loads(message)
    except json.JSONDecodeError:
        return ""
    return str(record.get("operationId") or "") if isinstance(record, dict) else ""


def body_runs_per_invocation(op: dict[str, Any], invocations: int, logged: dict[int, set[str]]) -> list[int]:
    """For invocation 1, 2, …: 1 if the step's body ran in it, else 0."""
    ran = {seq for seq, ops in logged.items() if op["op_id"] in ops}
    ran |= {a["close_seq"] for a in op["attempts"] if a["outcome"] in BODY_OUTCOMES and a.get("close_seq")}
    return [1 if seq in ran else 0 for seq in range(1, invocations + 1)]


def pattern(runs: list[int], status: str) -> str:
    """How the body's runs fall on the invocations, in the seed's words.

    An execution that timed out may have cut its last invocation short before the step: that
    invocation is left out of the pattern.
    """
    if status == "TIMED_OUT" and len(runs) > 1 and runs[-1] == 0:
        runs = runs[:-1]
    if not runs or not any(runs):
        return "never"
    if runs == [1] + [0] * (len(runs) - 1):
        return "once"
    if all(runs):
        return "every invocation"
    if runs == [(index + 1) % 2 for index in range(len(runs))]:
        return "every second invocation"
    return "irregular"


# --- seed 000 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedCounts:
    """One run of a seed 000 scenario, counted from the engine's record."""

    language: str
    status: str
    invocations: int
    runs: tuple[int, ...]  # Step #2's body runs in invocation 1, 2, …
    attempts: int  # Step #2's checkpointed attempts
    error_type: str
    execution_pk: int | None

    @property
    def body_runs(self) -> int:
        return sum(self.runs)

    @property
    def pattern(self) -> str:
        return pattern(list(self.runs), self.status)

    def key(self) -> tuple[Any, ...]:
        return (self.pattern, self.status, self.invocations, self.body_runs, self.attempts)


@dataclass(frozen=True)
class SeedSays:
    """What seed 000 states for one scenario (its log analysis of each)."""

    pattern: str
    attempts: str  # "1", or "one per body run"
    statuses: tuple[str, ...]
    text: str

    def agrees(self, counts: SeedCounts) -> bool:
        attempts_ok = counts.attempts == 1 if self.attempts == "1" else counts.attempts == counts.body_runs
        return counts.pattern == self.pattern and attempts_ok and counts.status in self.statuses


SEED_000_SAYS = {
    ("AT_LEAST_ONCE_PER_RETRY", "default"): SeedSays(
        "every invocation",
        "1",
        ("TIMED_OUT",),
        "runs in every invocation until the execution times out; the attempt never grows past 1",
    ),
    ("AT_LEAST_ONCE_PER_RETRY", "none"): SeedSays(
        "every invocation",
        "1",
        ("TIMED_OUT",),
        "the same: no error is ever thrown, so the retry strategy is never asked",
    ),
    ("AT_MOST_ONCE_PER_RETRY", "default"): SeedSays(
        "every second invocation",
        "one per body run",
        (ExecutionStatus.TIMED_OUT, ExecutionStatus.FAILED),
        "runs every second invocation, each time in a new attempt; the retry strategy, not a loop, decides the end",
    ),
    ("AT_MOST_ONCE_PER_RETRY", "none"): SeedSays(
        "once",
        "1",
        ("FAILED",),
        "runs once; the next invocation throws StepInterruptedError and the execution fails",
    ),
}


@dataclass
class ScenarioSideBySide:
    """One seed 000 scenario, with each language's counts next to what the seed says."""

    key: tuple[str, str]
    label: str
    says: SeedSays
    by_language: dict[str, SeedCounts | None] = field(default_factory=dict)

    @property
    def finished(self) -> list[SeedCounts]:
        return [c for c in self.by_language.values() if c is not None and c.status not in {"RUNNING", "PENDING"}]

    @property
    def agreement(self) -> list[tuple[str, bool]]:
        """For each language that finished: whether its counts are what the seed says."""
        return [(scenarios.LANGUAGE_LABEL[c.language], self.says.agrees(c)) for c in self.finished]

    @property
    def verdict(self) -> str:
        """ "same" when every language's counts are equal, "same pattern" when they behave alike
        but a timing-bound total differs (jittered retry delays, the execution timeout's cut),
        "differs" otherwise, "" until at least two languages have finished."""
        done = self.finished
        if len(done) < 2 or len(done) < len(self.by_language):
            return ""
        if len({c.key() for c in done}) == 1:
            return "same"
        if all(self.says.agrees(c) for c in done) and len({c.pattern for c in done}) == 1:
            return "same pattern"
        return "differs"


def seed_000_counts(row: VariantRow) -> SeedCounts | None:
    """Seed 000's counts for one variant's execution, or None before it started."""
    data = row.data
    if data is None or row.execution_pk is None:
        return None
    invocations = len(data["invocations"])
    step = next((op for op in data["operations"] if op["name"] == SEED_000_STEP), None)
    runs = body_runs_per_invocation(step, invocations, log_operations(row.execution_pk)) if step else []
    error = data["execution"].get("error") or {}
    return SeedCounts(
        language=row.variant.language or "python",
        status=str(data["execution"]["status"]),
        invocations=invocations,
        runs=tuple(runs) if step else (0,) * invocations,
        attempts=len(step["attempts"]) if step else 0,
        error_type=str(error.get("ErrorType") or "").rsplit(".", 1)[-1],
        execution_pk=row.execution_pk,
    )


def seed_000_side_by_side(rows: list[VariantRow]) -> tuple[list[str], list[ScenarioSideBySide]]:
    """The languages in the comparison, and its four scenarios with each language's counts."""
    languages = list(dict.fromkeys((row.variant.language or "python") for row in rows))
    table: dict[tuple[str, str], ScenarioSideBySide] = {}
    for row in rows:
        key = (row.variant.semantics, str(row.variant.retry.get("kind", "default")))
        if key not in SEED_000_SAYS:
            continue
        entry = table.setdefault(
            key, ScenarioSideBySide(key, scenarios.seed_000_label(*key), SEED_000_SAYS[key], dict.fromkeys(languages))
        )
        entry.by_language[row.variant.language or "python"] = seed_000_counts(row)
    return languages, list(table.values())


# --- seed 001: one transaction in both languages ----------------------------------------------------


@dataclass(frozen=True)
class FraudCounts:
    """One fraud execution, counted from the engine's record."""

    language: str
    execution_pk: int
    status: str
    invocations: int
    runs: tuple[int, ...]  # step bodies run in invocation 1, 2, … (all steps together)
    attempts: int  # checkpointed step attempts
    callbacks: int
    answered: int  # callbacks that succeeded or failed by an answer (not cancelled, not timed out)
    decision: str

    @property
    def body_runs(self) -> int:
        return sum(self.runs)

    def key(self) -> tuple[Any, ...]:
        return (self.status, self.runs, self.attempts, self.callbacks, self.answered, self.decision)


def fraud_counts(execution_pk: int, arn: str, language: str, decision: str | None) -> FraudCounts | None:
    """The counts of one fraud execution (read now), or None if its record is gone."""
    data = _timeline(arn)
    if data is None:
        return None
    invocations = len(data["invocations"])
    logged = log_operations(execution_pk)
    steps = [op for op in data["operations"] if op["type"] == "STEP"]
    per_step = [body_runs_per_invocation(op, invocations, logged) for op in steps]
    callbacks = [op for op in data["operations"] if op["type"] == "CALLBACK"]
    return FraudCounts(
        language=language,
        execution_pk=execution_pk,
        status=str(data["execution"]["status"]),
        invocations=invocations,
        runs=tuple(sum(runs[index] for runs in per_step) for index in range(invocations)),
        attempts=sum(len(op["attempts"]) for op in steps),
        callbacks=len(callbacks),
        answered=sum(1 for op in callbacks if op["status"] in ANSWERED),
        decision=decision or "",
    )


def _timeline(arn: str) -> dict[str, Any] | None:
    try:
        return timeline.execution_timeline(arn)
    except ResourceNotFoundException:
        return None


@dataclass
class TransactionSideBySide:
    """One transaction id run in both languages' functions."""

    name: str
    amount: Any
    by_language: dict[str, FraudCounts | None]

    @property
    def verdict(self) -> str:
        done = [c for c in self.by_language.values() if c is not None and c.status != "RUNNING"]
        if len(done) < len(self.by_language):
            return ""
        return "same" if len({c.key() for c in done}) == 1 else "differs"


def fraud_side_by_side(transactions: list[dict[str, Any]], limit: int = 5) -> list[TransactionSideBySide]:
    """The newest transactions that ran in both languages (same ``tx-<id>``), each with its counts."""
    by_name: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for t in transactions:
        by_name[t["execution"].name].setdefault(t["language"], t)
    pairs = []
    for name, runs in by_name.items():
        if len(runs) < 2:
            continue
        counted = {
            language: fraud_counts(t["execution"].pk, t["execution"].arn, language, t["decision"])
            for language, t in sorted(runs.items())
        }
        pairs.append(TransactionSideBySide(name, next(iter(runs.values()))["amount"], counted))
        if len(pairs) == limit:
            break
    return pairs
