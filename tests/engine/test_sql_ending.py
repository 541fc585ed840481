"""``store.end_invocation_guarded`` after its statement was rewritten with named CTEs: every
branch of its guard, checked against the statement as it was before (07b560b), which the
scenarios run too, so that both must agree on what is written and what is refused."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import db
from engine.sql import Q
from engine.store import store

# The statement before the rewrite, verbatim: the oracle the new one must agree with.
PRE_REWRITE = """
WITH u AS (
    UPDATE durable_execution SET status = %(status)s, result = %(result)s, error = NULL,
        ended_at = %(ended_at)s, running = false, lease_until = NULL,
        needs_invoke = %(wake)s::text IS NOT NULL, invoke_reason = COALESCE(%(wake)s, invoke_reason),
        dispatched_at = CASE WHEN %(wake)s::text IS NULL THEN dispatched_at ELSE %(now)s END,
        consecutive_failures = 0, op_seq = %(op_seq)s, seen_seq = %(seen_seq)s, event_seq = %(event_seq)s,
        token_seq = %(token_seq)s, counters = %(counters)s
    WHERE id = %(id)s AND invocation_seq = %(seq)s AND token_seq = %(guard_token_seq)s
        AND op_seq = %(guard_op_seq)s AND event_seq = %(guard_event_seq)s
        AND status = 'RUNNING' AND running AND pending_finish IS NULL
        AND (%(finished)s OR NOT EXISTS (
            SELECT 1 FROM durable_timer t WHERE t.execution_id = %(id)s AND t.due_at <= %(now)s
                AND NOT (t.kind = 'wait' AND t.op_id = ANY(%(fired)s::text[]))))
        AND (SELECT count(*) FROM durable_timer t WHERE t.execution_id = %(id)s AND t.kind = 'wait'
                AND t.op_id = ANY(%(fired)s::text[]) AND t.due_at <= %(now)s) = cardinality(%(fired)s::text[])
    RETURNING 1),
inv AS (
    UPDATE durable_invocation SET ended_at = %(now)s, outcome = %(outcome)s
    WHERE execution_id = %(id)s AND seq = %(seq)s AND ended_at IS NULL AND EXISTS (SELECT 1 FROM u)),
o AS (
    UPDATE durable_operation d SET status = x.status, touch_seq = x.seq, ended_at = x.ended_at, doc = x.doc
    FROM jsonb_to_recordset(%(ops)s) AS x(op_id text, seq bigint, status text, ended_at timestamptz, doc jsonb)
    WHERE d.execution_id = %(id)s AND d.op_id = x.op_id AND EXISTS (SELECT 1 FROM u)),
e AS (
    INSERT INTO durable_event (execution_id, event_id, event_type, timestamp, op_id, invocation_seq, doc)
    SELECT %(id)s, x.event_id, x.event_type, %(now)s, x.op_id, x.inv, x.doc
    FROM jsonb_to_recordset(%(events)s) AS x(event_id int, event_type text, op_id text, inv int, doc jsonb)
    WHERE EXISTS (SELECT 1 FROM u)),
br AS (
INSERT INTO durable_body_run (execution_id, op_id, name, invocation_seq, attempt, started_at, ended_at, outcome)
SELECT %(id)s, x.op_id, x.name, %(seq)s, x.attempt, x.started_at, x.ended_at, x.outcome
FROM jsonb_to_recordset(%(runs)s) AS x(op_id text, name text, attempt int, started_at timestamptz,
    ended_at timestamptz, outcome text) WHERE EXISTS (SELECT 1 FROM u)),
lg AS (
INSERT INTO durable_log (execution_id, invocation_seq, at, level, logger, message, op_id)
SELECT %(id)s, %(seq)s, x.at, x.level, x.logger, x.message, x.op_id
FROM jsonb_to_recordset(%(logs)s) AS x(at timestamptz, level text, logger text, message text, op_id text) WHERE EXISTS (SELECT 1 FROM u)),
ta AS (DELETE FROM durable_timer t WHERE t.execution_id = %(id)s
    AND (%(finished)s OR t.kind = 'wait' AND t.op_id = ANY(%(fired)s::text[])) AND EXISTS (SELECT 1 FROM u))
