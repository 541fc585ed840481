"""Handlers for the engine's PostgreSQL + worker tests; they run in the Celery worker's children."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.exceptions import CallbackError, InvokeError
from aws_durable_execution_sdk_python.retries import JitterStrategy, RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.types import StepContext
from aws_durable_execution_sdk_python.waits import WaitForConditionConfig, WaitForConditionDecision


def _seconds(event: dict[str, Any], key: str) -> Duration:
    return Duration.from_seconds(event.get(key) or 0)  # zero means "none"


@durable_execution
def parked(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Wait on one callback (optional timeout/heartbeat); return what it delivered."""
    config = CallbackConfig(timeout=_seconds(event, "timeout"), heartbeat_timeout=_seconds(event, "heartbeat"))
    callback = context.create_callback(name="parked", config=config)
    try:
        return {"result": callback.result()}
    except CallbackError as exc:
        return {"error_type": exc.error_type, "message": exc.message}


@durable_execution
def many_callbacks(event: dict[str, Any], context: DurableContext) -> list[str]:
    callbacks = [context.create_callback(name=f"cb-{i}") for i in range(event["n"])]
    outcomes = []
    for callback in callbacks:
        try:
            outcomes.append(f"ok:{callback.result()}")
        except CallbackError as exc:
            outcomes.append(f"err:{exc.message}")
    return outcomes


def _hold(path: str) -> str:
    Path(path + ".entered").touch()
    deadline = time.monotonic() + 30
    while not Path(path + ".release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return "held"


def _after(path: str) -> str:
    Path(path + ".after").touch()
    return "after"


@durable_execution
def holding(event: dict[str, Any], context: DurableContext) -> list[str]:
    """A step that holds the invocation until the test creates ``<path>.release``."""
    path = event["path"]
    return [context.step(lambda _: _hold(path), name="hold"), context.step(lambda _: _after(path), name="after")]


@durable_execution
def steps(event: dict[str, Any], context: DurableContext) -> int:
    total = 0
    for i in range(event["n"]):
        total += context.step(lambda _, i=i: i, name=f"s{i}")
    return total


@durable_execution
def long_wait(event: dict[str, Any], context: DurableContext) -> str:
    context.wait(Duration.from_seconds(event["seconds"]), name="long")
    return "woke"


@durable_execution
def invoker(event: dict[str, Any], context: DurableContext) -> Any:
    try:
        return {"result": context.invoke(event["target"], event["payload"], name="call")}
    except InvokeError as exc:
        return {"error_type": exc.error_type, "message": exc.message}


@durable_execution
def durable_child(event: dict[str, Any], context: DurableContext) -> dict[str, int]:
    return {"doubled": context.step(lambda _: event["n"] * 2, name="double")}


@durable_execution
def failing_child(event: dict[str, Any], context: DurableContext) -> None:
    raise ValueError(f"child refused {event['n']}")


def plain_child(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"plain": event["n"] + 1}


@durable_execution
def mapper(event: dict[str, Any], context: DurableContext) -> list[int]:
    def times_ten(ctx: DurableContext, item: int, index: int, items: Any) -> int:
        return ctx.step(lambda _: item * 10, name="times-ten")

    return context.map(event["items"], times_ten, name="tens").get_results()


@durable_execution
def poller(event: dict[str, Any], context: DurableContext) -> dict[str, int]:
    target = event["target"]

    def strategy(state: dict[str, int], attempt: int) -> WaitForConditionDecision:
        if state["n"] >= target:
            return WaitForConditionDecision.stop_polling()
        return WaitForConditionDecision.continue_waiting(Duration.from_seconds(1))

    config = WaitForConditionConfig(wait_strategy=strategy, initial_state={"n": 0})
    return context.wait_for_condition(lambda state, ctx: {"n": state["n"] + 1}, config, name="poll")


# --- a database crash in the middle of a run (tests/e2e/test_database_crash.py) ---------------


def _ledger(event: dict[str, Any], line: str) -> None:
    """Write down a body's run in a file: outside the database, which a crash cannot take back."""
    with open(event["ledger"], "a", encoding="utf-8") as ledger:
        ledger.write(line + "\n")


def _crash_database_once(event: dict[str, Any], name: str) -> None:
    """SIGQUIT the database's postmaster (an immediate shutdown: what its WAL buffers hold and no
    disk has is lost, as in a crash) the first time the code named ``name`` runs; wait until it is gone."""
    marker = Path(f"{event['ledger']}.{name}")
    if marker.exists():
        return
    marker.touch()
    pid = int(Path(event["postmaster_pid_file"]).read_text().split()[0])
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@durable_execution
def crash_mid_run(event: dict[str, Any], context: DurableContext) -> str:
    """Two database crashes: one right after three at-least-once steps (the last one's end at
    least was never flushed to disk), one in an at-most-once step's body (its START was)."""
    for i in range(3):
        context.step(lambda _, i=i: _ledger(event, f"before-{i}"), name=f"before-{i}")
    _crash_database_once(event, "between-steps")  # handler code: it runs again on each replay

    def charge(step: StepContext) -> str:
        _ledger(event, f"charge attempt {step.attempt}")
        _crash_database_once(event, "in-charge")
        return "charged"

    once = StepConfig(
        step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=3, initial_delay=Duration.from_seconds(1), jitter_strategy=JitterStrategy.NONE
            )
        ),
    )
    return context.step(charge, name="charge", config=once)
