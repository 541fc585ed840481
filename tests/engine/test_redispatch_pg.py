"""Re-dispatch is bounded: a message is sent again only when presumed lost, and the worker drops
duplicate and superseded messages cheaply (issue 21)."""

from __future__ import annotations

import pytest

import engine
from engine import db
from engine.duties.claim import claim_invocation
from engine.duties.sweep import redispatch_stranded
from tests.engine.support import Recorder, Register, execution_row, start
from tests.engine.test_service_pg import counted_statements

WAITS = "tests.handlers.engine_pg.long_wait"


def _sent_minutes_ago(execution_id: int, minutes: int) -> None:
    with db.transaction() as conn:
        conn.execute(
            "UPDATE durable_execution SET dispatched_at = now() - make_interval(mins => %s) WHERE id = %s",
            (minutes, execution_id),
        )


def test_a_message_the_workers_have_gone_past_is_sent_again_once(
    client: engine.LambdaClient, functions: Register, recorder: Recorder, no_scheduler: None
) -> None:
    name = functions(WAITS)
    lost = execution_row(start(client, name, '{"seconds": 1}'))["id"]
    _sent_minutes_ago(lost, 2)
    later = execution_row(start(client, name, '{"seconds": 1}'))["id"]
    assert claim_invocation(later) is not None  # the workers read a message sent after the lost one
    recorder.invoked.clear()
    assert redispatch_stranded() >= 1
    redispatch_stranded()  # a second round: the new message is not presumed lost
    assert recorder.invoked.count(lost) == 1 and later not in recorder.invoked
    assert _redispatches(lost) == 1


def test_a_message_not_seen_taken_for_the_backstop_time_is_sent_again_once(
    client: engine.LambdaClient, functions: Register, recorder: Recorder, no_scheduler: None
) -> None:
    waiting = execution_row(start(client, functions(WAITS), '{"seconds": 1}'))["id"]
    _sent_minutes_ago(waiting, 6)  # past the backstop (5 min): sent again, whatever the workers read
    recorder.invoked.clear()
    redispatch_stranded()
    redispatch_stranded()
    assert recorder.invoked.count(waiting) == 1
    assert _redispatches(waiting) == 1


def test_a_superseded_or_duplicate_message_is_dropped_without_a_lock(
    client: engine.LambdaClient, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id = execution_row(start(client, functions(WAITS), '{"seconds": 1}'))["id"]
    with db.transaction() as conn:  # two messages were sent again since the first
        conn.execute("UPDATE durable_execution SET redispatches = 2 WHERE id = %s", (execution_id,))
    statements = counted_statements(monkeypatch)
    assert claim_invocation(execution_id, generation=1) is None
    assert len(statements) == 2 and not any("FOR UPDATE" in sql for sql in statements)
    assert claim_invocation(execution_id, generation=2) is not None
    statements.clear()
    assert claim_invocation(execution_id) is None  # a duplicate: the invocation runs already
    assert len(statements) == 2 and not any("FOR UPDATE" in sql for sql in statements)


def _redispatches(execution_id: int) -> int:
    with db.transaction() as conn:
        row = conn.execute("SELECT redispatches FROM durable_execution WHERE id = %s", (execution_id,)).fetchone()
    assert row is not None
    return int(row["redispatches"])


def test_a_start_the_broker_refused_is_sent_at_the_next_round(
    client: engine.LambdaClient,
    functions: Register,
    recorder: Recorder,
    no_scheduler: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broker_down(execution_id: int, timeout: float) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(recorder, "invoke", broker_down)
    row = execution_row(start(client, functions(WAITS), '{"seconds": 1}'))  # accepted all the same
    assert (row["needs_invoke"], row["dispatched_at"]) == (True, None)
    redispatch_stranded()  # still down: marked as not sent again
    assert execution_row(row["arn"])["dispatched_at"] is None
    monkeypatch.undo()
    redispatch_stranded()
    assert recorder.invoked.count(row["id"]) == 1
