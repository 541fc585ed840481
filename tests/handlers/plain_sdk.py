"""An unchanged AWS durable handler: a step, a wait and a callback, and nothing from Durable Lab.

The worker runs it in-process (as ``tests.handlers.plain_sdk.handler``);
``tests/wire/sdk_process/handler_runner.py`` runs the very same file (as ``plain_sdk.handler``)
in a plain ``python`` process whose SDK talks to the wire API over HTTP.
"""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    doubled = context.step(lambda _: event["n"] * 2, name="double")
    context.wait(Duration.from_seconds(1), name="breather")
    approval = context.create_callback(name="approval")
    return {"doubled": doubled, "approval": approval.result()}
