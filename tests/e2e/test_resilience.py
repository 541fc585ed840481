"""Nothing a handler produces stops the stack, and a bad item is quarantined, with the real
worker and scheduler processes (issue 21).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

import engine
from engine import db, journal
from engine.contrib.django.models import Execution
from engine.duties.claim import claim_invocation
from engine.duties.loops import QUARANTINE_AFTER
from engine.duties.sweep import REDISPATCH_BACKSTOP, redispatch_stranded
from engine.duties.unit import PlainCall, current_dispatcher, set_dispatcher, utcnow
from tests.broker import redis_client
from tests.conftest import Stack, wait_until
from tests.dashboard.support import make_user

POISON = "tests.handlers.poison.poison"
NOT_DURABLE = "tests.handlers.poison.not_durable"
LONG_WAIT = "tests.handlers.engine_pg.long_wait"


def _function(lam: Any, handler: str, name: str, **fields: Any) -> str:
    lam.create_function(
        FunctionName=name,
        Handler=handler,
        Timeout=30,
        DurableConfig={"ExecutionTimeout": 300, "RetentionPeriodInDays": 1},
        **fields,
    )
    return name


def _start(lam: Any, name: str, **event: Any) -> str:
    return lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event))["DurableExecutionArn"]


def _ended(lam: Any, arn: str, timeout: float = 90) -> str:
    def status() -> str | None:
        value = lam.get_durable_execution(DurableExecutionArn=arn)["Status"]
        return None if value == "RUNNING" else value

    return str(wait_until(status, timeout=timeout, message=f"{arn} to end"))


@pytest.fixture
def staff_client(django_db_blocker: Any) -> Iterator[Client]:
    """A logged-in staff user's browser, on the session's real database."""
    with django_db_blocker.unblock():
        client = Client()
        client.force_login(make_user(staff=True))
        yield client


def _assert_stack_alive(stack: Stack) -> None:
    assert stack.worker is not None and stack.worker.poll() is None, stack.worker_log.read_text()[-3000:]
    assert stack.scheduler is not None and stack.scheduler.poll() is None, stack.scheduler_log.read_text()[-3000:]


def _page(client: Client, arn: str) -> str:
    response = client.get(reverse("executions:detail", args=[Execution.objects.get(arn=arn).pk]))
    assert response.status_code == 200
    return response.content.decode()


def _quarantine(execution_arn: str) -> dict[str, Any] | None:
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT quarantined_at, quarantine FROM durable_execution WHERE arn = %s", (execution_arn,)
        ).fetchone()
    assert row is not None
    return row["quarantine"] if row["quarantined_at"] is not None else None


def test_handler_text_postgresql_cannot_store_is_shown_escaped_and_stops_nothing(
    lam: engine.LambdaClient, stack: Stack, unique: str, staff_client: Client
) -> None:
    name = _function(lam, POISON, f"poison-{unique}")
    succeeded, failed = _start(lam, name), _start(lam, name, fail=True)
    assert (_ended(lam, succeeded), _ended(lam, failed)) == ("SUCCEEDED", "FAILED")
    page = _page(staff_client, succeeded)
    assert "log line with a\\u0000b and \\ud800" in page  # a log line and print output, escaped
    assert "printed a\\u0000b \\ud800" in page
    assert "echo a\\u0000b \\ud800" in page  # the step's name
    assert "bad a\\u0000b \\ud800" in _page(staff_client, failed)  # the step's error
    assert _quarantine(succeeded) is _quarantine(failed) is None
    _assert_stack_alive(stack)


@pytest.mark.parametrize(
    "stored",
    [
        {"BackoffRate": 1e300, "InitialDelaySeconds": 1e-300, "MaxDelaySeconds": 1e300, "MaximumAttempts": 4},
        {"BackoffRate": None, "InitialDelaySeconds": 1e-300, "MaxDelaySeconds": 1e9, "MaximumAttempts": 4},
    ],
)
def test_a_bad_stored_retry_policy_still_retries_then_fails_the_execution(
    lam: engine.LambdaClient, stack: Stack, unique: str, stored: dict[str, Any]
) -> None:
    name = _function(lam, NOT_DURABLE, f"badpolicy-{unique}")
    with db.transaction() as conn:  # as stored before input was validated (NaN is stored as null)
        conn.execute("UPDATE durable_function SET invocation_retry = %s WHERE name = %s", (json.dumps(stored), name))
    arn = _start(lam, name)
    assert _ended(lam, arn) == "FAILED"
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Error"]["ErrorType"] == "InvalidHandlerOutput"
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM durable_invocation i JOIN durable_execution e "
            "ON e.id = i.execution_id WHERE e.arn = %s",
            (arn,),
        ).fetchone()
    assert row is not None and row["n"] == 4
    _assert_stack_alive(stack)


# --- quarantine -------------------------------------------------------------------------------


@contextmanager
def _held_back() -> Iterator[None]:
    """The test process's own starts are not sent to the worker: the test claims them itself."""

    class Holding:
        def invoke(self, execution_id: int, timeout: float) -> None:
            pass

        def call_plain(self, call: PlainCall) -> None:
            pass

    saved = current_dispatcher()
    set_dispatcher(Holding())
    try:
        yield
    finally:
        set_dispatcher(saved)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _lost_invocation_with_unreadable_journal(lam: engine.LambdaClient, name: str) -> str:
    """An invocation whose process died, leaving a journal the engine cannot make sense of."""
    with _held_back():
        arn = _start(lam, name)
    with db.transaction() as conn:
        execution_id = conn.execute("SELECT id FROM durable_execution WHERE arn = %s", (arn,)).fetchone()["id"]
    ticket = claim_invocation(execution_id)
    assert ticket is not None
    path = journal.journal_path(ticket.request_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"t": "body_start", "at": "2026-01-01T00:00:00+00:00"}) + "\n")  # no op_id
    with db.transaction() as conn:
        conn.execute(
            "UPDATE durable_invocation SET pid = %s WHERE execution_id = %s AND seq = %s",
            (_dead_pid(), execution_id, ticket.seq),
        )
    return arn