SELECT EXISTS (SELECT 1 FROM u) AS written,
    (SELECT f.timeout FROM durable_function f WHERE f.name = %(function_name)s) AS fn_timeout,
    CASE WHEN NOT EXISTS (SELECT 1 FROM u) THEN NULL
        WHEN %(finished)s THEN pg_notify('durable_done', %(arn)s)
        -- the scheduler held back this execution's timers while it ran: look again
        WHEN EXISTS (SELECT 1 FROM durable_timer t WHERE t.execution_id = %(id)s
            AND t.kind = ANY(ARRAY['wait', 'retry', 'callback_timeout', 'callback_heartbeat']) AND NOT (t.kind = 'wait' AND t.op_id = ANY(%(fired)s::text[])))
        THEN pg_notify('durable_timers', %(id)s::text) END AS notified
"""


class _WithOldEnding:
    """The named queries, but end_invocation_guarded as it was before the rewrite."""

    end_invocation_guarded = PRE_REWRITE

    def __getattr__(self, name: str) -> Any:
        return getattr(Q, name)


@pytest.fixture(params=["named", "pre_rewrite"])
def statement(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pre_rewrite":
        monkeypatch.setattr(store, "Q", _WithOldEnding())
    return str(request.param)


# The scenarios happen an hour from now: their timers are due to the statement (which is given
# this NOW) but not yet to any scheduler running in the test process, which would fire them.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
PAST = NOW - timedelta(seconds=5)
LATER = NOW + timedelta(hours=1)


@pytest.fixture
def claimed() -> Iterator[dict[str, Any]]:
    """An execution with a claimed (running) invocation and a STARTED wait ``W``."""
    name = f"t-sql-ending-{uuid.uuid4().hex[:8]}"
    with db.transaction() as conn:
        store.upsert_function(
            conn,
            {
                "name": name,
                "handler": "demos.handlers.hello",
                "description": "",
                "timeout": 30,
                "durable_config": None,
                "environment": {},
                "maximum_retry_attempts": 2,
                "invocation_retry": {},
                "revision_id": "r1",
                "runtime": None,
                "code_sha256": None,
                "code_size": None,
                "now": NOW,
            },
        )
        op = {"Id": "root", "Type": "EXECUTION", "Status": "STARTED", "StartTimestamp": 0}
        values = {
            "arn": f"arn:test:{name}",
            "function_name": name,
            "name": name,
            "input": "{}",
            "started_at": NOW,
            "execution_timeout": 3600,
            "retention_days": 1,
            "time_scale": 1.0,
            "invocation_type": "Event",
            "parent_arn": None,
            "parent_op_id": None,
        }
        row = store.insert_started_execution(conn, values, op, {"EventType": "ExecutionStarted"}, LATER)
        assert row is not None
        claim = {
            "execution_id": row["id"],
            "now": NOW,
            "lease_grace": timedelta(seconds=5),
            "generation": None,
            "request_id": str(uuid.uuid4()),
            "worker": socket.gethostname(),
            "pid": 1,
        }
        execution = store.claim_invocation(conn, claim)
        assert execution is not None
        wait = {"Id": "W", "Type": "WAIT", "Status": "STARTED", "StartTimestamp": 0}
        sequences, _, _ = store.write_transition(
            conn, execution, [wait], [], [], [], NOW, invocation_seq=1, mark_seen=True
        )
        execution.update(sequences.columns())
    yield execution
    # Gone, not just stopped: its invocation, dispatched an hour ahead, would otherwise be the
    # latest message the workers took, and the re-dispatcher would presume every queued one lost.
    with db.transaction() as conn:
        store.purge_executions(conn, [execution["id"]])


def _end(execution: dict[str, Any], *, finished: bool, fired: list[str], guard: dict[str, int] | None = None):
    ending_row = {**execution, "token_seq": execution["token_seq"] + 1, "counters": {}}
    if finished:
        ending_row.update(status="SUCCEEDED", result="{}", ended_at=NOW)
    ops = [{"Id": op_id, "Type": "WAIT", "Status": "SUCCEEDED", "EndTimestamp": 0} for op_id in fired]
    ending = {
        "now": NOW,
        "outcome": "ok",
        "events": [({"EventType": "InvocationCompleted"}, 1)],
        "ops": [],
        "fired": ops,
        "wake": "wait" if fired and not finished else None,
    }
    guard = guard or {k: execution[k] for k in ("token_seq", "op_seq", "event_seq")}
    with db.transaction() as conn:
        ended, _ = store.end_invocation_guarded(conn, ending_row, execution["invocation_seq"], guard, ending, ([], []))
        return ended


def _state(execution_id: int) -> dict[str, Any]:
    with db.transaction() as conn:
        row = store.execution_by_id(conn, execution_id)
        timers = conn.execute(
            "SELECT kind, op_id FROM durable_timer WHERE execution_id = %s ORDER BY kind, op_id", (execution_id,)
        ).fetchall()
        ops = store.load_ops(conn, execution_id)
        events = store.read_events(conn, execution_id, after=0, limit=100, reverse=False)
    assert row is not None
    return {
        "status": row["status"],
        "running": row["running"],
        "needs_invoke": row["needs_invoke"],
        "timers": [(t["kind"], t["op_id"]) for t in timers],
        "W": ops["W"]["Status"],
        "events": len(events),
    }


def _timer(execution: dict[str, Any], kind: str, op_id: str, due: datetime) -> None:
    with db.transaction() as conn:
        store.set_timer(conn, execution["id"], kind, op_id, due)


TIMEOUT_TIMER = ("execution_timeout", "")


def test_a_suspension_with_nothing_due_is_written(claimed: dict[str, Any], statement: str) -> None:
    before = _state(claimed["id"])
    assert _end(claimed, finished=False, fired=[]) is not None
    after = _state(claimed["id"])
    assert after == {**before, "running": False, "events": before["events"] + 1}


def test_a_suspension_is_refused_while_a_timer_it_does_not_fire_is_due(claimed: dict[str, Any], statement: str) -> None:
    _timer(claimed, "retry", "S", PAST)
    before = _state(claimed["id"])
    assert _end(claimed, finished=False, fired=[]) is None
    assert _state(claimed["id"]) == before


def test_a_suspension_firing_a_due_wait_completes_it(claimed: dict[str, Any], statement: str) -> None:
    _timer(claimed, "wait", "W", PAST)
    assert _end(claimed, finished=False, fired=["W"]) is not None
    after = _state(claimed["id"])
    assert after["W"] == "SUCCEEDED" and after["needs_invoke"] and not after["running"]
    assert after["timers"] == [TIMEOUT_TIMER]  # the fired wait's timer is gone, the rest stay


def test_a_suspension_firing_a_due_wait_is_refused_if_another_timer_is_due(
    claimed: dict[str, Any], statement: str
) -> None:
    _timer(claimed, "wait", "W", PAST)
    _timer(claimed, "callback_timeout", "C", PAST)
    before = _state(claimed["id"])
    assert _end(claimed, finished=False, fired=["W"]) is None
    assert _state(claimed["id"]) == before


@pytest.mark.parametrize("due", [LATER, None], ids=["not_yet_due", "no_timer"])
def test_a_suspension_firing_a_wait_whose_timer_is_not_due_is_refused(
    claimed: dict[str, Any], statement: str, due: datetime | None
) -> None:
    if due is not None:
        _timer(claimed, "wait", "W", due)
    before = _state(claimed["id"])
    assert _end(claimed, finished=False, fired=["W"]) is None
    assert _state(claimed["id"]) == before


def test_a_finish_is_written_whatever_is_due_and_drops_every_timer(claimed: dict[str, Any], statement: str) -> None:
    _timer(claimed, "retry", "S", PAST)
    _timer(claimed, "wait", "W", LATER)
    assert _end(claimed, finished=True, fired=[]) is not None
    after = _state(claimed["id"])
    assert after["status"] == "SUCCEEDED" and after["timers"] == [] and not after["running"]


def test_an_ending_whose_guard_is_stale_writes_nothing(claimed: dict[str, Any], statement: str) -> None:
    before = _state(claimed["id"])
    stale = {"token_seq": claimed["token_seq"], "op_seq": claimed["op_seq"] - 1, "event_seq": claimed["event_seq"]}
    assert _end(claimed, finished=True, fired=[], guard=stale) is None
    assert _state(claimed["id"]) == before
