"""Durable handlers the dashboard tests register, so pages show retries, maps and hostile text."""

from __future__ import annotations

import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, MapConfig, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy

HOSTILE = "<script>alert('xss')</script>"


def _retry_every_second(max_attempts: int) -> StepConfig:
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=max_attempts,
            initial_delay=Duration.from_seconds(1),
            backoff_rate=1.5,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return StepConfig(retry_strategy=strategy)


class FlakyError(Exception):
    """Raised by the first attempts of a step, so the timeline has failed attempts to draw."""


@durable_execution
def flaky(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """A step that fails ``fail_times`` attempts before succeeding, around a short wait."""
    fail_times = int(event.get("fail_times", 2)) if isinstance(event, dict) else 2

    def charge(step: StepContext) -> str:
        if step.attempt <= fail_times:
            raise FlakyError(f"card service unavailable (attempt {step.attempt})")
        return f"charged on attempt {step.attempt}"

    prepared = context.step(lambda _: "order ready", name="prepare")
    charged = context.step(charge, name="charge-card", config=_retry_every_second(fail_times + 2))
    context.wait(Duration.from_seconds(int(event.get("wait_seconds", 1))), name="cool-down")
    receipt = context.step(lambda _: "receipt sent", name="send-receipt")
    return {"prepared": prepared, "charged": charged, "receipt": receipt}


@durable_execution
def fanout(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """A map over ``items`` items: one child context and one step each."""
    items = list(range(int(event.get("items", 5)) if isinstance(event, dict) else 5))

    def work(ctx: DurableContext, item: int, index: int, _all: Any) -> int:
        return ctx.step(lambda _: item * item, name=f"square-{index}")

    result = context.map(items, work, name="squares", config=MapConfig(max_concurrency=4))
    return {"count": len(result.get_results())}


@durable_execution
def hostile(event: Any, context: DurableContext) -> dict[str, Any]:
    """Returns markup and names a step with markup: pages must show it as text."""
    value = context.step(lambda _: HOSTILE, name=f"step {HOSTILE}")
    return {"html": value}


@durable_execution
def hostile_failure(event: Any, context: DurableContext) -> None:
    """Fails with markup in the error message."""
    raise RuntimeError(f"boom {HOSTILE}")


@durable_execution
def long_wait(event: Any, context: DurableContext) -> str:
    """Stays RUNNING for a while, so stop and kill have something to act on."""
    context.step(lambda _: "started", name="begin")
    context.wait(Duration.from_seconds(int(event.get("seconds", 120)) if isinstance(event, dict) else 120), name="nap")
    return "woke"


@durable_execution
def slow_step(event: Any, context: DurableContext) -> str:
    """A step whose body takes a few seconds: long enough to kill the invocation mid-body."""
    seconds = float(event.get("seconds", 4)) if isinstance(event, dict) else 4.0

    def crunch(_: StepContext) -> str:
        time.sleep(seconds)
        return "crunched"

    return context.step(crunch, name="crunch")


TEST_FUNCTIONS: dict[str, str] = {
    "dash-flaky": "tests.dashboard.handlers.flaky",
    "dash-fanout": "tests.dashboard.handlers.fanout",
    "dash-hostile": "tests.dashboard.handlers.hostile",
    "dash-hostile-failure": "tests.dashboard.handlers.hostile_failure",
    "dash-long-wait": "tests.dashboard.handlers.long_wait",
    "dash-slow-step": "tests.dashboard.handlers.slow_step",
}
