"""The invariant checker on hand-made read models: each rule fires on the lie it names, and only then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import rows
from engine.invariants import violations

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def invocation(seq: int, start: float, end: float | None, outcome: str | None = "suspended") -> dict[str, Any]:
    return {"seq": seq, "started_at": at(start), "ended_at": at(end) if end is not None else None, "outcome": outcome}


def attempt(seq: int, start: float, end: float | None, outcome: str = "succeeded", number: int = 1) -> dict[str, Any]:
    segment = {"invocation_seq": seq, "started_at": at(start), "ended_at": at(end) if end else None, "outcome": outcome}
    return {**segment, "attempt": number, "segments": [segment]}


def step(attempts: list[dict[str, Any]], runs: list[tuple[int, int]], status: str = "SUCCEEDED") -> dict[str, Any]:
    end = max((a["ended_at"] for a in attempts if a["ended_at"]), default=None)
    return {
        "op_id": "op-1",
        "name": "charge",
        "type": "STEP",
        "status": status,
        "ended_at": end if status not in rows.OPERATION_OPEN else None,
        "attempts": attempts,
        "body_runs": [{"invocation_seq": seq, "attempt": number} for seq, number in runs],
        "replay_count": 0,
    }


def model(ops: list[dict[str, Any]], invocations: list[dict[str, Any]], status: str = "SUCCEEDED") -> dict[str, Any]:
    billed = sum(((i["ended_at"] or i["started_at"]) - i["started_at"]).total_seconds() for i in invocations)
    return {
        "execution": {"status": status, "ended_at": at(10) if status != "RUNNING" else None},
        "invocations": invocations,
        "operations": ops,
        "operation_count": len(ops),
        "counters": {
            "invocations": len(invocations),
            "attempts": sum(len(op["attempts"]) for op in ops),
            "body_runs": sum(len(op["body_runs"]) for op in ops),
            "replays": 0,
            "billed_seconds": round(billed, 3),
        },
    }


def test_a_truthful_record_breaks_no_rule() -> None:
    data = model([step([attempt(1, 1, 2)], [(1, 1)])], [invocation(1, 0, 3, "succeeded")])
    assert violations(data) == []


def test_an_operation_left_open_on_a_stopped_execution_is_reported() -> None:
    data = model([step([attempt(1, 1, None, "running")], [(1, 1)], status="STARTED")], [invocation(1, 0, 9)], "STOPPED")
    found = violations(data)
    assert any(v.startswith("open-after-end: charge") and "STARTED" in v for v in found), found
    assert any("attempt 1 still running" in v for v in found), found


def test_an_attempt_bar_outside_its_invocation_is_reported() -> None:
    data = model([step([attempt(1, 1, 5)], [(1, 1)])], [invocation(1, 0, 3, "succeeded")])
    assert [v.split(":")[0] for v in violations(data)] == ["attempt-outside-invocation"]


def test_a_body_run_without_an_attempt_there_is_reported() -> None:
    data = model([step([attempt(2, 4, 5)], [(1, 1), (2, 1)])], [invocation(1, 0, 3, "killed"), invocation(2, 3.1, 6)])
    found = violations(data)
    assert any("invocation #1 as attempt 1" in v for v in found), found


def test_billed_and_counts_must_match_the_tables() -> None:
    data = model([step([attempt(1, 1, 2)], [(1, 1)])], [invocation(1, 0, 3, "succeeded")])
    data["counters"].update(billed_seconds=0.0, body_runs=0, invocations=2)
    codes = sorted(v.split(":")[0] for v in violations(data))
    assert codes == ["billed-mismatch", "count-mismatch", "count-mismatch"]


@pytest.mark.parametrize(("gap", "broken"), [(0.05, False), (5.0, True)])
def test_a_gap_after_a_crash_is_not_a_pause(gap: float, broken: bool) -> None:
    data = model([], [invocation(1, 0, 1, "killed"), invocation(2, 1 + gap, 2, "succeeded")])
    assert any(v.startswith("crash-as-suspended") for v in violations(data)) is broken


def queued(inv: dict[str, Any], since: float) -> dict[str, Any]:
    return {**inv, "queued_at": at(since)}


def test_time_queued_for_a_worker_after_a_crash_is_neither_a_pause_nor_a_reinvoke() -> None:
    # Killed at 1 s, re-invoked at 1.1 s, but the message waited for a worker until 6 s.
    invocations = [invocation(1, 0, 1, "killed"), queued(invocation(2, 6, 7, "succeeded"), 1.1)]
    data = model([], invocations)
    data["counters"].update(reinvoke_seconds=0.1, queued_seconds=4.9)
    assert violations(data) == []


def test_queue_time_must_lie_in_the_gap_and_be_counted() -> None:
    data = model([], [invocation(1, 0, 3), queued(invocation(2, 6, 7, "succeeded"), 2)])
    data["counters"].update(queued_seconds=0.0)
    found = violations(data)
    assert [v.split(":")[0] for v in found] == ["queue-time", "queue-time"], found


def test_billed_time_over_wall_time_is_reported() -> None:
    # Stopped at 10 s while invocation #1 ran on until 12 s: wall time must cover it.
    data = model([], [invocation(1, 0, 12, "killed")], "STOPPED")
    data["counters"]["wall_seconds"] = 10.0
    assert [v.split(":")[0] for v in violations(data)] == ["billed-mismatch"]
    data["counters"]["wall_seconds"] = 12.0
    assert violations(data) == []


def test_an_invocation_started_while_paused_is_reported() -> None:
    invocations = [invocation(1, 0, 1), invocation(2, 5, 6, "succeeded")]
    data = model([], invocations)
    data["pauses"] = [{"paused_at": at(2), "resumed_at": at(7)}]
    assert [v.split(":")[0] for v in violations(data)] == ["invoked-while-paused"]
    data["pauses"] = [{"paused_at": at(2), "resumed_at": at(5)}]  # invoked on resume: the truth
    assert violations(data) == []
    data["pauses"] = [{"paused_at": at(2), "resumed_at": None}]  # a stop closed the pause at 10 s
    assert [v.split(":")[0] for v in violations(data)] == ["invoked-while-paused"]