def test_an_item_a_loop_keeps_failing_on_is_quarantined_and_shown_while_others_go_on(
    lam: engine.LambdaClient, stack: Stack, unique: str, staff_client: Client
) -> None:
    waits = _function(lam, LONG_WAIT, f"other-{unique}")  # each needs the scheduler to fire its timer
    before = _start(lam, waits, seconds=2)
    bad = _lost_invocation_with_unreadable_journal(lam, _function(lam, POISON, f"quarantine-{unique}"))
    note = wait_until(lambda: _quarantine(bad), timeout=30, message="the quarantine")
    assert (note["loop"], note["failures"]) == ("recovery", QUARANTINE_AFTER)
    assert "KeyError" in note["error"]
    after = _start(lam, waits, seconds=1)
    assert (_ended(lam, before), _ended(lam, after)) == ("SUCCEEDED", "SUCCEEDED")
    page = _page(staff_client, bad)
    assert "Quarantined:" in page and "recovery loop failed on this execution 3 times" in page
    assert lam.get_durable_execution(DurableExecutionArn=bad)["Status"] == "RUNNING"  # left alone
    assert _quarantine(bad) == note  # not tried again
    _assert_stack_alive(stack)


# --- bounded re-dispatch ----------------------------------------------------------------------


@pytest.fixture
def broker() -> Any:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis"):
        pytest.skip("counts the messages of a Redis broker")
    return redis_client(url)


def _redispatches(arns: list[str]) -> list[int]:
    with db.transaction() as conn:
        rows = conn.execute("SELECT redispatches FROM durable_execution WHERE arn = ANY(%s)", (arns,)).fetchall()
    return [row["redispatches"] for row in rows]


def test_redispatch_sends_no_second_message_while_the_first_waits_in_the_queue(
    lam: engine.LambdaClient, stack: Stack, unique: str, broker: Any
) -> None:
    name = _function(lam, LONG_WAIT, f"redispatch-{unique}")
    stack.stop_worker()
    try:
        queued = broker.llen("durable")
        arns = [_start(lam, name, seconds=1) for _ in range(8)]
        assert broker.llen("durable") == queued + len(arns)
        for minutes in (1, 2, 4):  # long past the old 30 s, short of the backstop
            later = utcnow() + timedelta(minutes=minutes)
            assert redispatch_stranded(now=later) == 0
        assert broker.llen("durable") == queued + len(arns)
        broker.delete("durable")  # the broker loses every message: the backstop sends each again, once
        much_later = utcnow() + REDISPATCH_BACKSTOP + timedelta(seconds=30)
        sent = redispatch_stranded(now=much_later)
        assert redispatch_stranded(now=much_later) == 0
        assert broker.llen("durable") == sent
        assert _redispatches(arns) == [1] * len(arns)
    finally:
        stack.start_worker()
    assert [_ended(lam, arn) for arn in arns] == ["SUCCEEDED"] * len(arns)
