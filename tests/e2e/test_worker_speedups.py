"""The Celery worker, the process that runs invocations, starts with the SDK seams installed."""

from __future__ import annotations

import json
import re

from engine import speedups
from tests.conftest import wait_until


def test_the_worker_installs_every_seam_and_runs_a_handler_on_them(stack, lam, unique) -> None:
    installed = wait_until(
        lambda: re.findall(r"SDK seams installed: (.+)", stack.worker_log.read_text()), message="seams logged"
    )
    assert set(installed[-1].split(", ")) == speedups.SEAM_NAMES
    assert "SDK seam" not in stack.worker_log.read_text().replace("SDK seams installed", "")  # no seam left out
    name = f"speedups-{unique}"
    lam.create_function(
        FunctionName=name,
        Handler="tests.handlers.invocations.three_steps",
        Timeout=30,
        DurableConfig={"ExecutionTimeout": 120, "RetentionPeriodInDays": 1},
    )
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"sleep": 0}))
    assert response["StatusCode"] == 200 and "FunctionError" not in response
