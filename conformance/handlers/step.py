"""Handlers for the 'step' conformance suite, written from each requirement's text."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.exceptions import StepError
from aws_durable_execution_sdk_python.retries import (
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    create_retry_strategy,
)
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

from conformance.runner import Spec

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


class TransientError(Exception):
    """A failure the retry strategies of 1-15 and 1-16 single out by type."""


def _fixed_retry(max_attempts: int, semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY) -> StepConfig:
    """Retry every second, no jitter, so the history shows NextAttemptDelaySeconds=1."""
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=max_attempts,
            initial_delay=Duration.from_seconds(1),
            backoff_rate=1,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return StepConfig(retry_strategy=strategy, step_semantics=semantics)


@durable_step
def greet(step_context: StepContext, name: str) -> str:
    return f"Hello, {name}!"


@durable_execution
def step_basic(event: Any, context: DurableContext) -> str:
    """1-1: a single step that takes input and returns a greeting string."""
    return context.step(greet(event))


@durable_execution
def step_named(event: Any, context: DurableContext) -> str:
    """1-2: a single step with an explicit name."""
    return context.step(lambda _: f"Hello, {event}!", name="custom_step_name")


@durable_step
def step_one(step_context: StepContext) -> str:
    return "first"


@durable_step
def step_two(step_context: StepContext, previous: str) -> str:
    return f"{previous}_second"


@durable_execution
def step_sequential(event: Any, context: DurableContext) -> str:
    """1-3: the second step uses the first step's result."""
    result1 = context.step(step_one())
    return context.step(step_two(result1))


@durable_step
def build_response(step_context: StepContext, event: dict[str, Any]) -> dict[str, Any]:
    return {"user": {"name": event["name"], "tags": list(event["tags"])}, "count": len(event["tags"])}


@durable_execution
def step_complex(event: Any, context: DurableContext) -> dict[str, Any]:
    """1-4: a step returning a nested object survives serialization."""
    return context.step(build_response(event))


@durable_step
def do_nothing(step_context: StepContext) -> None:
    return None


@durable_execution
def step_none(event: Any, context: DurableContext) -> None:
    """1-5: a step that returns None."""
    return context.step(do_nothing())


class UppercaseSerDes(SerDes[Any]):
    """Upper-cases every string value when serializing (1-6)."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        return json.dumps(_upper(value))

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return json.loads(data)


def _upper(value: Any) -> Any:
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, list):
        return [_upper(v) for v in value]
    if isinstance(value, dict):
        return {k: _upper(v) for k, v in value.items()}
    return value


@durable_step
def return_input(step_context: StepContext, value: Any) -> Any:
    return value


@durable_execution
def step_custom_serdes(event: Any, context: DurableContext) -> Any:
    """1-6: the step's custom serdes upper-cases the result it checkpoints.

    The SDK returns the value round-tripped through the serdes, so the first run already sees it upper-cased.
    """
    return context.step(return_input(event), config=StepConfig(serdes=UppercaseSerDes()))


@durable_step
def greet_logged(step_context: StepContext, name: str) -> str:
    step_context.logger.info(f"Greeting step started for: {name}")
    greeting = f"Hello, {name}!"
    step_context.logger.info(f"Greeting step completed with: {greeting}")
    return greeting


@durable_execution
def step_logger(event: Any, context: DurableContext) -> str:
    """1-7: the step logs through step_context.logger."""
    return context.step(greet_logged(event))


@durable_execution
def step_then_wait(event: Any, context: DurableContext) -> str:
    """1-8: a step then a 2 s wait; the replay skips the completed step."""
    result = context.step(lambda _: "computed")
    context.wait(Duration.from_seconds(2))
    return result


@durable_step
def cached(step_context: StepContext) -> str:
    step_context.logger.info("step executed")
    return "cached_value"


@durable_execution
def replay_skips_step(event: Any, context: DurableContext) -> str:
    """1-9: on replay the step returns its checkpointed result without running."""
    result = context.step(cached())
    context.wait(Duration.from_seconds(1))
    return result


@durable_step
def fails_permanently(step_context: StepContext) -> str:
    step_context.logger.info("step executed")
    raise RuntimeError("permanent failure")


@durable_execution
def replay_rethrows(event: Any, context: DurableContext) -> str:
    """1-10: a failed step re-throws its stored error on replay; the handler catches it both times."""
    with contextlib.suppress(StepError):
        context.step(fails_permanently(), config=NO_RETRY)
    context.wait(Duration.from_seconds(1))
    return "caught"


@durable_step
def unreliable(step_context: StepContext, failures: int) -> str:
    # The attempt number is the durable count of earlier tries, so no external store is needed.
    if step_context.attempt <= failures:
        raise RuntimeError(f"attempt {step_context.attempt} failed")
    return "Operation succeeded"


@durable_execution
def retry_then_succeed(event: Any, context: DurableContext) -> str:
    """1-11: fails once, retried after 1 s, succeeds on attempt 2."""
    return context.step(unreliable(1), config=_fixed_retry(3))


@durable_step
def always_fail(step_context: StepContext) -> str:
    raise RuntimeError(f"attempt {step_context.attempt} always fails")


@durable_execution
def retry_exhaustion(event: Any, context: DurableContext) -> str:
    """1-12: four attempts in total, all fail, then the execution fails."""
    return context.step(always_fail(), config=_fixed_retry(4))


@durable_execution
def default_retry(event: Any, context: DurableContext) -> str:
    """1-13: no retry config, so the SDK's default strategy (5 s, 2x, full jitter) applies."""
    return context.step(unreliable(2))


