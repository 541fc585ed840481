"""Scenarios that take the duties through every path a handler can: steps, retries, waits,
callbacks (answered and timed out), a stop, the execution's deadline, child contexts, parallel
branches and a chained invoke answered while its caller runs. Each runs the real SDK handler in
this process against whichever store is in use, moving a fake clock instead of waiting, and
returns the ARN of what it started.

The unit tests (``unit_tests/test_duties.py``) run them on the memory store and check what a
reader of the history would; ``tests/engine/test_store_contract.py`` runs them on PostgreSQL and
on the memory store and requires both to leave the same record (``record``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import engine
from engine import invoker, speedups
from engine.duties.timers import fire_due_timers
from engine.duties.unit import PlainCall, current_dispatcher, set_dispatcher
from engine.rows import Invocation
from engine.store import store
from engine.store.memory import FakeClock

# Both stores' runs start at this moment, so their timestamps agree to the microsecond; it lies
# ahead of the wall clock, so a scheduler running beside a PostgreSQL run never finds these
# timers due (or these leases expired) and leaves them to the test.
START = datetime(2036, 1, 1, tzinfo=UTC)


class InlineDispatcher:
    """Queues owed invocations; ``Driver.run_owed`` runs them in this process, in order."""

    def __init__(self) -> None:
        self.owed: list[int] = []
        self.plain: list[PlainCall] = []
        # Plain functions answer at once, inside the invocation that called them, instead of queueing.
        self.answer_plain_at_once = False

    def invoke(self, execution_id: int, timeout: float) -> None:
        self.owed.append(execution_id)

    def call_plain(self, call: PlainCall) -> None:
        if self.answer_plain_at_once:
            invoker.call_plain_function(call)
        else:
            self.plain.append(call)


@contextmanager
def inline_dispatch() -> Iterator[InlineDispatcher]:
    """Owed invocations queue in an InlineDispatcher, and the SDK seams are installed as the
    worker installs them (without them the SDK's checkpointing thread makes every invocation
    wait about 0.1 s for its batch); both are as they were afterwards."""
    saved, seams_before = current_dispatcher(), speedups.installed()
    dispatcher = InlineDispatcher()
    set_dispatcher(dispatcher)
    added = speedups.install() - seams_before
    try:
        yield dispatcher
    finally:
        speedups.uninstall(added)
        set_dispatcher(saved)


@dataclass
class Driver:
    """Runs a scenario: registers functions, starts executions, runs what is owed, moves time."""

    dispatcher: InlineDispatcher
    clock: FakeClock
    suffix: str = ""  # PostgreSQL keeps functions between tests: their names get one
    client: engine.LambdaClient = field(default_factory=engine.client)

    def register(self, name: str, handler: str, *, timeout: int = 30, execution_timeout: int = 300) -> str:
        full_name = f"{name}{self.suffix}"
        config = {"ExecutionTimeout": execution_timeout, "RetentionPeriodInDays": 1}
        self.client.create_function(FunctionName=full_name, Handler=handler, Timeout=timeout, DurableConfig=config)
        return full_name

    def start(self, name: str, payload: Any = None) -> str:
        body = None if payload is None else json.dumps(payload)
        answer = self.client.invoke(FunctionName=name, InvocationType="Event", Payload=body)
        return str(answer["DurableExecutionArn"])

    def run_owed(self, limit: int = 50) -> int:
        """Run every owed invocation (and those they make owed); return how many ran."""
        ran = 0
        while self.dispatcher.owed:
            assert ran < limit, "invocations keep coming: the execution does not settle"
            ran += invoker.run_invocation(self.dispatcher.owed.pop(0))
        return ran

    def advance(self, seconds: float) -> int:
        """Move the clock on and fire what came due, as the scheduler would; return executions woken."""
        self.clock.advance(seconds)
        return fire_due_timers()

    def execution(self, arn: str) -> dict[str, Any]:
        return dict(self.client.get_durable_execution(DurableExecutionArn=arn))

    def events(self, arn: str) -> list[dict[str, Any]]:
        answer = self.client.get_durable_execution_history(
            DurableExecutionArn=arn, MaxItems=1000, IncludeExecutionData=True
        )
        return list(answer["Events"])

    def history(self, arn: str) -> list[str]:
        return [event["EventType"] for event in self.events(arn)]

    def callback_id(self, arn: str, name: str | None = None) -> str:
        for event in self.events(arn):
            if event["EventType"] == "CallbackStarted" and (name is None or event.get("Name") == name):
                return str(event["CallbackStartedDetails"]["CallbackId"])
        raise AssertionError(f"no callback {name or ''} started in {self.history(arn)}")


Scenario = Callable[[Driver], str]


def step_wait_step(run: Driver) -> str:
    arn = run.start(run.register("hello", "demos.hello.handler"), {"name": "Ada", "wait_seconds": 5})
    run.run_owed()
    run.advance(4)  # not due yet: nothing is invoked
    run.run_owed()
    run.advance(1)
    run.run_owed()
    return arn


def retry_then_succeed(run: Driver) -> str:
    arn = run.start(run.register("retry", "conformance.handlers.step.retry_then_succeed"))
    run.run_owed()
    run.advance(1)
    run.run_owed()
    return arn


def retry_exhaustion(run: Driver) -> str:
    arn = run.start(run.register("exhaust", "conformance.handlers.step.retry_exhaustion"))
    run.run_owed()
    for _ in range(3):
        run.advance(1)
        run.run_owed()
    return arn


def callback_answered(run: Driver) -> str:
    arn = run.start(run.register("approval", "conformance.handlers.callback.basic"), "approval")
    run.run_owed()
    run.client.send_durable_execution_callback_success(CallbackId=run.callback_id(arn), Result=b'{"ok": true}')
    run.run_owed()
    return arn


def callback_answered_while_running(run: Driver) -> str:
    arn = run.start(run.register("self-answering", "unit_tests.handlers.answered_while_running"))
    run.run_owed()
    return arn


def callback_timed_out(run: Driver) -> str:
    arn = run.start(run.register("late", "conformance.handlers.callback.general_timeout"), "late")
    run.run_owed()
    run.advance(5)
    run.run_owed()
    return arn


def stopped_while_waiting(run: Driver) -> str:
    arn = run.start(run.register("stopped", "demos.hello.handler"), {"wait_seconds": 60})
    run.run_owed()
    run.client.stop_durable_execution(DurableExecutionArn=arn)
    run.advance(60)  # the wait's timer went with the stop: nothing wakes
    run.run_owed()
    return arn


def execution_deadline(run: Driver) -> str:
    name = run.register("deadline", "demos.hello.handler", execution_timeout=10)
    arn = run.start(name, {"wait_seconds": 600})
    run.run_owed()
    run.advance(10)
    run.run_owed()
    return arn


def child_step_and_wait(run: Driver) -> str:
    arn = run.start(run.register("child", "conformance.handlers.child.child_step_and_wait"), "data")
    run.run_owed()
    for _ in range(3):
        run.advance(2)
        run.run_owed()
    return arn


def chained_invoke_answered_while_running(run: Driver) -> str:
    """The target answers before the parent's invocation has ended: its outcome waits on the
    operation until that invocation ends."""
    target = f"plain-echo{run.suffix}"
    run.client.create_function(FunctionName=target, Handler="unit_tests.handlers.plain_echo", Timeout=5)
    run.dispatcher.answer_plain_at_once = True
    try:
        arn = run.start(run.register("invoker", "unit_tests.handlers.invokes_target"), {"target": target})
        run.run_owed()
    finally:
        run.dispatcher.answer_plain_at_once = False
    return arn


SCENARIOS: dict[str, Scenario] = {
    "step_wait_step": step_wait_step,
    "retry_then_succeed": retry_then_succeed,
    "retry_exhaustion": retry_exhaustion,
    "callback_answered": callback_answered,
    "callback_answered_while_running": callback_answered_while_running,
    "callback_timed_out": callback_timed_out,
    "stopped_while_waiting": stopped_while_waiting,
    "execution_deadline": execution_deadline,
    "child_step_and_wait": child_step_and_wait,
    "chained_invoke_answered_while_running": chained_invoke_answered_while_running,
}


# --- what a run leaves behind, read through the Store interface ------------------------------

_ARN = re.compile(r"arn:aws:lambda:[^\"\s]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _utc(value: Any) -> str:
    """Timestamps as UTC text: PostgreSQL hands them back in its session's time zone."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _anonymous(value: Any, names: dict[str, str]) -> Any:
    """``value`` with its ARNs, uuids and callback ids named by first appearance: they are
    random in each run, and only where they reappear matters."""
    text = json.dumps(value, sort_keys=True, default=_utc)
    for pattern in (_ARN, _UUID):
        for found in pattern.findall(text):
            names.setdefault(found, f"<id{len(names)}>")
    for found, name in sorted(names.items(), key=lambda item: -len(item[0])):
        text = text.replace(found, name)
    return json.loads(text)


