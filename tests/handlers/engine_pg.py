"""Handlers for the engine's PostgreSQL + worker tests; they run in the Celery worker's children."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration
from aws_durable_execution_sdk_python.exceptions import CallbackError, InvokeError
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
