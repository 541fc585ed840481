"""Handlers for the 'step' conformance suite, written from each requirement's text."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step

from tests.conformance.runner import Spec


@durable_step
def greet(step_context: StepContext, name: str) -> str:
    return f"Hello, {name}!"


@durable_execution
def step_basic(event: Any, context: DurableContext) -> str:
    """1-1: a single step that takes input and returns a greeting string."""
    return context.step(greet(event))


SPECS: dict[str, Spec] = {
    "1-1": Spec("step_basic"),
}