def _invocation_record(invocation: Invocation) -> dict[str, Any]:
    """What two runs of a scenario share (not the row id, the worker's host and pid or the request id)."""
    kept = ("seq", "reason", "started_at", "ended_at", "deadline", "outcome", "error", "dispatched_at")
    return {key: getattr(invocation, key) for key in kept}


def record(arn: str) -> dict[str, Any]:
    """The execution row, its operations, history, invocations and timers, made comparable."""
    from engine import db

    with db.transaction() as conn:
        row = store.execution_by_arn(conn, arn)
        assert row is not None, arn
        execution_id = row["id"]
        ops = store.load_ops(conn, execution_id)
        events = store.read_events(conn, execution_id, after=0, limit=10_000, reverse=False)
        invocations = [store.get_invocation(conn, execution_id, seq) for seq in range(1, row["invocation_seq"] + 1)]
        deadline = store.execution_timeout_due(conn, execution_id)
    names: dict[str, str] = {}
    callback_ids = {
        (op.get("CallbackDetails") or {}).get("CallbackId") for op in ops.values() if op.get("CallbackDetails")
    }
    for callback_id in sorted(i for i in callback_ids if i):
        names.setdefault(callback_id, f"<callback{len(names)}>")
    return _anonymous(
        {
            "execution": {key: value for key, value in row.items() if key != "id"},  # ids differ by store
            "operations": list(ops.values()),
            "events": [{"id": e["event_id"], "at": e["timestamp"], "doc": e["doc"]} for e in events],
            "invocations": [None if i is None else _invocation_record(i) for i in invocations],
            "execution_timeout_due": deadline,
        },
        names,
    )
