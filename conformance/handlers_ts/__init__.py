"""The conformance suites' handlers in TypeScript, run in the Node runtime through the same driver.

``<suite>.ts`` holds one exported handler per requirement of the suite, written from the
requirement's text with AWS's unchanged ``@aws/durable-execution-sdk-js``; ``<suite>.py`` is its
table (requirement id → export, timeouts, time scale). Each function is registered as a user
deploys one: ``Runtime="nodejs22.x"``, ``Handler="<suite>.<export>"`` and the ``.ts`` file zipped
as its code, which Node 22 runs as it is (type stripping).
"""

from __future__ import annotations

import functools
import io
import zipfile
from pathlib import Path
from typing import Any

SUITES = ("step", "wait", "child", "callback", "wait_for_callback", "parallel")
RUNTIME = "nodejs22.x"
HERE = Path(__file__).resolve().parent


def spec_module(suite: str) -> str:
    return f"{__name__}.{suite}"


@functools.cache
def code_zip(suite: str) -> bytes:
    """The suite's ``.ts`` file as a deployment zip (a fixed timestamp: the same bytes every time)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        name = f"{suite}.ts"
        archive.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), (HERE / name).read_text())
    return buffer.getvalue()


def function_fields(suite: str) -> dict[str, Any]:
    """The CreateFunction fields that make a requirement's function run its TypeScript handler."""
    return {"Runtime": RUNTIME, "Code": {"ZipFile": code_zip(suite)}}
