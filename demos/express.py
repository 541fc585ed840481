"""Seed 002's contrast: re-run everything on retry (like an Express workflow), or checkpoint each step.

An order is processed in three actions with side effects: reserve inventory, charge the card,
ship. Shipping fails on its first ``fail_attempts`` attempts (a transient courier error). With
``mode="one_big_step"`` the three actions share one step, so each retry repeats all of them:
inventory is reserved and the card charged again. With ``mode="checkpointed"`` each action is its
own step; the retry re-runs only shipping and the completed steps replay from their checkpoints.

Input: ``{"mode": "one_big_step" | "checkpointed", "order": "o-1", "fail_attempts": 1}``.
"""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy

from engine import effects

QUICK_RETRY = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3,
            initial_delay=Duration.from_seconds(2),
            backoff_rate=2,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
)


class CourierUnavailableError(Exception):
    """The courier's API is briefly down."""


def reserve(order: str) -> str:
    effects.record("inventory", order)
    return "reserved"


def charge(order: str) -> str:
    effects.record("charge", order)
    return "charged"


def ship(order: str, attempt: int, fail_attempts: int) -> str:
    if attempt <= fail_attempts:
        raise CourierUnavailableError(f"courier API unavailable (attempt {attempt})")
    effects.record("shipment", order)
    return "shipped"


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    order = str(event.get("order", "order-1"))
    fails = int(event.get("fail_attempts", 1))
    if event.get("mode") == "one_big_step":

        def process(step_context: StepContext) -> list[str]:
            return [reserve(order), charge(order), ship(order, step_context.attempt, fails)]

        return {"mode": "one_big_step", "result": context.step(process, name="process-order", config=QUICK_RETRY)}
    steps = [
        context.step(lambda _: reserve(order), name="reserve-inventory"),
        context.step(lambda _: charge(order), name="charge-card"),
        context.step(lambda sc: ship(order, sc.attempt, fails), name="ship-order", config=QUICK_RETRY),
    ]
    return {"mode": "checkpointed", "result": steps}
