"""Handlers for the 'child' conformance suite (3-x), written from each requirement's text."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from aws_durable_execution_sdk_python import (
    ChildContextError,
    DurableContext,
    StepContext,
    durable_execution,
    durable_step,
    durable_with_child_context,
)
from aws_durable_execution_sdk_python.config import ChildConfig, Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.retries import RetryPresets, RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

from conformance.runner import Spec

REPLAY_LOGGER = logging.getLogger("conformance.replay")

ONE_SECOND = Duration.from_seconds(1)
# Retries wait 1 s without jitter so the suite stays fast and deterministic.
NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())
RETRY_TWICE = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(max_attempts=2, initial_delay=ONE_SECOND, jitter_strategy=JitterStrategy.NONE)
    )
)
# Async START checkpoints are batched for up to 1 s; a crash must come after they are persisted.
CHECKPOINT_FLUSH_SECONDS = 2.5
LARGE_RESULT_BYTES = 300 * 1024


@durable_step
def echo(step_context: StepContext, value: Any) -> Any:
    return value


@durable_step
def always_fails(step_context: StepContext) -> None:
    raise RuntimeError("step failed on purpose")


@durable_step
def fails_first_attempt(step_context: StepContext, value: str) -> str:
    if step_context.attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    return value


@durable_execution
def child_basic(event: str, context: DurableContext) -> str:
    """3-1: an unnamed child context with one step that returns the input."""
    return context.run_in_child_context(lambda child: child.step(echo(event)))


@durable_execution
def child_named(event: dict[str, str], context: DurableContext) -> str:
    """3-2: the child context is named after the first input and returns the second."""
    return context.run_in_child_context(lambda child: child.step(echo(event["value"])), name=event["name"])


@durable_with_child_context
def two_steps(child: DurableContext, value: str) -> str:
    first = child.step(echo(value), name="first")
    return child.step(echo(first), name="second")


@durable_execution
def child_sequential_steps(event: str, context: DurableContext) -> str:
    """3-3: two sequential steps in one child; the second takes the first's result."""
    return context.run_in_child_context(two_steps(event))


@durable_with_child_context
def failing_step_child(child: DurableContext) -> None:
    child.step(always_fails(), config=NO_RETRY)


@durable_execution
def child_error(event: Any, context: DurableContext) -> None:
    """3-4: the inner step fails without retry; the ChildContextError fails the execution."""
    context.run_in_child_context(failing_step_child())


@durable_execution
def child_error_caught(event: str, context: DurableContext) -> str:
    """3-5: the child's failure is caught and a recovery step returns the input."""
    try:
        context.run_in_child_context(lambda child: child.step(always_fails(), config=NO_RETRY))
    except ChildContextError as error:
        # The requirement is an explicit try/catch that lets the handler carry on.
        context.logger.info(f"child failed and was caught: {error}")
    return context.step(echo(event), name="recovery")


@durable_with_child_context
def inner_child(child: DurableContext, value: str) -> str:
    return child.step(echo(value), name="inner-step")


@durable_with_child_context
def outer_child(child: DurableContext, value: str) -> str:
    child.step(echo(value), name="outer-step")
    return child.run_in_child_context(inner_child(value))


@durable_execution
def child_nested(event: str, context: DurableContext) -> str:
    """3-6: an outer child with a step and an inner child with its own step."""
    return context.run_in_child_context(outer_child(event))


@durable_with_child_context
def retrying_child(child: DurableContext, value: str) -> str:
    return child.step(fails_first_attempt(value), config=RETRY_TWICE)


@durable_execution
def child_step_retry(event: str, context: DurableContext) -> str:
    """3-7: the step fails once, is retried after its delay and then succeeds."""
    return context.run_in_child_context(retrying_child(event))


@durable_with_child_context
def exhausting_child(child: DurableContext) -> None:
    child.step(always_fails(), config=RETRY_TWICE)


@durable_execution
def child_retry_exhausted(event: Any, context: DurableContext) -> None:
    """3-8: the step always fails; after 2 attempts the child and the execution fail."""
    context.run_in_child_context(exhausting_child())


@durable_execution
def child_replay_cached(event: str, context: DurableContext) -> str:
    """3-9: a child then a wait; the replay takes the child's cached result."""
    result = context.run_in_child_context(lambda child: child.step(echo(event)))
    context.wait(ONE_SECOND)
    return result


@durable_with_child_context
def step_then_wait(child: DurableContext, value: str) -> str:
    result = child.step(echo(value))
    child.wait(ONE_SECOND)
    return result


