"""The planned retry schedule must be the SDK's: sample the real strategy and stay inside the plan."""

from __future__ import annotations

import random

import pytest
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy
from aws_durable_execution_sdk_python.retries import RetryPresets, RetryStrategyConfig, create_retry_strategy

from lab import retry_plan

CUSTOM = [
    {"kind": "custom", "max_attempts": 5, "initial_delay": 2, "backoff_rate": 2.0, "max_delay": 10, "jitter": "NONE"},
    {"kind": "custom", "max_attempts": 4, "initial_delay": 3, "backoff_rate": 1.5, "max_delay": 60, "jitter": "HALF"},
    {"kind": "custom", "max_attempts": 6, "initial_delay": 1, "backoff_rate": 3.0, "max_delay": 20, "jitter": "FULL"},
]


def sdk_strategy(spec):
    if spec["kind"] == "default":
        return RetryPresets.default()
    if spec["kind"] == "none":
        return RetryPresets.none()
    return create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=spec["max_attempts"],
            initial_delay=Duration.from_seconds(spec["initial_delay"]),
            max_delay=Duration.from_seconds(spec["max_delay"]),
            backoff_rate=spec["backoff_rate"],
            jitter_strategy=JitterStrategy(spec["jitter"]),
        )
    )


@pytest.mark.parametrize("spec", [{"kind": "default"}, {"kind": "none"}, *CUSTOM])
def test_every_sdk_decision_falls_inside_the_planned_range(spec):
    random.seed(7)
    strategy = sdk_strategy(spec)
    plan = retry_plan.planned_retries(spec)
    error = RuntimeError("boom")
    for attempt in range(1, len(plan) + 3):
        decisions = [strategy(error, attempt) for _ in range(300)]
        if attempt > len(plan):
            assert not any(d.should_retry for d in decisions), (
                f"the SDK retries after attempt {attempt}, the plan does not"
            )
            continue
        planned = plan[attempt - 1]
        delays = {d.delay_seconds for d in decisions}
        assert all(d.should_retry for d in decisions)
        assert min(delays) >= planned.low and max(delays) <= planned.high, (attempt, delays, planned)
        # The range is tight: its ends are reached (jitter is uniform, 300 samples are plenty).
        assert max(delays) == planned.high


def test_exponential_backoff_is_capped_by_max_delay():
    plan = retry_plan.planned_retries(CUSTOM[0])
    assert [(p.low, p.high) for p in plan] == [(2, 2), (4, 4), (8, 8), (10, 10)]
    assert [p.label for p in plan] == ["2 s", "4 s", "8 s", "10 s"]


def test_full_jitter_ranges_from_one_second_and_half_jitter_from_half_the_delay():
    assert [(p.low, p.high) for p in retry_plan.planned_retries({"kind": "default"})] == [
        (1, 5),
        (1, 10),
        (1, 20),
        (1, 40),
        (1, 60),
    ]
    assert [(p.low, p.high) for p in retry_plan.planned_retries(CUSTOM[1])] == [(2, 3), (3, 5), (4, 7)]


def test_descriptions_name_the_strategy():
    assert retry_plan.describe({"kind": "none"}) == "no retry (1 attempt)"
    assert retry_plan.describe({"kind": "default"}).startswith("SDK default: 6 attempts, 5 s")
    assert retry_plan.short_name(CUSTOM[1]) == "retry 4\N{MULTIPLICATION SIGN}3s\N{MULTIPLICATION SIGN}1.5 half"
