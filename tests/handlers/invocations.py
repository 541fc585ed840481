"""Handlers for the invocation tests: slow steps to kill, effects to count, logs to capture."""

from __future__ import annotations

import logging
import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution

from engine import effects

log = logging.getLogger("tests.handlers.invocations")


@durable_execution
def three_steps(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Step A is quick; step B's body records an effect and then runs for ``sleep`` seconds."""
    pause = float(event.get("sleep", 3))

    def step_a(step_context: StepContext) -> str:
        effects.record("a", "once")
        time.sleep(float(event.get("a_sleep", 0)))
        return "a"

    def step_b(step_context: StepContext) -> str:
        print(f"step B body starts, attempt {step_context.attempt}")
        step_context.logger.info("step B is working")
        effects.record("charge", "order-1", idempotency_key=event.get("idempotency_key"))
        time.sleep(pause)
        return "b"

    def step_c(step_context: StepContext) -> str:
        return "c"

    return {"results": [context.step(step_a, name="A"), context.step(step_b, name="B"), context.step(step_c, name="C")]}