@durable_execution
def child_step_and_wait(event: str, context: DurableContext) -> str:
    """3-10: a step then a wait inside the child."""
    return context.run_in_child_context(step_then_wait(event))


@durable_with_child_context
def large_result_child(child: DurableContext, value: str) -> str:
    # "Replay logging enabled": the Python SDK's context logger stays silent while replaying and has
    # no switch for it, so a plain logger makes the re-run of this body observable.
    REPLAY_LOGGER.info("building a large result from %s", value)
    small = child.step(echo(value))
    # Larger than the checkpoint limit, so the SDK closes the child with ReplayChildren.
    return small * (LARGE_RESULT_BYTES // len(small) + 1)


@durable_execution
def child_large_payload(event: str, context: DurableContext) -> int:
    """3-11: the child's result exceeds 256 KB; replay re-runs the child to rebuild it."""
    large = context.run_in_child_context(large_result_child(event))
    context.wait(ONE_SECOND)
    # The large value only checks the round trip; the execution result stays small.
    return len(large)


@durable_execution
def child_interrupted(event: str, context: DurableContext) -> str:
    """3-12: the process dies inside the child's step after its START is checkpointed."""
    first_invocation = not context.is_replaying()

    def crash_once(step_context: StepContext) -> str:
        if first_invocation:
            time.sleep(CHECKPOINT_FLUSH_SECONDS)
            os._exit(1)
        return event

    return context.run_in_child_context(lambda child: child.step(crash_once))


@durable_with_child_context
def only_wait(child: DurableContext, value: str) -> str:
    child.wait(ONE_SECOND)
    return value


@durable_execution
def child_wait_only(event: str, context: DurableContext) -> str:
    """3-13: a child holding only a wait, then a step outside it."""
    context.run_in_child_context(only_wait(event))
    return context.step(echo(event))


class UpperCaseSerDes(SerDes[str]):
    """Serializes to the upper-cased text itself; reading gives the stored text back."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return value.upper()

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        return data


@durable_with_child_context
def echo_child(child: DurableContext, value: str) -> str:
    return child.step(echo(value))


@durable_execution
def child_custom_serdes(event: str, context: DurableContext) -> str:
    """3-14: the child's result is checkpointed through an upper-casing serdes."""
    return context.run_in_child_context(echo_child(event), config=ChildConfig(serdes=UpperCaseSerDes()))


@durable_with_child_context
def raising_child(child: DurableContext) -> None:
    raise RuntimeError("child body failed on purpose")


@durable_execution
def child_error_direct(event: Any, context: DurableContext) -> None:
    """3-15: the child body raises without any durable operation."""
    context.run_in_child_context(raising_child())


@durable_with_child_context
def null_child(child: DurableContext) -> None:
    return None


@durable_execution
def child_returns_null(event: Any, context: DurableContext) -> None:
    """3-16: the child returns None directly."""
    return context.run_in_child_context(null_child())


@durable_with_child_context
def logging_child(child: DurableContext, value: str) -> str:
    child.logger.info(f"child received {value}")
    return value


@durable_execution
def child_logger_only(event: str, context: DurableContext) -> str:
    """3-17: a child that only logs, then a wait; replay must not re-run the child."""
    result = context.run_in_child_context(logging_child(event))
    context.wait(ONE_SECOND)
    return result


@durable_execution
def child_mixed_replays(event: str, context: DurableContext) -> str:
    """3-18: step+wait inside a child, then a step and a wait at the top level."""
    context.run_in_child_context(step_then_wait(event))
    result = context.step(echo(event), name="outer-step")
    context.wait(ONE_SECOND)
    return result


SPECS: dict[str, Spec] = {
    "3-1": Spec("child_basic"),
    "3-2": Spec("child_named"),
    "3-3": Spec("child_sequential_steps"),
    "3-4": Spec("child_error"),
    "3-5": Spec("child_error_caught"),
    "3-6": Spec("child_nested"),
    "3-7": Spec("child_step_retry"),
    "3-8": Spec("child_retry_exhausted"),
    "3-9": Spec("child_replay_cached"),
    "3-10": Spec("child_step_and_wait"),
    "3-11": Spec("child_large_payload"),
    "3-12": Spec("child_interrupted"),
    "3-13": Spec("child_wait_only"),
    "3-14": Spec("child_custom_serdes"),
    "3-15": Spec("child_error_direct"),
    "3-16": Spec("child_returns_null"),
    "3-17": Spec("child_logger_only"),
    "3-18": Spec("child_mixed_replays"),
}
