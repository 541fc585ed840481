"""Handlers for the 'invoke' conformance suite (5-x), written from each requirement's text.

Each caller invokes durable target functions registered beside it (``Spec.extra_functions``)
under fixed names, so the caller's code can name them.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, InvokeConfig
from aws_durable_execution_sdk_python.exceptions import InvokeError
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

from conformance.runner import Spec

ECHO = "conf-invoke-echo"
SHOUT = "conf-invoke-shout"
FAILING = "conf-invoke-failing"
MEASURE = "conf-invoke-measure"
# Near the 256 KB an asynchronous Lambda invoke accepts, and under the engine's 1 MiB chained-invoke limit.
LARGE_PAYLOAD = 240_000


# --- the target functions ------------------------------------------------------------------------


@durable_execution
def echo(event: Any, context: DurableContext) -> Any:
    return event


@durable_execution
def shout(event: Any, context: DurableContext) -> str:
    return f"{event}!".upper()


@durable_execution
def failing(event: Any, context: DurableContext) -> None:
    raise RuntimeError("the invoked function failed on purpose")


@durable_execution
def measure(event: Any, context: DurableContext) -> dict[str, int]:
    return {"length": len(event)}


def _target(handler: str) -> dict[str, Any]:
    return {
        "Handler": f"{__name__}.{handler}",
        "DurableConfig": {"ExecutionTimeout": 300, "RetentionPeriodInDays": 1},
    }


TARGETS = {ECHO: _target("echo"), SHOUT: _target("shout"), FAILING: _target("failing"), MEASURE: _target("measure")}


def invoking(*names: str, **spec: Any) -> Spec:
    """A Spec whose caller invokes the target functions ``names``."""
    return Spec(extra_functions={name: TARGETS[name] for name in names}, **spec)


# --- the callers ---------------------------------------------------------------------------------


@durable_execution
def invoke_basic(event: Any, context: DurableContext) -> Any:
    """5-1, 5-3, 5-4: invoke the echo target with the input and return what it returns."""
    return context.invoke(ECHO, event)


@durable_execution
def invoke_named(event: Any, context: DurableContext) -> Any:
    """5-2: the invoke operation is named from the input."""
    return context.invoke(ECHO, event["payload"], name=event["name"])


@durable_execution
def invoke_failing(event: Any, context: DurableContext) -> Any:
    """5-5: the target fails; the InvokeError is not caught, so the execution fails."""
    return context.invoke(FAILING, None)


@durable_execution
def invoke_failing_caught(event: Any, context: DurableContext) -> str:
    """5-6: the target fails; the handler catches the InvokeError and returns a fallback."""
    try:
        return context.invoke(FAILING, None)
    except InvokeError:
        return "fallback"


@durable_execution
def invoke_large_payload(event: Any, context: DurableContext) -> dict[str, int]:
    """5-7: a payload near the asynchronous invoke size limit."""
    return context.invoke(MEASURE, "x" * LARGE_PAYLOAD)


@durable_execution
def invoke_with_tenant(event: Any, context: DurableContext) -> Any:
    """5-8: the invoke carries the input's tenant id."""
    return context.invoke(ECHO, event["payload"], config=InvokeConfig(tenant_id=event["tenantId"]))


@durable_execution
def invoke_then_wait(event: Any, context: DurableContext) -> Any:
    """5-9: the wait's resume replays the invoke from its checkpoint, without invoking again."""
    result = context.invoke(ECHO, "cached")
    context.wait(Duration.from_seconds(1))
    return result


@durable_execution
def invoke_failing_then_wait(event: Any, context: DurableContext) -> str:
    """5-10: the failed invoke is caught, then a wait; its resume re-raises the failure from the checkpoint."""
    with contextlib.suppress(InvokeError):
        context.invoke(FAILING, None)
    context.wait(Duration.from_seconds(1))
    return "fallback"


@durable_execution
def step_then_invoke(event: Any, context: DurableContext) -> Any:
    """5-11: a step's result is the invoke's payload."""
    prepared = context.step(lambda _: "prepared")
    return context.invoke(ECHO, prepared)


@durable_execution
def invoke_then_step(event: Any, context: DurableContext) -> str:
    """5-12: a step processes the invoke's result."""
    result = context.invoke(ECHO, "invoked")
    return context.step(lambda _: f"processed {result}")


@durable_execution
def invoke_in_child_context(event: Any, context: DurableContext) -> Any:
    """5-13: the invoke runs inside a child context, which returns its result."""
    return context.run_in_child_context(lambda child: child.invoke(ECHO, "from child"))


@durable_execution
def invoke_twice(event: Any, context: DurableContext) -> list[Any]:
    """5-14: two targets, one after the other; each invoke suspends the execution."""
    first = context.invoke(ECHO, "one")
    second = context.invoke(SHOUT, "two")
    return [first, second]


class UpperCasingSerDes(SerDes[dict[str, str]]):
    """Sends an object's string values upper-cased: the target sees the transformed payload."""

    def serialize(self, value: dict[str, str], serdes_context: SerDesContext) -> str:
        return json.dumps({key: text.upper() for key, text in value.items()})

    def deserialize(self, data: str, serdes_context: SerDesContext) -> dict[str, str]:
        return json.loads(data)


@durable_execution
def invoke_payload_serdes(event: Any, context: DurableContext) -> Any:
    """5-15: a custom payload serdes upper-cases the outgoing payload."""
    return context.invoke(ECHO, event, config=InvokeConfig(serdes_payload=UpperCasingSerDes()))


class UpperCasingResult(SerDes[str]):
    """Reads the checkpointed result upper-cased, as its raw JSON text ('"hello"' → '"HELLO"')."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        return data.upper()


@durable_execution
def invoke_result_serdes(event: Any, context: DurableContext) -> str:
    """5-16: a custom result serdes upper-cases what the target returned."""
    return context.invoke(ECHO, event, config=InvokeConfig(serdes_result=UpperCasingResult()))


SPECS: dict[str, Spec] = {
    "5-1": invoking(ECHO, handler="invoke_basic"),
    "5-2": invoking(ECHO, handler="invoke_named"),
    "5-3": invoking(ECHO, handler="invoke_basic"),
    "5-4": invoking(ECHO, handler="invoke_basic"),
    "5-5": invoking(FAILING, handler="invoke_failing"),
    "5-6": invoking(FAILING, handler="invoke_failing_caught"),
    "5-7": invoking(MEASURE, handler="invoke_large_payload"),
    "5-8": invoking(ECHO, handler="invoke_with_tenant"),
    "5-9": invoking(ECHO, handler="invoke_then_wait"),
    "5-10": invoking(FAILING, handler="invoke_failing_then_wait"),
    "5-11": invoking(ECHO, handler="step_then_invoke"),
    "5-12": invoking(ECHO, handler="invoke_then_step"),
    "5-13": invoking(ECHO, handler="invoke_in_child_context"),
    "5-14": invoking(ECHO, SHOUT, handler="invoke_twice"),
    "5-15": invoking(ECHO, handler="invoke_payload_serdes"),
    "5-16": invoking(ECHO, handler="invoke_result_serdes"),
}
