"""The time after a crashed, killed or timed-out invocation is drawn as a re-invoke, not a pause."""

from __future__ import annotations

import pytest

from engine.timeline import gap_kind
from executions import charts
from tests.dashboard.test_charts import at, attempt, invocation, timeline, traces_by_name

REINVOKE = "Crashed → re-invoke (backoff, not billed)"
SUSPENDED = "Suspended between invocations (not billed)"


def test_the_gap_after_a_killed_invocation_is_a_reinvoke_not_a_suspension() -> None:
    traces = traces_by_name(charts.timeline_figure(timeline(), now=at(30)))
    gap = traces[REINVOKE]
    assert len(gap["y"]) == 1 and gap["x"] == [(at(15) - at(6)).total_seconds() * 1000]
    assert "invocation #2 killed → re-invoked after" in gap["hovertext"][0]
    assert len(traces[SUSPENDED]["y"]) == 1  # the one after #1, which suspended


@pytest.mark.parametrize("outcome", ["crashed", "killed", "timed_out", "failed"])
def test_every_lost_or_failed_invocation_is_followed_by_a_reinvoke(outcome: str) -> None:
    data = timeline()
    data["invocations"] = [invocation(1, 0, 1, outcome), invocation(2, 3, 4, "succeeded", "recovery")]
    traces = traces_by_name(charts.timeline_figure(data, now=at(30)))
    assert len(traces[REINVOKE]["y"]) == 1
    assert SUSPENDED not in traces
    assert gap_kind(data["invocations"][0]) == "reinvoke"


def test_a_running_execution_waiting_for_its_reinvoke_shows_it_up_to_now() -> None:
    data = timeline()
    data["execution"] = {**data["execution"], "status": "RUNNING", "ended_at": None}
    data["invocations"] = [invocation(1, 0, 1, "crashed")]
    traces = traces_by_name(charts.timeline_figure(data, now=at(4)))
    assert traces[REINVOKE]["x"] == [(at(4) - at(1)).total_seconds() * 1000]


def test_an_attempt_whose_invocation_was_killed_ends_at_the_kill_and_runs_again() -> None:
    """Step B's attempt 1 began in invocation #1, which was killed after the body; invocation #2
    ran the body again and closed the attempt. Not one green bar across the kill."""
    data = timeline()
    data["invocations"] = [invocation(1, 0, 4, "killed"), invocation(2, 4.1, 6, "succeeded", "recovery")]
    runs = [
        {"invocation_seq": 1, "attempt": 1, "started_at": at(2), "ended_at": at(3), "outcome": "succeeded"},
        {"invocation_seq": 2, "attempt": 1, "started_at": at(4.5), "ended_at": at(5), "outcome": "succeeded"},
    ]
    step = {
        **data["operations"][0],
        "attempts": [attempt(1, 2, 2, 5.1, "succeeded")],
        "body_runs": runs,
        "replays": [],
    }
    data["operations"] = [step]
    traces = traces_by_name(charts.timeline_figure(data, now=at(30)))
    cut, closed = traces["Attempt interrupted"], traces["Attempt succeeded"]
    assert cut["text"] == ["a1"] and cut["x"] == [(at(4) - at(2)).total_seconds() * 1000]
    assert closed["x"] == [(at(5.1) - at(4.5)).total_seconds() * 1000]
    assert "ended before the result was checkpointed" in cut["hovertext"][0]
