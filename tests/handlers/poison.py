"""Handlers whose output PostgreSQL cannot store as it is: NUL bytes and lone surrogates.

A worker must store such text escaped and go on; it must never stop a background loop.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import StepConfig
from aws_durable_execution_sdk_python.retries import RetryPresets

log = logging.getLogger("tests.handlers.poison")

NUL = "a\x00b"
SURROGATE = "\ud800"


@durable_execution
def poison(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Log, print and return untranslatable text; with ``fail`` a step raises with it."""
    log.info("log line with %s and %s", NUL, SURROGATE)
    print(f"printed {NUL} {SURROGATE}")

    def echo(step_context: StepContext) -> str:
        step_context.logger.info("step log %s %s", NUL, SURROGATE)
        return f"step {NUL} {SURROGATE}"

    value = context.step(echo, name=f"echo {NUL} {SURROGATE}")
    if event.get("fail"):

        def bad(step_context: StepContext) -> str:
            raise ValueError(f"bad {NUL} {SURROGATE}")

        context.step(bad, name="bad", config=StepConfig(retry_strategy=RetryPresets.none()))
    return {"value": value, "nul": NUL, "surrogate": SURROGATE}


def not_durable(event: dict[str, Any], context: Any) -> str:
    """A handler without ``@durable_execution``: every invocation of it fails (InvalidHandlerOutput)."""
    return "not a durable output"
