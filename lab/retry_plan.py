"""The planned retry schedule of a step retry strategy, computed from its configuration.

Mirrors ``aws_durable_execution_sdk_python.retries.create_retry_strategy``: after failed attempt
``k`` the step is retried while ``k < max_attempts``, after
``min(initial_delay * backoff_rate ** (k - 1), max_delay)`` seconds, jittered, rounded up to
whole seconds and at least 1 s. Jitter makes a delay a range: FULL is ``1 … base``, HALF is
``base/2 … base``, NONE is exactly ``base``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

JITTERS = ("NONE", "FULL", "HALF")
# The SDK's own default (RetryPresets.default), used when a step has no retry strategy.
SDK_DEFAULT: dict[str, Any] = {
    "kind": "default",
    "max_attempts": 6,
    "initial_delay": 5,
    "backoff_rate": 2.0,
    "max_delay": 60,
    "jitter": "FULL",
}
NO_RETRY: dict[str, Any] = {
    "kind": "none",
    "max_attempts": 1,
    "initial_delay": 5,
    "backoff_rate": 2.0,
    "max_delay": 300,
    "jitter": "FULL",
}


@dataclass(frozen=True)
class PlannedRetry:
    """The delay planned after failed attempt ``after_attempt``, in the strategy's own seconds."""

    after_attempt: int
    base: float
    low: int
    high: int

    @property
    def label(self) -> str:
        return f"{self.low} s" if self.low == self.high else f"{self.low}\N{EN DASH}{self.high} s"


def resolved(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The full configuration a retry spec stands for ("default" and "none" expanded)."""
    spec = dict(spec or {})
    kind = spec.get("kind", "default")
    if kind == "none":
        return dict(NO_RETRY)
    if kind != "custom":
        return dict(SDK_DEFAULT)
    return {
        "kind": "custom",
        "max_attempts": int(spec.get("max_attempts", 3)),
        "initial_delay": int(spec.get("initial_delay", 5)),
        "backoff_rate": float(spec.get("backoff_rate", 2.0)),
        "max_delay": int(spec.get("max_delay", 300)),
        "jitter": spec.get("jitter", "FULL") if spec.get("jitter") in JITTERS else "FULL",
    }


def planned_retries(spec: dict[str, Any] | None) -> list[PlannedRetry]:
    """One entry per retry the strategy would make if every attempt failed."""
    config = resolved(spec)
    plan = []
    for attempt in range(1, config["max_attempts"]):
        base = min(config["initial_delay"] * config["backoff_rate"] ** (attempt - 1), config["max_delay"])
        low, high = _jitter_range(base, config["jitter"])
        plan.append(PlannedRetry(attempt, base, low, high))
    return plan


def _jitter_range(base: float, jitter: str) -> tuple[int, int]:
    high = max(1, math.ceil(base))
    if jitter == "NONE":
        return high, high
    if jitter == "HALF":
        return max(1, math.ceil(base / 2)), high
    return 1, high


def describe(spec: dict[str, Any] | None) -> str:
    """A one-line summary, e.g. "SDK default: 6 attempts, 5 s x 2 up to 60 s, FULL jitter"."""
    config = resolved(spec)
    if config["max_attempts"] <= 1:
        return "no retry (1 attempt)"
    name = {"default": "SDK default", "custom": "custom"}[config["kind"]]
    rate = f"{config['backoff_rate']:g}"
    return (
        f"{name}: {config['max_attempts']} attempts, {config['initial_delay']} s \N{MULTIPLICATION SIGN} {rate} "
        f"up to {config['max_delay']} s, {config['jitter']} jitter"
    )


def short_name(spec: dict[str, Any] | None) -> str:
    config = resolved(spec)
    if config["kind"] == "none":
        return "no retry"
    if config["kind"] == "default":
        return "default retry"
    return f"retry {config['max_attempts']}\N{MULTIPLICATION SIGN}{config['initial_delay']}s\N{MULTIPLICATION SIGN}{config['backoff_rate']:g} {config['jitter'].lower()}"
