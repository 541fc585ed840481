"""The smallest durable workflow: step, wait, step."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration


@durable_step
def greet(step_context: StepContext, name: str) -> str:
    step_context.logger.info("greeting %s", name)
    return f"Hello, {name}!"


@durable_step
def shout(step_context: StepContext, text: str) -> str:
    return text.upper()


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    greeting = context.step(greet(name), name="greet")
    context.wait(
        Duration.from_seconds(int(event.get("wait_seconds", 2)) if isinstance(event, dict) else 2), name="pause"
    )
    loud = context.step(shout(greeting), name="shout")
    return {"greeting": greeting, "loud": loud}
