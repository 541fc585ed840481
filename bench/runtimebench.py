"""B10: a handler out of process (benchmarks.md, re-based section).

The same handler (``bench.handlers.steps``) runs as two functions: one imported into the
worker, one given as code (``Code.ZipFile``, ``Runtime`` python3.11) that runs in its own
runtime process, whose SDK checkpoints through the wire API of `make run`'s web server
(started by the bench on its database). Each invocation runs in this process, as B1's do, so
both sides pay the same claim and end; what differs is the runtime process and HTTP.

- per step: the marginal seconds per step (an N-step invocation less a one-step one) out of
  process ÷ in the worker, interleaved A-B-A-B; the ratio of the medians;
- warm start: a one-step invocation whose runtime process is already running, and the same in
  the worker;
- cold start: the first invocation of a new function, which starts its runtime process.
"""

from __future__ import annotations

import io
import statistics
import uuid
import zipfile
from typing import Any

from bench.harness import ROOT
from bench.inprocess import engine_seconds_per_step
from bench.wirebench import web_server
from engine import registry, runtimes

STEPS = 200
ROUNDS = 3
STARTS = 5


def b10(ctx: Any, *, env: dict[str, str]) -> None:
    in_worker = ctx.function("bench-b10-worker", "bench.handlers.steps")
    saved_url = runtimes.settings.api_url
    with web_server(env) as url:
        runtimes.configure(api_url=url)  # where the runtime processes' SDK checkpoints
        try:
            cold_s = _invocation_seconds(ctx, _code_function(f"bench-b10-{uuid.uuid4().hex[:6]}"), 1)
            out_of_process = _code_function("bench-b10-runtime")
            _invocation_seconds(ctx, out_of_process, 1)  # its runtime process starts here
            warm = [_invocation_seconds(ctx, out_of_process, 1) for _ in range(STARTS)]
            worker = [_invocation_seconds(ctx, in_worker, 1) for _ in range(STARTS)]
            # The marginal cost of a step: an N-step invocation less a one-step one, so that each
            # side's fixed cost per invocation (claim, end, the SDK's start and stop) is left out.
            per_step_out, per_step_in = [], []
            for _ in range(ROUNDS):
                out_s = _invocation_seconds(ctx, out_of_process, STEPS)
                in_s = _invocation_seconds(ctx, in_worker, STEPS)
                per_step_out.append((out_s - statistics.median(warm)) / (STEPS - 1))
                per_step_in.append((in_s - statistics.median(worker)) / (STEPS - 1))
        finally:
            runtimes.settings.api_url = saved_url
    engine_us, base_us = statistics.median(per_step_out) * 1e6, statistics.median(per_step_in) * 1e6
    ctx.results["B10"] = {
        "steps": STEPS,
        "per_step_us": {
            "out_of_process": [seconds * 1e6 for seconds in per_step_out],
            "in_worker": [seconds * 1e6 for seconds in per_step_in],
        },
        "ratio": engine_us / base_us,
        "ratio_min": min(per_step_out) / max(per_step_in),
        "ratio_max": max(per_step_out) / min(per_step_in),
        "warm_start_ms": statistics.median(warm) * 1e3,
        "in_worker_one_step_ms": statistics.median(worker) * 1e3,
        "cold_start_ms": cold_s * 1e3,
    }
    ctx.log(
        f"B10: a step out of process {engine_us:.0f} µs vs in the worker {base_us:.0f} µs, ratio {engine_us / base_us:.2f}; "
        f"one-step invocation warm {statistics.median(warm) * 1e3:.0f} ms (in the worker "
        f"{statistics.median(worker) * 1e3:.0f} ms), cold {cold_s * 1e3:.0f} ms"
    )


def _code_function(name: str) -> dict[str, Any]:
    """``bench.handlers`` as a zip of its own, run by a python3.11 runtime process."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(ROOT / "bench" / "handlers.py", "handlers.py")
    registry.create_function(
        name,
        {
            "Handler": "handlers.steps",
            "Runtime": "python3.11",
            "Code": {"ZipFile": archive.getvalue()},
            "Timeout": 900,
            "DurableConfig": {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 1},
        },
        replace=True,
    )
    return registry.get_function_row(name)


def _invocation_seconds(ctx: Any, fn: dict[str, Any], steps: int) -> float:
    return engine_seconds_per_step(ctx, fn, steps) * steps
