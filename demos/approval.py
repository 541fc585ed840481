"""A human-verification step: the workflow waits until someone approves or rejects it."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    request = context.step(lambda _: {"amount": event.get("amount", 100)}, name="prepare-request")
    callback = context.create_callback(name="manager-approval", config=CallbackConfig(timeout=Duration.from_hours(1)))
    decision = callback.result()
    return {"request": request, "decision": decision}
