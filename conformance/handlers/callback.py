"""Handlers for the 'callback' conformance suite, written from each requirement's text."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration
from aws_durable_execution_sdk_python.exceptions import CallbackError
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

from conformance.runner import Spec


@durable_step
def do_work(step_context: StepContext) -> str:
    return "work done"


def _seconds(value: int) -> CallbackConfig:
    return CallbackConfig(timeout=Duration.from_seconds(value))


@durable_execution
def basic(event: str, context: DurableContext) -> Any:
    """4-1: a callback named after the input; return what the external system sends."""
    return context.create_callback(name=event).result()


@durable_execution
def named(event: Any, context: DurableContext) -> Any:
    """4-2: a callback with the static name "approval"."""
    return context.create_callback(name="approval").result()


@durable_execution
def general_timeout(event: str, context: DurableContext) -> Any:
    """4-3: a 5 s timeout and nobody answers, so the execution fails with Callback.Timeout."""
    return context.create_callback(name=event, config=_seconds(5)).result()


@durable_execution
def heartbeat_timeout(event: str, context: DurableContext) -> Any:
    """4-4: a 5 s heartbeat timeout and no heartbeat, so it fails with Callback.Heartbeat."""
    config = CallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
    return context.create_callback(name=event, config=config).result()


@durable_execution
def heartbeat_then_success(event: str, context: DurableContext) -> Any:
    """4-5: a 10 s heartbeat timeout kept alive by a heartbeat, then a success."""
    config = CallbackConfig(heartbeat_timeout=Duration.from_seconds(10))
    return context.create_callback(name=event, config=config).result()


@durable_execution
def external_failure(event: str, context: DurableContext) -> Any:
    """4-6: the external system rejects; the handler does not catch the error."""
    return context.create_callback(name=event).result()


@durable_execution
def callback_step_failure(event: str, context: DurableContext) -> Any:
    """4-7: create the callback, run a step, then block on the (failed) callback."""
    callback = context.create_callback(name=event)
    context.step(do_work())
    return callback.result()


@durable_execution
def callback_step_timeout(event: str, context: DurableContext) -> Any:
    """4-8: as 4-7 but with a 5 s timeout and no answer."""
    callback = context.create_callback(name=event, config=_seconds(5))
    context.step(do_work())
    return callback.result()


@durable_execution
def callback_wait_success(event: str, context: DurableContext) -> Any:
    """4-9: the callback succeeds during a 5 s wait; the result is read after the wait."""
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@durable_execution
def callback_wait_failure(event: str, context: DurableContext) -> Any:
    """4-10: the callback fails during a 5 s wait; the error surfaces after the wait."""
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@durable_execution
def callback_wait_timeout(event: str, context: DurableContext) -> Any:
    """4-11: a 3 s callback timeout fires during a 6 s wait; the error surfaces after it."""
    callback = context.create_callback(name=event, config=_seconds(3))
    context.wait(Duration.from_seconds(6))
    return callback.result()


@durable_execution
def callback_then_wait(event: str, context: DurableContext) -> Any:
    """4-12: block on the callback, then a 2 s wait, then return the callback result."""
    result = context.create_callback(name=event).result()
    context.wait(Duration.from_seconds(2))
    return result


@durable_execution
def caught_failure_then_wait(event: str, context: DurableContext) -> str:
    """4-13: catch the external failure, keep its message, wait 2 s, return the message."""
    try:
        context.create_callback(name=event).result()
        message = "no error"
    except CallbackError as error:
        message = f"caught: {error.message}"
    context.wait(Duration.from_seconds(2))
    return message


@durable_execution
def caught_timeout_then_wait(event: str, context: DurableContext) -> str:
    """4-14: catch the 3 s timeout, keep a message, wait 2 s, return."""
    try:
        context.create_callback(name=event, config=_seconds(3)).result()
        message = "no error"
    except CallbackError as error:
        message = f"timed out: {error.message}"
    context.wait(Duration.from_seconds(2))
    return message


@dataclass
class Approval:
    id: str
    message: str
    timestamp: int


class ApprovalSerDes(SerDes[Approval]):
    """Parses the raw JSON payload into an Approval, with the ISO date as epoch seconds."""

    def serialize(self, value: Approval, serdes_context: SerDesContext) -> str:
        return json.dumps(asdict(value))

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Approval:
        raw = json.loads(data)
        stamp = datetime.fromisoformat(raw["timestamp"].replace("Z", "+00:00"))
        return Approval(id=raw["id"], message=raw["message"], timestamp=int(stamp.timestamp()))


class NumberSerDes(SerDes[int]):
    """Turns the callback's serialized string into a number."""

    def serialize(self, value: int, serdes_context: SerDesContext) -> str:
        return str(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> int:
        return int(json.loads(data))


@durable_execution
def custom_serdes_object(event: str, context: DurableContext) -> dict[str, Any]:
    """4-15: a custom deserializer builds a typed object; return it as structured output."""
    approval = context.create_callback(name=event, config=CallbackConfig(serdes=ApprovalSerDes())).result()
    return {"received": asdict(approval)}


@durable_execution
def custom_serdes_number(event: str, context: DurableContext) -> dict[str, int]:
    """4-16: a custom deserializer yields a number; return it and its double."""
    count = context.create_callback(name=event, config=CallbackConfig(serdes=NumberSerDes())).result()
    return {"count": count, "doubled": count * 2}


@durable_execution
def two_sequential(event: list[str], context: DurableContext) -> list[Any]:
    """4-17: create and await A, then create and await B."""
    first = context.create_callback(name=event[0]).result()
    second = context.create_callback(name=event[1]).result()
    return [first, second]


@durable_execution
def two_in_order(event: list[str], context: DurableContext) -> list[Any]:
    """4-18: create A and B, then await A, then B."""
    callback_a = context.create_callback(name=event[0])
    callback_b = context.create_callback(name=event[1])
    return [callback_a.result(), callback_b.result()]


@durable_execution
def two_reversed(event: list[str], context: DurableContext) -> list[Any]:
    """4-19: create A and B, then await B first, then A."""
    callback_a = context.create_callback(name=event[0])
    callback_b = context.create_callback(name=event[1])
    result_b = callback_b.result()
    return [callback_a.result(), result_b]


SPECS: dict[str, Spec] = {
    "4-1": Spec("basic"),
    "4-2": Spec("named"),
    "4-3": Spec("general_timeout"),
    "4-4": Spec("heartbeat_timeout"),
    "4-5": Spec("heartbeat_then_success"),
    "4-6": Spec("external_failure"),
    "4-7": Spec("callback_step_failure"),
    "4-8": Spec("callback_step_timeout"),
    "4-9": Spec("callback_wait_success"),
    "4-10": Spec("callback_wait_failure"),
    "4-11": Spec("callback_wait_timeout"),
    "4-12": Spec("callback_then_wait"),
    "4-13": Spec("caught_failure_then_wait"),
    "4-14": Spec("caught_timeout_then_wait"),
    "4-15": Spec("custom_serdes_object"),
    "4-16": Spec("custom_serdes_number"),
    "4-17": Spec("two_sequential"),
    "4-18": Spec("two_in_order"),
    "4-19": Spec("two_reversed"),
}
