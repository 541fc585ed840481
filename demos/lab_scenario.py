"""The lab's scenario: one step with a side effect, under the semantics, retry strategy and fault you pick.

Input (all optional)::

    {"semantics": "AT_LEAST_ONCE_PER_RETRY" | "AT_MOST_ONCE_PER_RETRY",
     "retry": {"kind": "default" | "none" | "custom", "max_attempts": 3, "initial_delay": 2,
               "backoff_rate": 2.0, "max_delay": 30, "jitter": "NONE" | "FULL" | "HALF"},
     "fault": {"kind": "none" | "timeout" | "kill_body_start" | "kill_after_body" | "fail_n", "n": 2},
     "sleep": 4, "order": "o-1"}

Faults on the ``charge`` step:

- ``timeout``: the body runs longer than the function's Timeout on every run (seed 000);
- ``kill_body_start`` / ``kill_after_body``: the invocation is killed once, when the body starts
  or after it returned but before its result is checkpointed (``engine.faults``);
- ``fail_n``: the body raises on its first ``n`` attempts, then succeeds (``StepContext.attempt``).
"""

from __future__ import annotations

import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.retries import RetryPresets, RetryStrategyConfig, create_retry_strategy

from engine import db, effects, faults, journal

TARGET_STEP = "charge"
KILL_PHASES = {"kill_body_start": "body_start", "kill_after_body": "after_body"}


class PaymentGatewayError(Exception):
    """A transient error from the payment gateway (the ``fail_n`` fault)."""


def retry_strategy(spec: dict[str, Any] | None) -> Any:
    """The SDK retry strategy a spec names; None means the SDK's default."""
    spec = spec or {}
    kind = spec.get("kind", "default")
    if kind == "none":
        return RetryPresets.none()
    if kind != "custom":
        return None
    return create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=int(spec.get("max_attempts", 3)),
            initial_delay=Duration.from_seconds(int(spec.get("initial_delay", 5))),
            max_delay=Duration.from_seconds(int(spec.get("max_delay", 300))),
            backoff_rate=float(spec.get("backoff_rate", 2.0)),
            jitter_strategy=JitterStrategy(spec.get("jitter", "FULL")),
        )
    )


def step_config(event: dict[str, Any]) -> StepConfig:
    semantics = StepSemantics[event.get("semantics", "AT_LEAST_ONCE_PER_RETRY")]
    return StepConfig(retry_strategy=retry_strategy(event.get("retry")), step_semantics=semantics)


def fault_point(arn: str, step_name: str, phase: str) -> None:
    """Kill this invocation once per execution at ``phase`` of ``step_name``'s body.

    Called at the top of the body. The fault is armed through ``engine.faults`` (so it is recorded
    and drawn like any injected fault) from inside the invocation that must die: arming from
    outside would race the first invocation, which loads its armed faults when it starts.
    ``body_start`` fires at once; ``after_body`` is handed to the running journal, whose SDK
    plugin fires it when the body returns, before the result is checkpointed.
    """
    current = journal.current()
    if current is None or current.execution_id is None or _already_armed(current.execution_id, step_name):
        return
    fault = faults.arm(arn, step_name, phase, user="lab-scenario")
    if phase == "body_start":
        current.fire(fault)
    else:
        current.arm(fault)  # fired by the journal's after-body hook, before the result is checkpointed


def _already_armed(execution_id: int, step_name: str) -> bool:
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT 1 FROM durable_fault WHERE execution_id = %s AND step_name = %s LIMIT 1", (execution_id, step_name)
        ).fetchone()
    return row is not None


def charge_body(event: dict[str, Any], arn: str) -> Any:
    fault = event.get("fault") or {}
    kind = fault.get("kind", "none")

    def charge(step_context: StepContext) -> dict[str, Any]:
        step_context.logger.info("charge body starts, attempt %s", step_context.attempt)
        if kind in KILL_PHASES:
            fault_point(arn, TARGET_STEP, KILL_PHASES[kind])
        if kind == "timeout":
            time.sleep(float(event.get("sleep", 4)))
        if kind == "fail_n" and step_context.attempt <= int(fault.get("n", 2)):
            raise PaymentGatewayError(f"gateway timeout on attempt {step_context.attempt}")
        effects.record("charge", str(event.get("order", "order-1")))
        return {"charged": True, "attempt": step_context.attempt}

    return charge


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    arn = context.state.durable_execution_arn
    order = context.step(lambda _: {"order": event.get("order", "order-1")}, name="prepare")
    receipt = context.step(charge_body(event, arn), name=TARGET_STEP, config=step_config(event))
    context.step(lambda _: "confirmed", name="confirm")
    return {"order": order, "receipt": receipt}
