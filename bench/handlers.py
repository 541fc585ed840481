"""Durable handlers the benchmarks run, unchanged, on the engine and on AWS's local runner (B8).

Every step returns the same ~120-byte JSON payload as the raw-SQL baselines write, so the
engine and its baseline move the same bytes.
"""

from __future__ import annotations

import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

# ~120 B of JSON, the payload size benchmarks.md prescribes for steps and baselines.
PAYLOAD: dict[str, Any] = {
    "order": 123456,
    "customer": "c-0001",
    "items": [{"sku": "sku-42", "qty": 2}, {"sku": "sku-7", "qty": 1}],
    "total": 99.5,
    "ok": True,
}


def _payload(_: StepContext) -> dict[str, Any]:
    return PAYLOAD


def _now(_: StepContext) -> float:
    # Wall-clock time when the step body ran: the bench compares it with a time taken in
    # another process, which is fine on one machine.
    return time.time()


def _count(event: Any, key: str, default: int) -> int:
    return int(event.get(key, default)) if isinstance(event, dict) else default


@durable_execution
def noop(event: Any, context: DurableContext) -> dict[str, Any]:
    """No operation at all: the cheapest execution (B3 starts)."""
    return {"ok": True}


@durable_execution
def steps(event: Any, context: DurableContext) -> int:
    """``steps`` sequential no-op steps in one invocation (B1, B2a, B7, B8a)."""
    n = _count(event, "steps", 10)
    for i in range(n):
        context.step(_payload, name=f"s{i}")
    return n


@durable_execution
def steps_then_wait(event: Any, context: DurableContext) -> int:
    """``steps`` steps, then a wait: replaying stops at the wait, the first unfinished op (B4)."""
    n = _count(event, "steps", 1000)
    for i in range(n):
        context.step(_payload, name=f"s{i}")
    context.wait(Duration.from_seconds(60), name="end")
    return n


@durable_execution
def suspending_steps(event: Any, context: DurableContext) -> int:
    """Each step followed by a 1 s wait, so every step costs a suspend and resume (B2b, B8b)."""
    n = _count(event, "steps", 10)
    for i in range(n):
        context.step(_payload, name=f"s{i}")
        context.wait(Duration.from_seconds(1), name=f"w{i}")
    return n


@durable_execution
def steps_and_a_wait(event: Any, context: DurableContext) -> int:
    """``steps`` steps, then a 1 s wait, then done: one suspend and resume per execution (B12)."""
    n = _count(event, "steps", 10)
    for i in range(n):
        context.step(_payload, name=f"s{i}")
    context.wait(Duration.from_seconds(1), name="pause")
    return n


@durable_execution
def waits(event: Any, context: DurableContext) -> int:
    """``waits`` consecutive waits: one invocation per op, replaying all before it (B4b)."""
    n = _count(event, "waits", 100)
    for i in range(n):
        context.wait(Duration.from_seconds(1), name=f"w{i}")
    return n


@durable_execution
def callback_then_step(event: Any, context: DurableContext) -> float:
    """Suspend on a callback; the step after it records when the handler resumed (B6)."""
    callback = context.create_callback(name="cb")
    callback.result()
    return context.step(_now, name="resumed")


@durable_execution
def wait_then_step(event: Any, context: DurableContext) -> float:
    """Wait 1 s; the step after it records when the handler resumed (B6 overshoot)."""
    context.wait(Duration.from_seconds(1), name="pause")
    return context.step(_now, name="resumed")
