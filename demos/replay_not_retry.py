"""Seed 000's experiment: an invocation Timeout shorter than a step's body.

Step #2's body sleeps longer than the function's Timeout, so every invocation that runs it is
killed mid-body without an error checkpoint. What happens next depends on the step semantics
and the retry strategy chosen in the input:

- ``semantics``: ``AT_LEAST_ONCE_PER_RETRY`` (default) or ``AT_MOST_ONCE_PER_RETRY``
- ``retry``: ``default`` (the SDK's default strategy) or ``none`` (never retry)
- ``sleep``: seconds the body of step #2 runs (default 10)
"""

from __future__ import annotations

import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import StepConfig, StepSemantics
from aws_durable_execution_sdk_python.retries import RetryDecision

from engine import effects


def never_retry(error: Exception, attempts_made: int) -> RetryDecision:
    return RetryDecision.no_retry()


def step_config(event: dict[str, Any]) -> StepConfig:
    semantics = StepSemantics[event.get("semantics", "AT_LEAST_ONCE_PER_RETRY")]
    retry = never_retry if event.get("retry") == "none" else None
    return StepConfig(retry_strategy=retry, step_semantics=semantics)


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    print("Execution started.")

    def step_one(step_context: StepContext) -> str:
        step_context.logger.info("Hello from step #1")
        return "one"

    def step_two(step_context: StepContext) -> str:
        step_context.logger.info("inside step 2, attempt %s", step_context.attempt)
        effects.record("step-2-body", "run")
        time.sleep(float(event.get("sleep", 10)))
        return "Hello from Durable Lambda!"

    context.step(step_one, name="Step #1")
    message = context.step(step_two, name="Step #2", config=step_config(event))
    return {"statusCode": 200, "body": message}
