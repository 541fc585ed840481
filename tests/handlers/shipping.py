"""A handler whose step runs until the test opens a gate file: its journal is shipped meanwhile."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution

log = logging.getLogger("tests.handlers.shipping")

NUL_LINE = "shipped a\x00b"


@durable_execution
def slow(event: dict[str, Any], context: DurableContext) -> str:
    """Log a line holding a NUL byte, then wait in step ``slow`` until ``event["gate"]`` exists."""
    gate = Path(event["gate"])

    def wait_for_gate(step_context: StepContext) -> str:
        log.info(NUL_LINE)
        deadline = time.monotonic() + 60
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return "opened" if gate.exists() else "gave up"

    return context.step(wait_for_gate, name="slow")
