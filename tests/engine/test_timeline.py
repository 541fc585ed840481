"""Unit tests of the timeline read model's pure parts: the tree window and replay counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine import timeline
from engine.timeline import MAX_REPLAYS_LISTED, OutlineRow, Replays, tree_window

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def row(op_id: str, parent: str | None = None, status: str = "SUCCEEDED", ended: float | None = 1.0) -> OutlineRow:
    return OutlineRow(op_id, parent, "STEP", status, at(ended) if ended is not None else None)


def invocations(*starts: float) -> list[dict]:
    return [{"seq": seq, "started_at": at(moment)} for seq, moment in enumerate(starts, start=1)]


def replayed_by(replays: Replays, op_id: str) -> list[int]:
    count, listed = replays.of(op_id)
    assert count == len(listed)
    return [r["invocation_seq"] for r in listed]


NESTED = [row("a"), row("b", "a"), row("d"), row("c", "b"), row("e", "a")]


def test_tree_window_puts_children_under_their_context_in_start_order() -> None:
    assert tree_window(NESTED) == [("a", 0), ("b", 1), ("c", 2), ("e", 1), ("d", 0)]


def test_tree_window_returns_only_the_asked_rows() -> None:
    assert tree_window(NESTED, 1, 2) == [("b", 1), ("c", 2)]
    assert tree_window(NESTED, 4, 150) == [("d", 0)]
    assert tree_window(NESTED, 10, 150) == []


def test_tree_window_shows_a_parent_cycle_flat_instead_of_losing_rows() -> None:
    cycle = [row("r"), row("x", "y"), row("y", "x")]
    assert tree_window(cycle) == [("r", 0), ("x", 0), ("y", 0)]


def test_an_operation_is_replayed_by_every_later_invocation() -> None:
    replays = Replays([row("a", ended=1.0)], invocations(0, 2, 3))
    assert replayed_by(replays, "a") == [2, 3]
    assert replays.total() == 2


def test_a_completed_context_hides_its_children_from_later_replays() -> None:
    outline = [row("ctx", ended=2.5), row("child", "ctx", ended=1.0)]
    replays = Replays(outline, invocations(0, 2, 3))
    assert replayed_by(replays, "child") == [2]  # invocation 3 returned ctx whole
    assert replayed_by(replays, "ctx") == [3]
    assert replays.total() == 2


def test_running_and_unknown_operations_have_no_replays() -> None:
    replays = Replays([row("open", status="STARTED", ended=None)], invocations(0, 2))
    assert replays.of("open") == (0, []) and replays.of("missing") == (0, []) and replays.total() == 0


def test_thousands_of_replays_are_all_counted_and_the_first_ones_listed() -> None:
    replays = Replays([row("a", ended=0.5)], invocations(*range(3001)))
    count, listed = replays.of("a")
    assert count == 3000 == replays.total()
    assert len(listed) == MAX_REPLAYS_LISTED and listed[0]["invocation_seq"] == 2


def test_an_invocation_that_waited_for_a_worker_is_queued_from_its_message_or_the_previous_end() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    s = lambda seconds: t0 + timedelta(seconds=seconds)  # noqa: E731
    invocations = [
        {"seq": 1, "dispatched_at": s(0), "started_at": s(0.05), "ended_at": s(1)},  # picked up at once
        {"seq": 2, "dispatched_at": s(0.5), "started_at": s(4), "ended_at": s(5)},  # sent before #1 ended
        {"seq": 3, "dispatched_at": None, "started_at": s(9), "ended_at": s(10)},  # never sent (recorded old row)
    ]
    marked = timeline.with_queue_time(invocations, s(0))
    assert [i["queued_at"] for i in marked] == [None, s(1), None]
    assert timeline.queued_seconds(marked[1]) == 3.0
