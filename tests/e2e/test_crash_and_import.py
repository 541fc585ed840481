"""A crash is reported at once, and a handler that cannot be loaded fails fast (issue 22,
points 2 and 7), with the real worker and scheduler processes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from engine import faults
from engine.duties.unit import utcnow
from engine.timeline import execution_timeline, queued_seconds
from executions import charts
from tests.conftest import Stack, wait_until

HANDLER = "tests.handlers.invocations.three_steps"


def _durable(lam: Any, name: str, handler: str, timeout: int = 10) -> str:
    lam.create_function(
        FunctionName=name,
        Handler=handler,
        Timeout=timeout,
        DurableConfig={"ExecutionTimeout": 120, "RetentionPeriodInDays": 1},
    )
    return name


def _start(lam: Any, name: str, **event: Any) -> str:
    return lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event))["DurableExecutionArn"]


def _finished(lam: Any, arn: str, timeout: float = 60) -> dict[str, Any]:
    wait_until(
        lambda: lam.get_durable_execution(DurableExecutionArn=arn)["Status"] != "RUNNING",
        timeout=timeout,
        message="execution to end",
    )
    return execution_timeline(arn)


def _step_started(arn: str, name: str) -> None:
    def started() -> bool:
        timeline = execution_timeline(arn)
        running = timeline["invocations"] and timeline["invocations"][-1]["ended_at"] is None
        return bool(running) and any(op["name"] == name for op in timeline["operations"])

    wait_until(started, timeout=30, message=f"step {name} to start")


def _killed_after_the_body(lam: Any, unique: str) -> tuple[str, Any]:
    name = _durable(lam, f"crash-{unique}", HANDLER, timeout=10)
    arn = _start(lam, name, sleep=0.2, a_sleep=1.5)
    _step_started(arn, "A")
    return arn, faults.arm(arn, "B", "after_body", user="tester")


def _killed_then_reinvoked(timeline: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Any]:
    assert timeline["execution"]["status"] == "SUCCEEDED"
    killed, again = timeline["invocations"]
    assert (killed["outcome"], killed["error"]["ErrorType"]) == ("killed", "Runtime.ExitError")
    assert again["reason"] == "recovery"
    fired_at = next(f["fired_at"] for f in timeline["faults"] if f["fired_at"] is not None)
    return killed, again, fired_at


def test_a_kill_after_the_body_is_reported_at_once_and_reinvoked(lam: Any, unique: str) -> None:
    """Not at the function's 10 s Timeout: within a second or two of the kill."""
    arn, _ = _killed_after_the_body(lam, unique)
    timeline = _finished(lam, arn, timeout=30)
    killed, again, fired_at = _killed_then_reinvoked(timeline)
    assert (killed["ended_at"] - fired_at).total_seconds() < 2
    assert (again["started_at"] - fired_at).total_seconds() < 2.5
    # The read model and the figure: a crash and its re-invoke, no pause; B's attempt cut at the kill.
    # The gap is the re-invoke's (kill → its message) plus its queue time (message → a free worker):
    # on a busy box the message goes out at once and the whole gap can be queue time.
    gap = (again["started_at"] - killed["ended_at"]).total_seconds()
    assert timeline["counters"]["reinvoke_seconds"] + queued_seconds(again) == pytest.approx(gap, abs=0.002)
    traces = {trace["name"]: trace for trace in charts.timeline_figure(timeline, now=utcnow())["data"]}
    assert len(traces["Crashed → re-invoke (backoff, not billed)"]["y"]) == 1
    assert "Suspended between invocations (not billed)" not in traces
    cut = traces["Attempt cut short (its invocation ended)"]
    assert cut["text"] == ["a1"] and "cut short<br>in invocation #1" in cut["hovertext"][0]


def test_the_workers_parent_process_reports_its_dead_child(lam: Any, stack: Stack, unique: str) -> None:
    """With the scheduler (whose liveness sweep would find it too) stopped, the worker's parent
    records the invocation its pool child was running when it died, and the function is invoked
    again. It learns of the death at once, or at worst at Celery's pool maintenance (every 5 s)."""
    stack.stop_scheduler()
    try:
        arn, _ = _killed_after_the_body(lam, unique)
        timeline = _finished(lam, arn, timeout=20)
    finally:
        stack.start_scheduler()
    _, again, fired_at = _killed_then_reinvoked(timeline)
    assert (again["started_at"] - fired_at).total_seconds() < 6
    assert "died; recorded and invoked again" in stack.worker_log.read_text()


# --- a handler that cannot be loaded ------------------------------------------------------------

