"""Handlers of the unit tests' scenarios that the conformance handlers do not already provide."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.types import WaitForCallbackContext

import engine


def answer_at_once(callback_id: str, context: WaitForCallbackContext) -> None:
    """A submitter whose external system answers before the submitter has even returned."""
    engine.client().send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"answered"')


@durable_execution
def answered_while_running(event: Any, context: DurableContext) -> dict[str, Any]:
    """The callback's answer is written while this invocation still runs: the invocation's own
    next checkpoint then finds the execution changed under it (its guard misses), reads it
    again and goes on."""
    answer = context.wait_for_callback(answer_at_once, name="self-answering")
    after = context.step(lambda _: "after", name="after")
    return {"answer": answer, "after": after}


@durable_execution
def invokes_target(event: Any, context: DurableContext) -> Any:
    """A chained invoke of the function the event names."""
    return context.invoke(event["target"], "ping")


def plain_echo(event: Any, context: Any) -> Any:
    """A plain (non-durable) function: it answers with what it was sent."""
    return event
