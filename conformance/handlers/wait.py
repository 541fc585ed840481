"""Handlers for the 'wait' conformance suite, written from each requirement's text."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

from conformance.runner import Spec


@durable_execution
def wait_basic(event: Any, context: DurableContext) -> str:
    """2-1: a single 2 s wait."""
    context.wait(Duration.from_seconds(2))
    return "done"


@durable_execution
def wait_named(event: Any, context: DurableContext) -> str:
    """2-2: a 2 s wait with an explicit name."""
    context.wait(Duration.from_seconds(2), name="custom_wait_name")
    return "done"


@durable_execution
def wait_sequential(event: Any, context: DurableContext) -> dict[str, int]:
    """2-3: two 2 s waits, each suspending and resuming the execution."""
    context.wait(Duration.from_seconds(2), name="wait-1")
    context.wait(Duration.from_seconds(2), name="wait-2")
    return {"completedWaits": 2}


@durable_execution
def wait_minutes(event: Any, context: DurableContext) -> str:
    """2-4: Duration.from_minutes(1) is checkpointed as 60 s."""
    context.wait(Duration.from_minutes(1))
    return "done"


@durable_execution
def wait_hours(event: Any, context: DurableContext) -> str:
    """2-5: Duration.from_hours(1) is checkpointed as 3600 s."""
    context.wait(Duration.from_hours(1))
    return "done"


SPECS: dict[str, Spec] = {
    "2-1": Spec("wait_basic"),
    "2-2": Spec("wait_named"),
    "2-3": Spec("wait_sequential"),
    # 2-4 and 2-5 only check the suspension; the runner stops the execution afterwards.
    "2-4": Spec("wait_minutes"),
    "2-5": Spec("wait_hours", execution_timeout=7200),
}