MISSING_MODULE = "tests.handlers.not_a_module"


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            f"{MISSING_MODULE}.handler",
            "Runtime.ImportModuleError",
            f"Unable to import module '{MISSING_MODULE}': No module named '{MISSING_MODULE}'",
        ),
        (
            "tests.handlers.invocations.no_such_handler",
            "Runtime.HandlerNotFound",
            "Handler 'no_such_handler' missing on module 'tests.handlers.invocations'",
        ),
    ],
)
def test_a_durable_handler_that_cannot_be_loaded_fails_at_once(
    lam: Any, stack: Stack, unique: str, handler: str, error_type: str, message: str
) -> None:
    name = _durable(lam, f"noload-{unique}", handler)
    began = time.monotonic()
    response = lam.invoke(FunctionName=name, InvocationType="RequestResponse", Payload="{}")
    assert time.monotonic() - began < 10, "the synchronous caller got its answer at once"
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {"errorType": error_type, "errorMessage": message}
    arn = lam.list_durable_executions_by_function(FunctionName=name)["DurableExecutions"][0]["DurableExecutionArn"]
    execution = lam.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "FAILED"
    assert (execution["Error"]["ErrorType"], execution["Error"]["ErrorMessage"]) == (error_type, message)
    timeline = execution_timeline(arn)
    assert [(i["outcome"], i["error"]["ErrorType"]) for i in timeline["invocations"]] == [("failed", error_type)]
    logged = [line for line in stack.worker_log.read_text().splitlines() if name in line]
    assert any("ERROR" in line and error_type in line for line in logged), logged


def test_a_plain_handler_that_cannot_be_imported_answers_a_synchronous_caller(lam: Any, unique: str) -> None:
    name = f"plain-noload-{unique}"
    lam.create_function(FunctionName=name, Handler=f"{MISSING_MODULE}.handler", Timeout=5)
    response = lam.invoke(FunctionName=name, InvocationType="RequestResponse", Payload="{}")
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {
        "errorType": "Runtime.ImportModuleError",
        "errorMessage": f"Unable to import module '{MISSING_MODULE}': No module named '{MISSING_MODULE}'",
    }


def test_a_plain_event_that_cannot_be_imported_is_dead_lettered_after_lambdas_retries(lam: Any, unique: str) -> None:
    """An import error is a function error for Lambda's asynchronous invocations too: the event is
    retried (MaximumRetryAttempts) and then dead-lettered, each attempt with the runtime's error."""
    from engine import async_invoke

    name = f"plain-event-noload-{unique}"
    lam.create_function(FunctionName=name, Handler=f"{MISSING_MODULE}.handler", Timeout=5, MaximumRetryAttempts=1)
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload="{}", TimeScale=0.01)
    request_id = response["ResponseMetadata"]["RequestId"]

    def dead_lettered() -> dict[str, Any] | None:
        row = async_invoke.get_by_request_id(request_id)
        return row if row["status"] == async_invoke.DEAD_LETTERED else None

    row = wait_until(dead_lettered, timeout=30, message="the event to be dead-lettered")
    assert [a["error"]["ErrorType"] for a in row["attempts"]] == ["Runtime.ImportModuleError"] * 2


# --- release from quarantine --------------------------------------------------------------------


def test_a_released_execution_is_taken_again_by_the_scheduler_and_finishes(
    lam: Any, stack: Stack, unique: str, django_db_blocker: Any
) -> None:
    """Quarantined by the recovery loop (an unreadable journal), the cause removed, released
    from the execution page: the scheduler's loop records the lost invocation and the function
    is invoked again, to the end."""
    from django.test import Client
    from django.urls import reverse

    from engine import db, journal
    from engine.contrib.django.models import Execution
    from tests.dashboard.support import make_user
    from tests.e2e.test_resilience import POISON, _ended, _function, _lost_invocation_with_unreadable_journal
    from tests.e2e.test_resilience import _quarantine as quarantine_note

    arn = _lost_invocation_with_unreadable_journal(lam, _function(lam, POISON, f"release-{unique}"))
    wait_until(lambda: quarantine_note(arn), timeout=30, message="the quarantine")
    time.sleep(1.5)  # the loop leaves it alone: nothing changes while it is quarantined
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    with db.transaction() as conn:
        request_id = conn.execute(
            "SELECT i.request_id FROM durable_invocation i JOIN durable_execution e ON e.id = i.execution_id"
            " WHERE e.arn = %s",
            (arn,),
        ).fetchone()["request_id"]
    journal.discard(request_id)  # the operator fixed the cause
    with django_db_blocker.unblock():
        client = Client()
        client.force_login(make_user(staff=True))
        pk = Execution.objects.get(arn=arn).pk
        response = client.post(reverse("executions:release_quarantine", args=[pk]), follow=True)
    assert "Released from quarantine" in response.content.decode()
    assert _ended(lam, arn, timeout=30) == "SUCCEEDED"
    assert quarantine_note(arn) is None
    outcomes = [i["outcome"] for i in execution_timeline(arn)["invocations"]]
    assert outcomes == ["crashed", "succeeded"]