@durable_execution
def custom_backoff(event: Any, context: DurableContext) -> str:
    """1-14: 2 s initial delay, 3x backoff, no jitter: delays 2 s then 6 s."""
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=5,
            initial_delay=Duration.from_seconds(2),
            backoff_rate=3,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return context.step(unreliable(2), config=StepConfig(retry_strategy=strategy))


@durable_step
def transient_once(step_context: StepContext) -> str:
    if step_context.attempt == 1:
        raise TransientError("temporary outage")
    return "recovered"


def retry_on_transient(error: Exception, attempts_made: int) -> RetryDecision:
    if isinstance(error, TransientError) and attempts_made < 3:
        return RetryDecision.retry(Duration.from_seconds(1))
    return RetryDecision.no_retry()


@durable_execution
def retry_specific(event: Any, context: DurableContext) -> str:
    """1-15: the strategy retries only TransientError."""
    return context.step(transient_once(), config=StepConfig(retry_strategy=retry_on_transient))


@durable_step
def always_transient(step_context: StepContext) -> str:
    raise TransientError("transient but not retried")


def no_retry_on_transient_error(error: Exception, attempts_made: int) -> RetryDecision:
    if isinstance(error, TransientError):
        return RetryDecision.no_retry()
    return RetryDecision.retry(Duration.from_seconds(1))


@durable_execution
def non_retryable(event: Any, context: DurableContext) -> str:
    """1-16: the strategy refuses to retry TransientError, so the step fails at once."""
    return context.step(always_transient(), config=StepConfig(retry_strategy=no_retry_on_transient_error))


@durable_step
def crash_first_attempt(step_context: StepContext, value: str) -> str:
    step_context.logger.info(f"Executing step with input: {value}")
    if step_context.attempt == 1:
        # A Lambda runtime crash: the process dies without returning or checkpointing.
        os._exit(1)
    return "succeeded on second attempt"


@durable_execution
def at_most_once_no_retry(event: Any, context: DurableContext) -> str:
    """1-17: AT_MOST_ONCE step crashes; the replay sees it interrupted and fails without retry."""
    config = StepConfig(retry_strategy=RetryPresets.none(), step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
    return context.step(crash_first_attempt(event), name="at_most_once_flaky_step", config=config)


@durable_execution
def at_most_once_retry(event: Any, context: DurableContext) -> str:
    """1-18: AT_MOST_ONCE step crashes once; the interruption is retried and attempt 2 succeeds."""
    config = _fixed_retry(3, StepSemantics.AT_MOST_ONCE_PER_RETRY)
    return context.step(crash_first_attempt(event), config=config)


@durable_step
def failing_func(step_context: StepContext) -> str:
    raise ValueError("step failed")


@durable_execution
def fails_no_retry(event: Any, context: DurableContext) -> str:
    """1-19: a step that always raises, with no retries: the execution fails."""
    return context.step(failing_func(), config=StepConfig(retry_strategy=RetryPresets.none()))


@durable_execution
def caught_error(event: Any, context: DurableContext) -> str:
    """1-20: the failed step's StepError is caught and a second step supplies a fallback."""
    try:
        return context.step(failing_func(), config=NO_RETRY)
    except StepError:
        return context.step(lambda _: "fallback_result", name="fallback")


SPECS: dict[str, Spec] = {
    "1-1": Spec("step_basic"),
    "1-2": Spec("step_named"),
    "1-3": Spec("step_sequential"),
    "1-4": Spec("step_complex"),
    "1-5": Spec("step_none"),
    "1-6": Spec("step_custom_serdes"),
    "1-7": Spec("step_logger"),
    "1-8": Spec("step_then_wait"),
    "1-9": Spec("replay_skips_step"),
    "1-10": Spec("replay_rethrows"),
    "1-11": Spec("retry_then_succeed"),
    "1-12": Spec("retry_exhaustion"),
    # Default strategy delays up to 5 s then 10 s; the scale only shortens the real sleep.
    "1-13": Spec("default_retry", time_scale=0.1),
    "1-14": Spec("custom_backoff"),
    "1-15": Spec("retry_specific"),
    "1-16": Spec("non_retryable"),
    "1-17": Spec("at_most_once_no_retry"),
    "1-18": Spec("at_most_once_retry"),
    "1-19": Spec("fails_no_retry"),
    "1-20": Spec("caught_error"),
}
