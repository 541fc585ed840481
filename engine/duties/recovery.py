"""After a failed, crashed or timed-out invocation: invoke again with backoff, or give up."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from engine import machine
from engine.duties.finish import finish_execution
from engine.duties.unit import UnitOfWork, request_invoke
from engine.rows import ExecutionRow
from engine.store import store

DEFAULT_INVOCATION_RETRY = {
    "ImmediateRetries": 3,
    "InitialDelaySeconds": 1,
    "BackoffRate": 2.0,
    "MaxDelaySeconds": 60,
    "MaximumAttempts": 0,
}


# Errors of loading the handler: invoking again loads the same code, so the execution fails at
# once (a synchronous caller gets the error now) instead of re-invoking until it times out.
# The same holds for a runtime process that cannot start, exits before it is ready, or breaks
# the runtime protocol (engine.runtimes).
NOT_REINVOKED = frozenset(
    {
        "Runtime.ImportModuleError",
        "Runtime.HandlerNotFound",
        "Runtime.UserCodeSyntaxError",
        "Runtime.MalformedHandlerName",
        "Runtime.InvalidEntrypoint",
        "Runtime.InvalidRuntime",
        "Runtime.InitError",
        "Runtime.InvalidResponse",
    }
)


def schedule_recovery(work: UnitOfWork, execution: ExecutionRow, error: dict[str, Any]) -> None:
    """After a failed, crashed or timed-out invocation: invoke again with backoff, or give up."""
    if error.get("ErrorType") in NOT_REINVOKED:
        finish_execution(work, execution, machine.Finish("FAILED", error=error))
        return
    fn = store.get_function(work.conn, execution["function_name"]) or {}
    policy = invocation_retry_policy(fn.get("invocation_retry"))
    failures = execution["consecutive_failures"] + 1
    execution["consecutive_failures"] = failures
    if policy["MaximumAttempts"] and failures >= policy["MaximumAttempts"]:
        finish_execution(work, execution, machine.Finish("FAILED", error=error))
        return
    delay = reinvoke_delay(policy, failures, error.get("ErrorType", ""))
    if delay <= 0:
        request_invoke(work, execution, "recovery", float(fn.get("timeout", 3)))
        return
    execution["needs_invoke"] = False
    due = work.now + timedelta(seconds=delay)
    store.set_timer(work.conn, execution["id"], "reinvoke", "", due)


# Bounds of a stored InvocationRetryPolicy's numbers (key: lowest, highest). A policy stored
# before input was validated may hold NaN (stored as null), infinities or 1e300: the recovery of
# every failed invocation reads it, so it must never raise.
_RETRY_BOUNDS: dict[str, tuple[float, float]] = {
    "ImmediateRetries": (0, 100),
    "InitialDelaySeconds": (0, 86400),
    "BackoffRate": (0, 100),
    "MaxDelaySeconds": (0, 86400),
    "MaximumAttempts": (0, 1_000_000),
}


_INTEGER_SETTINGS = frozenset({"ImmediateRetries", "MaximumAttempts"})


def invocation_retry_policy(stored: Any) -> dict[str, Any]:
    """The function's InvocationRetryPolicy over the defaults, every number finite and in bounds."""
    policy = dict(DEFAULT_INVOCATION_RETRY)
    for key, value in (stored if isinstance(stored, dict) else {}).items():
        if key in _RETRY_BOUNDS:
            policy[key] = _bounded(value, DEFAULT_INVOCATION_RETRY[key], *_RETRY_BOUNDS[key], key in _INTEGER_SETTINGS)
    return policy


def _bounded(value: Any, default: float, lowest: float, highest: float, integer: bool) -> float:
    """``value`` as a number clamped to [lowest, highest]; the default for NaN or a non-number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    if math.isnan(number):
        return default
    number = min(max(number, lowest), highest)
    return int(number) if integer else number


def reinvoke_delay(policy: dict[str, Any], failures: int, error_type: str) -> float:
    """Seconds before invoking again after ``failures`` consecutive failed invocations.

    Runtime crashes are retried at once a few times (as Lambda does); timeouts and handler
    errors back off exponentially up to a cap.
    """
    policy = invocation_retry_policy(policy)
    if error_type.startswith("Runtime.") and failures <= policy["ImmediateRetries"]:
        return 0.0
    # Rates are at most 100 and delays at most a day: 100 ** 150 * 86400 is still a finite float.
    growth = policy["BackoffRate"] ** min(failures - 1, 150)
    return float(min(policy["InitialDelaySeconds"] * growth, policy["MaxDelaySeconds"]))
