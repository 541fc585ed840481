"""B8: the same handlers on AWS's local runner (``aws-durable-execution-sdk-python-testing``).

The peer is installed only for the bench, into ``.data/bench-peer`` (never the project's
requirements), pinned to a version ``pip index versions`` lists. It must not change the SDK:
``--no-deps`` keeps the pinned ``aws-durable-execution-sdk-python`` the engine runs.
"""

from __future__ import annotations

import importlib
import json
import logging
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.harness import ROOT
from engine import speedups

PEER_PACKAGE = "aws-durable-execution-sdk-python-testing"
PEER_VERSION = "1.4.0"
PEER_DIR = ROOT / ".data" / "bench-peer"


def ensure_peer() -> str | None:
    """Make the peer importable; return None, or why it cannot be."""
    if str(PEER_DIR) not in sys.path:
        sys.path.append(str(PEER_DIR))
    try:
        from aws_durable_execution_sdk_python_testing import __version__
    except ImportError:
        pass
    else:
        return None if __version__ == PEER_VERSION else f"peer version {__version__} != {PEER_VERSION}"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--target",
        str(PEER_DIR),
        f"{PEER_PACKAGE}=={PEER_VERSION}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"could not install {PEER_PACKAGE}=={PEER_VERSION}: {done.stderr.strip()[-300:]}"
    # The folder did not exist at the first import attempt: forget that negative lookup.
    sys.path_importer_cache.pop(str(PEER_DIR), None)
    importlib.invalidate_caches()
    try:
        import aws_durable_execution_sdk_python_testing  # noqa: F401
    except ImportError as exc:
        return f"{PEER_PACKAGE} installed but not importable: {exc}"
    return None


def peer_run_seconds(handler: Any, event: Any, *, skip_time: bool = True, execution_timeout: int = 300) -> float:
    """Seconds for one ``DurableFunctionTestRunner.run`` (runner construction excluded)."""
    from aws_durable_execution_sdk_python_testing import DurableFunctionTestRunner

    with DurableFunctionTestRunner(handler, skip_time=skip_time) as runner:
        start = time.perf_counter()
        result = runner.run(input=json.dumps(event), execution_timeout=execution_timeout)
        elapsed = time.perf_counter() - start
    status = getattr(result.status, "value", result.status)
    if str(status) != "SUCCEEDED":
        raise RuntimeError(f"peer run ended {status}: {result.error}")
    return elapsed


def peer_figures(quick: bool) -> dict[str, Any]:
    """The peer's figures with the SDK as the engine's worker runs it (its seams: only the service
    differs between the two sides), and B8a's also with the SDK as AWS ships it, for reference.

    The seams are set here, not left to whatever ran before in the process: a run of B8 alone once
    timed the peer on the SDK as shipped (277 ms for 100 steps) and a full run on the seams (33 ms).
    """
    from bench import handlers

    # The runner logs every invocation at INFO; the bench prints its own summary.
    logging.getLogger("aws_durable_execution_sdk_python_testing").setLevel(logging.WARNING)
    runs = 3 if quick else 5
    speedups.uninstall()
    try:
        as_shipped = [peer_run_seconds(handlers.steps, {"steps": 100}) for _ in range(runs)]
    finally:
        speedups.install()  # the later benchmarks run on the seams, whatever happened here
    inline = [peer_run_seconds(handlers.steps, {"steps": 100}) for _ in range(runs)]
    figures: dict[str, Any] = {
        "version": PEER_VERSION,
        "sdk_seams": sorted(speedups.installed()),
        "inline_100_s": inline,
        "inline_100_median_s": statistics.median(inline),
        "inline_100_sdk_as_shipped_s": as_shipped,
        "inline_100_sdk_as_shipped_median_s": statistics.median(as_shipped),
    }
    if not quick:
        # Real clock on both sides: each of the 10 waits really lasts 1 s.
        figures["waits_10_s"] = peer_run_seconds(handlers.suspending_steps, {"steps": 10}, skip_time=False)
    return figures
