"""Handlers for the SDK contract tests. They run in the test process, so gates are plain Events."""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration, StepConfig
from aws_durable_execution_sdk_python.exceptions import InvokeError, StepError
from aws_durable_execution_sdk_python.retries import RetryPresets

# Keyed by the execution's input "gate": the test opens the gate, the handler reports progress.
ENTERED: defaultdict[str, threading.Event] = defaultdict(threading.Event)
GATES: defaultdict[str, threading.Event] = defaultdict(threading.Event)
AFTER_GATE: list[str] = []
RESPONSE_LIMIT = 6 * 1024 * 1024


class CustomError(Exception):
    """A user exception: its wire ErrorType is the qualified class name."""


class Outer:
    class NestedError(Exception):
        """Nested: the wire ErrorType uses the qualified name."""


def _blocker(gate: str) -> int:
    ENTERED[gate].set()
    GATES[gate].wait(20)
    return 2


def _after(gate: str) -> int:
    AFTER_GATE.append(gate)
    return 3


@durable_execution
def gated(event: dict[str, Any], context: DurableContext) -> int:
    gate = event["gate"]
    first = context.step(lambda _: 1, name="first")
    second = context.step(lambda _: _blocker(gate), name="blocker")
    return first + second + context.step(lambda _: _after(gate), name="after")


@durable_execution
def echo(event: Any, context: DurableContext) -> Any:
    return {"event": event, "replaying": context.is_replaying()}


@durable_execution
def raises_value_error(event: Any, context: DurableContext) -> None:
    raise ValueError("bad input")


@durable_execution
def raises_custom(event: Any, context: DurableContext) -> None:
    raise CustomError("custom failure")


def _declined(_: Any) -> None:
    raise ValueError("card declined")


@durable_execution
def step_fails(event: Any, context: DurableContext) -> None:
    context.step(_declined, name="charge", config=StepConfig(retry_strategy=RetryPresets.none()))


@durable_execution
def huge_result(event: dict[str, Any], context: DurableContext) -> str:
    # json.dumps adds two quotes: the result is above the SDK's threshold (6 MiB - 50) yet within 6 MiB.
    return "x" * (RESPONSE_LIMIT - 20)


@durable_execution
def oversized_invoke(event: dict[str, Any], context: DurableContext) -> Any:
    return context.invoke("anything", "x" * (1024 * 1024 + 10), name="too-big")


@durable_execution
def every_kind(event: dict[str, Any], context: DurableContext) -> None:
    """Leave one operation of every type in the store, then suspend on a long wait."""
    context.step(lambda _: [1, 2], name="ok")
    context.run_in_child_context(lambda child: child.step(lambda _: 2, name="inner"), name="child")
    context.create_callback(
        name="cb", config=CallbackConfig(timeout=Duration.from_hours(1), heartbeat_timeout=Duration.from_minutes(5))
    )
    with contextlib.suppress(StepError):
        context.step(_declined, name="bad", config=StepConfig(retry_strategy=RetryPresets.none()))
    with contextlib.suppress(InvokeError):
        context.invoke("engine-sdk-no-such-function", {"x": 1}, name="missing")
    context.wait(Duration.from_hours(1), name="long")
