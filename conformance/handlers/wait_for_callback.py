"""Handlers for the 'wait_for_callback' conformance suite, written from each requirement's text."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, WaitForCallbackConfig
from aws_durable_execution_sdk_python.exceptions import CallbackError
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.serdes import JsonSerDes
from aws_durable_execution_sdk_python.types import WaitForCallbackContext

from conformance.runner import Spec


def register(callback_id: str, context: WaitForCallbackContext) -> None:
    """The submitter: the test driver finds the callback id in the history, so nothing to do."""


def failing_submitter(callback_id: str, context: WaitForCallbackContext) -> None:
    raise RuntimeError("submitter could not reach the external system")


@durable_step
def fixed_data(step_context: StepContext) -> dict[str, str]:
    return {"data": "fixed"}


@durable_execution
def basic(event: str, context: DurableContext) -> Any:
    """7-1: one wait_for_callback named after the input; return the payload."""
    return context.wait_for_callback(register, name=event)


@durable_execution
def named(event: Any, context: DurableContext) -> Any:
    """7-2: the static name "approval"."""
    return context.wait_for_callback(register, name="approval")


@durable_execution
def anonymous(event: Any, context: DurableContext) -> Any:
    """7-3: only an inline submitter and no name, so the operation has no Name."""
    return context.wait_for_callback(lambda callback_id, ctx: None)


@durable_execution
def external_failure(event: str, context: DurableContext) -> Any:
    """7-4: the external system rejects; the handler does not catch it."""
    return context.wait_for_callback(register, name=event)


@durable_execution
def timeout(event: str, context: DurableContext) -> Any:
    """7-5: a 3 s timeout and nobody answers; not caught."""
    config = WaitForCallbackConfig(timeout=Duration.from_seconds(3))
    return context.wait_for_callback(register, name=event, config=config)


@durable_execution
def caught_failure(event: str, context: DurableContext) -> str:
    """7-6: the external failure is caught and a fixed recovery message returned."""
    try:
        context.wait_for_callback(register, name=event)
    except CallbackError:
        return "recovered"
    return "not failed"


@durable_execution
def submitter_retries_exhausted(event: str, context: DurableContext) -> Any:
    """7-7: the submitter always throws; 2 attempts, 1 s apart, then the operation fails."""
    retry = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=2,
            initial_delay=Duration.from_seconds(1),
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    config = WaitForCallbackConfig(retry_strategy=retry)
    return context.wait_for_callback(failing_submitter, name=event, config=config)


@durable_execution
def inside_child(event: str, context: DurableContext) -> Any:
    """7-8: the wait_for_callback runs inside a child context named "wrapper"."""
    return context.run_in_child_context(lambda child: child.wait_for_callback(register, name=event), name="wrapper")


@durable_execution
def two_sequential(event: Any, context: DurableContext) -> Any:
    """7-9: "first" then "second"; return the second result."""
    context.wait_for_callback(register, name="first")
    return context.wait_for_callback(register, name="second")


@durable_execution
def after_wait_and_step(event: str, context: DurableContext) -> Any:
    """7-10: a 1 s wait, a top-level step, then the wait_for_callback."""
    context.wait(Duration.from_seconds(1))
    context.step(fixed_data())
    return context.wait_for_callback(register, name=event)


@durable_execution
def json_result(event: str, context: DurableContext) -> Any:
    """7-11: deserialize the payload as a JSON object and return its "status" field."""
    config = WaitForCallbackConfig(serdes=JsonSerDes())
    return context.wait_for_callback(register, name=event, config=config)["status"]


@durable_execution
def heartbeat_timeout(event: str, context: DurableContext) -> Any:
    """7-12: a 5 s heartbeat timeout and no heartbeat; not caught."""
    config = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
    return context.wait_for_callback(register, name=event, config=config)


@durable_execution
def heartbeat_then_success(event: str, context: DurableContext) -> Any:
    """7-13: a 10 s heartbeat timeout kept alive by a heartbeat, then a success."""
    config = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(10))
    return context.wait_for_callback(register, name=event, config=config)


@durable_execution
def caught_timeout(event: str, context: DurableContext) -> str:
    """7-14: a 3 s timeout that the handler catches, returning a fixed message."""
    config = WaitForCallbackConfig(timeout=Duration.from_seconds(3))
    try:
        context.wait_for_callback(register, name=event, config=config)
    except CallbackError:
        return "timed-out-handled"
    return "not timed out"


@durable_execution
def empty_result(event: str, context: DurableContext) -> Any:
    """7-15: a success without a payload; the handler returns the empty result."""
    return context.wait_for_callback(register, name=event)


SPECS: dict[str, Spec] = {
    "7-1": Spec("basic"),
    "7-2": Spec("named"),
    "7-3": Spec("anonymous"),
    "7-4": Spec("external_failure"),
    "7-5": Spec("timeout"),
    "7-6": Spec("caught_failure"),
    "7-7": Spec("submitter_retries_exhausted"),
    "7-8": Spec("inside_child"),
    "7-9": Spec("two_sequential"),
    "7-10": Spec("after_wait_and_step"),
    "7-11": Spec("json_result"),
    "7-12": Spec("heartbeat_timeout"),
    "7-13": Spec("heartbeat_then_success"),
    "7-14": Spec("caught_timeout"),
    "7-15": Spec("empty_result"),
}
