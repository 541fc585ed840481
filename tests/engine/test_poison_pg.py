"""Untranslatable text (NUL bytes, lone surrogates) from handlers is stored escaped, in-process.

PostgreSQL refuses both in text and jsonb; the engine escapes them to visible text instead of
failing the write (which used to leave the invocation open and crash every background loop).
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import pytest
from psycopg.types.json import Jsonb

import engine
from engine import db, invoker, journal
from engine.duties.claim import Ticket, claim_invocation
from engine.duties.end import complete_invocation
from engine.duties.recovery import invocation_retry_policy, reinvoke_delay
from engine.duties.sweep import mark_invocation_lost
from tests.engine.support import Recorder, Register, execution_row, start

H = "tests.handlers.poison.poison"
NOT_DURABLE = "tests.handlers.poison.not_durable"


def _log_messages(execution_id: int) -> list[str]:
    with db.transaction() as conn:
        rows = conn.execute("SELECT message FROM durable_log WHERE execution_id = %s ORDER BY id", (execution_id,))
        return [row["message"] for row in rows]


def _run(client: engine.LambdaClient, functions: Register, recorder: Recorder, payload: str) -> dict[str, Any]:
    arn = start(client, functions(H), payload)
    execution_id = execution_row(arn)["id"]
    assert invoker.run_invocation(execution_id)
    return execution_row(arn)


def test_handler_text_with_nul_and_surrogates_is_stored_escaped(
    client: engine.LambdaClient, functions: Register, recorder: Recorder
) -> None:
    row = _run(client, functions, recorder, "{}")
    assert row["status"] == "SUCCEEDED"
    assert "\\u0000" in row["result"]
    messages = _log_messages(row["id"])
    assert any("a\\u0000b" in message and "\\ud800" in message for message in messages), messages


def test_step_error_with_nul_and_surrogates_is_stored_escaped(
    client: engine.LambdaClient, functions: Register, recorder: Recorder
) -> None:
    row = _run(client, functions, recorder, '{"fail": true}')
    assert row["status"] == "FAILED"
    assert "bad a\\u0000b \\ud800" in row["error"]["ErrorMessage"]


def test_jsonb_and_text_parameters_store_untranslatable_text_escaped() -> None:
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT %s::jsonb AS doc, %s::text AS text",
            (Jsonb({"k\x00": ["a\x00b", "\ud800", "ok \U0001f600"]}), "t\x00\udfff"),
        ).fetchone()
    assert row == {"doc": {"k\\u0000": ["a\\u0000b", "\\ud800", "ok \U0001f600"]}, "text": "t\\u0000\\udfff"}


def test_escaping_keeps_storable_text_as_it_is() -> None:
    document = {"name": "caf\u00e9 \U0001f600", "n": [1, 2.5, None, True], "literal": "\\u0000"}
    assert db.escape_document(document) == document
    assert db.is_storable("caf\u00e9") and not db.is_storable("\ud800") and not db.is_storable("\x00")


@pytest.mark.parametrize(
    "stored",
    [
        {"BackoffRate": None},  # NaN, as jsonb stores it
        {"BackoffRate": 1e300, "InitialDelaySeconds": 1e300, "MaxDelaySeconds": 1e300},
        {"BackoffRate": 1e9, "MaxDelaySeconds": 1e9, "ImmediateRetries": 1e300, "MaximumAttempts": 1e300},
        {"BackoffRate": "fast", "InitialDelaySeconds": -5, "MaximumAttempts": [3]},
    ],
)
def test_a_bad_stored_retry_policy_gives_a_finite_bounded_delay(stored: dict[str, Any]) -> None:
    policy = invocation_retry_policy(stored)
    for failures in (1, 2, 10, 1000, 10**9):
        delay = reinvoke_delay(policy, failures, "InvalidHandlerOutput")
        assert 0 <= delay <= 86400 and math.isfinite(delay)
    assert reinvoke_delay({"BackoffRate": float("nan")}, 3, "X") == 4.0  # the default rate
    assert reinvoke_delay({"BackoffRate": float("inf")}, 3, "X") == 60.0  # the default cap


def test_a_failing_invocation_under_a_bad_stored_policy_is_scheduled_again(
    client: engine.LambdaClient, functions: Register, recorder: Recorder
) -> None:
    name = functions(NOT_DURABLE)
    with db.transaction() as conn:  # as a policy stored before input was validated
        conn.execute(
            """UPDATE durable_function SET invocation_retry = '{"BackoffRate": 1e300, "InitialDelaySeconds": 1e9,
                   "MaxDelaySeconds": 1e300, "MaximumAttempts": null}' WHERE name = %s""",
            (name,),
        )
    arn = start(client, name, "{}")
    execution_id = execution_row(arn)["id"]
    with db.transaction() as conn:  # the overflow came at the third failure in a row
        conn.execute("UPDATE durable_execution SET consecutive_failures = 5 WHERE id = %s", (execution_id,))
    assert invoker.run_invocation(execution_id)
    row = execution_row(arn)
    assert (row["status"], row["consecutive_failures"], row["needs_invoke"]) == ("RUNNING", 6, False)
    with db.transaction() as conn:
        timer = conn.execute(
            "SELECT due_at - now() AS wait FROM durable_timer WHERE execution_id = %s AND kind = 'reinvoke'",
            (execution_id,),
        ).fetchone()
    assert timer is not None and timedelta(hours=23) < timer["wait"] <= timedelta(days=1)


def _claimed_with_unstorable_journal(client: engine.LambdaClient, functions: Register) -> Ticket:
    """A claimed invocation whose journal holds a line PostgreSQL refuses (a time that is none)."""
    arn = start(client, functions(NOT_DURABLE), "{}")
    ticket = claim_invocation(execution_row(arn)["id"])
    assert ticket is not None
    path = journal.journal_path(ticket.request_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"t": "log", "at": "not a time", "level": "INFO", "logger": "x", "message": "m"}) + "\n")
    return ticket


def test_an_unstorable_journal_is_replaced_by_a_marked_line_when_the_invocation_ends(
    client: engine.LambdaClient, functions: Register, recorder: Recorder
) -> None:
    ticket = _claimed_with_unstorable_journal(client, functions)
    complete_invocation(ticket, {"Status": "SUCCEEDED", "Result": '"done"'}, None)
    assert execution_row(ticket.arn)["status"] == "SUCCEEDED"
    [message] = _log_messages(ticket.execution_id)
    assert message.startswith("The invocation's journal (log lines, step body runs) could not be stored")


def test_an_unstorable_journal_is_replaced_by_a_marked_line_when_the_invocation_is_lost(
    client: engine.LambdaClient, functions: Register, recorder: Recorder
) -> None:
    ticket = _claimed_with_unstorable_journal(client, functions)
    assert mark_invocation_lost(ticket.execution_id, ticket.seq, "crashed") == 1
    assert execution_row(ticket.arn)["consecutive_failures"] == 1
    [message] = _log_messages(ticket.execution_id)
    assert "could not be stored" in message
