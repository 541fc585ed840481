"""Handlers for the 'wait_for_condition' conformance suite (6-x), written from each requirement's text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy
from aws_durable_execution_sdk_python.exceptions import WaitForConditionError
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext
from aws_durable_execution_sdk_python.waits import (
    WaitForConditionConfig,
    WaitForConditionDecision,
    WaitStrategyConfig,
    create_wait_strategy,
)

from conformance.runner import Spec


def fixed_delay(
    keep_polling: Callable[[Any], bool], seconds: int = 1, max_attempts: int = 60
) -> Callable[[Any, int], WaitForConditionDecision]:
    """Poll every ``seconds`` (no backoff, no jitter) while ``keep_polling(state)``."""
    return create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=keep_polling,
            max_attempts=max_attempts,
            initial_delay=Duration.from_seconds(seconds),
            backoff_rate=1,
            jitter_strategy=JitterStrategy.NONE,
        )
    )


def until_at_least(threshold: int, initial_state: Any = 0, **strategy: Any) -> WaitForConditionConfig[Any]:
    return WaitForConditionConfig(fixed_delay(lambda state: state < threshold, **strategy), initial_state)


def increment(state: int, check_context: Any) -> int:
    return state + 1


def fails(state: Any, check_context: Any) -> Any:
    raise RuntimeError("the check failed on purpose")


@durable_execution
def condition_basic(event: int, context: DurableContext) -> int:
    """6-1: count up from 0, one check per invocation, until the input threshold."""
    return context.wait_for_condition(increment, until_at_least(event))


@durable_execution
def condition_met_at_once(event: int, context: DurableContext) -> int:
    """6-2: the initial state 5 already meets state >= 5: one check, no suspension."""
    return context.wait_for_condition(lambda state, _: state, until_at_least(event, initial_state=5))


@durable_execution
def condition_named(event: int, context: DurableContext) -> int:
    """6-3: the operation's name is on every event."""
    return context.wait_for_condition(increment, until_at_least(event), name="poll-status")


@durable_execution
def condition_initial_state(event: int, context: DurableContext) -> int:
    """6-4: the initial state 5 seeds the first check; each result feeds the next."""
    return context.wait_for_condition(increment, until_at_least(event, initial_state=5))


@durable_execution
def condition_fixed_delay(event: int, context: DurableContext) -> int:
    """6-5: every continue records NextAttemptDelaySeconds=2."""
    return context.wait_for_condition(increment, until_at_least(event, seconds=2))


@durable_execution
def condition_max_attempts(event: Any, context: DurableContext) -> int:
    """6-6: never met; the third check exhausts max_attempts=3 and the execution fails."""
    config = WaitForConditionConfig(fixed_delay(lambda state: True, max_attempts=3), 0)
    return context.wait_for_condition(increment, config)


@durable_execution
def condition_check_fails(event: Any, context: DurableContext) -> Any:
    """6-7: the first check raises; nothing catches it."""
    return context.wait_for_condition(fails, until_at_least(1))


@durable_execution
def condition_check_fails_caught(event: Any, context: DurableContext) -> Any:
    """6-8: the first check raises; the handler catches it and recovers."""
    try:
        return context.wait_for_condition(fails, until_at_least(1))
    except WaitForConditionError:
        return "recovered"


def advance(state: dict[str, Any], check_context: Any) -> dict[str, Any]:
    attempts = state["attempts"] + 1
    return {"status": "DONE" if attempts >= 2 else "PENDING", "attempts": attempts}


@durable_execution
def condition_object_state(event: Any, context: DurableContext) -> dict[str, Any]:
    """6-9: the state is an object; polling stops when its status is DONE."""
    config = WaitForConditionConfig(
        fixed_delay(lambda state: state["status"] == "PENDING"), {"status": "PENDING", "attempts": 0}
    )
    return context.wait_for_condition(advance, config)


@durable_execution
def condition_null_state(event: Any, context: DurableContext) -> None:
    """6-10: the check returns null and the strategy stops at once."""
    config = WaitForConditionConfig(fixed_delay(lambda state: state is not None), None)
    return context.wait_for_condition(lambda state, _: None, config)


class ReversingSerDes(SerDes[str]):
    """Stores a string reversed inside angle brackets: not an identity, so a missed decode shows."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return f"<{value[::-1]}>"

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        if not (data.startswith("<") and data.endswith(">")):
            raise ValueError(f"not written by {type(self).__name__}: {data!r}")
        return data[1:-1][::-1]


@durable_execution
def condition_state_serdes(event: Any, context: DurableContext) -> str:
    """6-11: the string state crosses the suspension through a custom serdes."""
    config = WaitForConditionConfig(fixed_delay(lambda state: len(state) < 2), "", serdes=ReversingSerDes())
    return context.wait_for_condition(lambda state, _: state + "x", config)


@durable_execution
def condition_then_step(event: int, context: DurableContext) -> int:
    """6-12: the final state feeds a step that multiplies it by 10."""
    reached = context.wait_for_condition(increment, until_at_least(event))
    return context.step(lambda _: reached * 10)


@durable_execution
def condition_twice(event: Any, context: DurableContext) -> int:
    """6-13: two polls in a row; the first's result (2) seeds the second, which stops at 4."""
    first = context.wait_for_condition(increment, until_at_least(2))
    return context.wait_for_condition(increment, until_at_least(4, initial_state=first))


SPECS: dict[str, Spec] = {
    "6-1": Spec("condition_basic"),
    "6-2": Spec("condition_met_at_once"),
    "6-3": Spec("condition_named"),
    "6-4": Spec("condition_initial_state"),
    "6-5": Spec("condition_fixed_delay"),
    "6-6": Spec("condition_max_attempts"),
    "6-7": Spec("condition_check_fails"),
    "6-8": Spec("condition_check_fails_caught"),
    "6-9": Spec("condition_object_state"),
    "6-10": Spec("condition_null_state"),
    "6-11": Spec("condition_state_serdes"),
    "6-12": Spec("condition_then_step"),
    "6-13": Spec("condition_twice"),
}
