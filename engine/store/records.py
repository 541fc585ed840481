"""What both stores share: the timer constants the duties reason with, and how a transition's
operations and events are numbered into rows (pure Python, so the PostgreSQL store and the
memory store number them alike)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.rows import ExecutionRow

# The scheduler looks at the timers at least this often (engine.scheduler.MAX_SLEEP): a timer due
# later than that from now is fired on time without a NOTIFY to wake it.
SCHEDULER_LOOKS_EVERY = timedelta(seconds=0.5)

# Timers a running invocation fires itself, at its next checkpoint or at its end (see
# ``due_timer_executions``); the execution's own deadline and recovery re-invocations are not.
# The statements in engine/sql/ spell this list as a constant (tests/engine/test_sql.py keeps
# them equal).
OWN_TIMER_KINDS = ("wait", "retry", "callback_timeout", "callback_heartbeat")


def ms_to_datetime(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms is not None else None


# The execution columns a duty's guarded transaction checks are as its snapshot had them
# (``lock_if_unchanged``): the sequence numbers cover every operation, event and token change;
# the flags are what the duties decide on.
GUARDED_COLUMNS = (
    "id",
    "status",
    "token_seq",
    "op_seq",
    "event_seq",
    "invocation_seq",
    "running",
    "needs_invoke",
    "pause_state",
)


@dataclass(frozen=True)
class Sequences:
    """An execution's touch, event and seen sequence numbers once a write has numbered its
    operations and events. The store only returns them: the duty that owns the execution row
    copies them into it (``sequences.write_into(execution)``)."""

    op_seq: int
    event_seq: int
    seen_seq: int

    def columns(self) -> dict[str, int]:
        return {"op_seq": self.op_seq, "event_seq": self.event_seq, "seen_seq": self.seen_seq}

    def write_into(self, execution: ExecutionRow) -> None:
        """Copy them into the duty's own execution row."""
        execution["op_seq"], execution["event_seq"], execution["seen_seq"] = self.op_seq, self.event_seq, self.seen_seq


def numbered(
    execution: Mapping[str, Any],
    ops: Iterable[Mapping[str, Any]],
    events: Iterable[tuple[dict[str, Any], int | None]],
    *,
    mark_seen: bool,
    unseen_ops: Iterable[Mapping[str, Any]] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Sequences]:
    """The rows to write for ``ops`` and ``events`` (each with the invocation that recorded it),
    numbered after the execution's current sequences, and the sequences that follow. With
    ``mark_seen`` the handler has seen every operation but ``unseen_ops``, numbered last."""
    op_seq, event_seq = execution["op_seq"], execution["event_seq"]
    op_records = [op_record(op_seq := op_seq + 1, op) for op in ops]
    event_records = [event_record(event_seq := event_seq + 1, event, inv) for event, inv in events]
    seen_seq = op_seq if mark_seen else execution["seen_seq"]
    op_records += [op_record(op_seq := op_seq + 1, op) for op in unseen_ops]
    return op_records, event_records, Sequences(op_seq, event_seq, seen_seq)


def op_record(seq: int, op: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "op_id": op["Id"],
        "seq": seq,
        "parent_id": op.get("ParentId"),
        "name": op.get("Name"),
        "type": op["Type"],
        "sub_type": op.get("SubType"),
        "status": op["Status"],
        "attempt": (op.get("StepDetails") or {}).get("Attempt", 0),
        "started_at": iso_ms(op.get("StartTimestamp")),
        "ended_at": iso_ms(op.get("EndTimestamp")),
        "callback_id": (op.get("CallbackDetails") or {}).get("CallbackId"),
        "doc": op,
    }


def event_record(event_id: int, event: dict[str, Any], invocation_seq: int | None) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event["EventType"],
        "op_id": event.get("Id"),
        "inv": invocation_seq,
        "doc": event,
    }


def iso_ms(ms: int | None) -> str | None:
    moment = ms_to_datetime(ms)
    return moment.isoformat() if moment else None
