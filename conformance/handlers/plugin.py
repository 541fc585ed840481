"""Handlers for the 'plugin' conformance suite (10-x), written from each requirement's text.

SDK 3.0.0 registers instrumentation through plugin factories: ``durable_execution(plugins=[…])``
takes objects whose ``create_plugin(info)`` builds one plugin per invocation. Each plugin prints
one JSON object per hook to stdout, which the engine records as the invocation's log lines.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.plugin import (
    DurableInstrumentationPlugin,
    InvocationEndInfo,
    InvocationStartInfo,
    OperationEndInfo,
    OperationInfo,
    OperationStartInfo,
    OperationType,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
)
from aws_durable_execution_sdk_python.retries import RetryPresets, RetryStrategyConfig, create_retry_strategy

from conformance.runner import Spec

logger = logging.getLogger("conformance.plugin")


class RecordingPlugin(DurableInstrumentationPlugin):
    """Prints a {"plugin": <label>, "hook": …} record from each hook, stamped with the execution ARN."""

    def __init__(self, label: str, start: InvocationStartInfo) -> None:
        self.label = label
        self.arn = start.execution_arn

    def emit(self, hook: str, **fields: Any) -> None:
        print(json.dumps({"plugin": self.label, "hook": hook, **fields, "durableExecutionArn": self.arn}))

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.emit("invocation-start", first=info.is_first_invocation)

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self.emit("invocation-end", status=info.status.value)


def is_step(info: OperationInfo) -> bool:
    return info.operation_type is OperationType.STEP


class OperationPlugin(RecordingPlugin):
    """Adds the step operations' start and end (10-2)."""

    def on_operation_start(self, info: OperationStartInfo) -> None:
        if is_step(info):
            self.emit("operation-start", op=info.operation_id)

    def on_operation_end(self, info: OperationEndInfo) -> None:
        if is_step(info):
            self.emit("operation-end", op=info.operation_id, status=info.status.value)


class AttemptPlugin(RecordingPlugin):
    """Adds each step attempt's start and end, with its number and outcome (10-3)."""

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if is_step(info):
            self.emit("attempt-start", n=info.attempt, op=info.operation_id)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        if is_step(info):
            self.emit("attempt-end", n=info.attempt, outcome=info.outcome.value, op=info.operation_id)


class FaultyPlugin(RecordingPlugin):
    """Every hook prints its record and then raises: the SDK must contain it (10-4)."""

    def fail(self, hook: str) -> None:
        self.emit(hook)
        raise RuntimeError(f"{self.label} {hook} hook failed on purpose")

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.fail("invocation-start")

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self.fail("invocation-end")

    def on_operation_start(self, info: OperationStartInfo) -> None:
        if is_step(info):
            self.fail("operation-start")

    def on_operation_end(self, info: OperationEndInfo) -> None:
        if is_step(info):
            self.fail("operation-end")

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if is_step(info):
            self.fail("attempt-start")

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        if is_step(info):
            self.fail("attempt-end")


class Factory:
    """The plugin factory SDK 3.0.0 registers: one ``plugin_class`` instance per invocation."""

    def __init__(self, plugin_class: type[RecordingPlugin], label: str = "CONFPLUGIN") -> None:
        self.plugin_class = plugin_class
        self.label = label

    def create_plugin(self, info: InvocationStartInfo, /) -> RecordingPlugin:
        return self.plugin_class(self.label, info)


@durable_step
def greet(step_context: StepContext, name: str) -> str:
    print(f"Greeting step running for: {name}")
    return f"Hello, {name}!"


@durable_execution(plugins=[Factory(RecordingPlugin)])
def plugin_invocation_hooks(event: Any, context: DurableContext) -> str:
    """10-1: invocation start (first=true) before the step, end (SUCCEEDED) after it."""
    return context.step(greet(event))


@durable_execution(plugins=[Factory(OperationPlugin)])
def plugin_operation_hooks(event: Any, context: DurableContext) -> str:
    """10-2: the step's operation start and end carry the id the history records."""
    return context.step(greet(event))


ONE_RETRY = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=2, initial_delay=Duration.from_seconds(1), backoff_rate=1, jitter_strategy=JitterStrategy.NONE
        )
    )
)


@durable_execution(plugins=[Factory(AttemptPlugin)])
def plugin_attempt_hooks(event: Any, context: DurableContext) -> str:
    """10-3: attempt 1 fails, attempt 2 (after a 1 s retry delay) succeeds."""

    def unreliable(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            raise RuntimeError("first attempt fails on purpose")
        return "Operation succeeded"

    return context.step(unreliable, name="unreliable", config=ONE_RETRY)


@durable_execution(plugins=[Factory(FaultyPlugin, "CONFPLUGIN-FAULTY")])
def plugin_faulty(event: Any, context: DurableContext) -> str:
    """10-4: every hook raises; the execution does not notice."""
    return context.step(greet(event))


@durable_execution(plugins=[Factory(RecordingPlugin, "CONFPLUGIN-A"), Factory(RecordingPlugin, "CONFPLUGIN-B")])
def plugin_two(event: Any, context: DurableContext) -> str:
    """10-5: two plugins both see the invocation's start and end."""
    return context.step(greet(event))


@durable_execution(plugins=[Factory(RecordingPlugin)])
def plugin_first_invocation(event: Any, context: DurableContext) -> None:
    """10-6: a 2 s wait: first=true on the first invocation, first=false on its resume."""
    context.wait(Duration.from_seconds(2))


@durable_execution(plugins=[Factory(RecordingPlugin)])
def plugin_failed(event: Any, context: DurableContext) -> None:
    """10-7: the step always fails, without retry; the invocation ends FAILED."""

    def always_fails(step_context: StepContext) -> None:
        raise RuntimeError("the step fails on purpose")

    context.step(always_fails, name="always-fails", config=StepConfig(retry_strategy=RetryPresets.none()))


SPECS: dict[str, Spec] = {
    "10-1": Spec("plugin_invocation_hooks"),
    "10-2": Spec("plugin_operation_hooks"),
    "10-3": Spec("plugin_attempt_hooks"),
    "10-4": Spec("plugin_faulty"),
    "10-5": Spec("plugin_two"),
    "10-6": Spec("plugin_first_invocation"),
    "10-7": Spec("plugin_failed"),
}
