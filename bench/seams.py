"""What each SDK seam (``engine.speedups``) is worth: B1 and B4 with all seams, and with all but one.

``manage.py durable_bench --only SEAMS``. The configurations run interleaved, in a shuffled
order each round, so a busy machine slows them alike; each row reports the median over the
rounds and the change against "all seams". A seam is kept while leaving it out costs at least
5% on some row.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from typing import Any

from bench import inprocess
from bench.context import BenchContext
from engine import invoker, speedups

B1_STEPS = 300
B4_SIZES = (1000, 10000)
ALL = "all seams"


def _configurations() -> list[str]:
    """All seams, and all but one for each seam (``DURABLE_SEAMS_LEFT_OUT=a,b``: those only)."""
    names = [name for name in os.environ.get("DURABLE_SEAMS_LEFT_OUT", "").split(",") if name]
    return [ALL, *(f"without {name}" for name in sorted(names or speedups.SEAM_NAMES))]


def _install(configuration: str) -> None:
    speedups.uninstall()
    left_out = configuration.removeprefix("without ")
    speedups.install(skip=[] if configuration == ALL else [left_out])


def _timed(call: Any, *args: Any) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process's threads) of one call.

    On a machine busy with other work the wall time of a run varies several-fold; the CPU time
    this process spends (the SDK's threads, the engine's, not PostgreSQL's) varies far less, but
    misses what a seam saves by not waiting. Both are reported.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    call(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def _one_round(ctx: BenchContext, fns: dict[str, Any], templates: Any, configuration: str) -> dict[str, float]:
    _install(configuration)
    row = ctx.start(fns["B1"], {"steps": B1_STEPS})
    ctx.dispatcher.drain()
    wall, cpu = _timed(invoker.run_invocation, row["id"])
    figures = {"B1 µs/step": wall / B1_STEPS * 1e6, "B1 CPU µs/step": cpu / B1_STEPS * 1e6}
    for n in B4_SIZES:
        execution_id = inprocess.seed_completed_steps(ctx, fns["B4"], n, templates)
        wall, cpu = _timed(inprocess.replay_once, ctx, execution_id)
        figures[f"B4 N={n} ms"], figures[f"B4 N={n} CPU ms"] = wall * 1e3, cpu * 1e3
    return figures


def measure(ctx: BenchContext) -> None:
    ctx.in_process()
    fns = {
        "B1": ctx.function("bench-steps", "bench.handlers.steps"),
        "B4": ctx.function("bench-replay", "bench.handlers.steps_then_wait"),
    }
    templates = inprocess.capture_templates(ctx, fns["B4"])
    rounds = int(os.environ.get("DURABLE_SEAMS_ROUNDS", "7"))
    configurations = _configurations()
    _one_round(ctx, fns, templates, ALL)  # warm
    samples: dict[str, list[dict[str, float]]] = {c: [] for c in configurations}
    for number in range(rounds):
        for configuration in random.sample(configurations, len(configurations)):
            samples[configuration].append(_one_round(ctx, fns, templates, configuration))
        ctx.log(f"SEAMS round {number + 1}/{rounds} done")
    speedups.install()
    ctx.results["SEAMS"] = _summary(samples)
    ctx.out.write(_table(ctx.results["SEAMS"]) + "\n")


def _summary(samples: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    rows = list(samples[ALL][0])
    summary: dict[str, Any] = {}
    for configuration, runs in samples.items():
        summary[configuration] = {
            row: {
                "median": statistics.median(run[row] for run in runs),
                "min": min(run[row] for run in runs),
                "max": max(run[row] for run in runs),
                "runs": [run[row] for run in runs],
            }
            for row in rows
        }
    for figures in summary.values():
        for row, figure in figures.items():
            figure["vs_all_pct"] = 100 * (figure["median"] / summary[ALL][row]["median"] - 1)
            figure["min_vs_all_pct"] = 100 * (figure["min"] / summary[ALL][row]["min"] - 1)
    return summary


def _table(summary: dict[str, Any]) -> str:
    rows = list(summary[ALL])
    lines = ["median (min) and change against all seams, median/min".ljust(42)]
    lines.append("configuration".ljust(42) + "".join(row.rjust(24) for row in rows))
    for configuration, figures in summary.items():
        cells = []
        for row in rows:
            f = figures[row]
            cells.append(
                f"{f['median']:.0f} ({f['min']:.0f}) {f['vs_all_pct']:+.0f}%/{f['min_vs_all_pct']:+.0f}%".rjust(24)
            )
        lines.append(configuration.ljust(42) + "".join(cells))
    return "\n".join(lines)
