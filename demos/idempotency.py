"""Idempotency keys: the same payment step with and without one, when its body runs twice.

The ``charge-payment`` step charges the card and then the invocation is killed after the body,
before the step's result is checkpointed (``engine.faults``, once per execution). Under the
default at-least-once semantics the next invocation runs the body again: without a key the card
is charged twice (a duplicate in the side-effect ledger); with ``idempotency_key`` the payment
API answers the second call from the first and nothing is charged again.

Input: ``{"order": "o-17", "use_idempotency_key": true}``.
"""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution

from demos.lab_scenario import fault_point
from engine import effects

STEP = "charge-payment"


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    order = str(event.get("order", "order-1"))
    key = f"charge-{order}" if event.get("use_idempotency_key") else None
    arn = context.state.durable_execution_arn

    def charge(step_context: StepContext) -> dict[str, Any]:
        fault_point(arn, STEP, "after_body")
        result = effects.record("charge", order, idempotency_key=key)
        return {"charged": result.performed, "duplicate": result.duplicate, "key_reused": result.idempotency_key_used}

    payment = context.step(charge, name=STEP)
    context.step(lambda _: f"receipt for {order}", name="send-receipt")
    return {"order": order, "idempotency_key": key, "payment": payment}
