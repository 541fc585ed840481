"""B11: steps/s with 1, 2 and 4 worker processes and with 2 simulated hosts (benchmarks.md).

The load: 30 executions of ``bench.handlers.steps`` with 100 no-op steps each (3,000 steps),
started at once (``invoke(InvocationType="Event")``), timed from the first start to the last
completion observed (LISTEN ``durable_done``); two rounds, the configurations in order and then in
reverse (6,000 steps each, 24,000 in all; benchmarks.md's 10,000 per configuration would take the
row past two minutes on a 2-core machine). Each configuration gets workers of its own, started
for it and stopped after it (and warmed before the clock starts), so nothing one left behind
helps the next:

- 1, 2, 4 processes: one Celery worker, ``prefork -c N``;
- 2 hosts: two Celery workers ``-c 1``, each with its own ``DURABLE_HOST_ID`` and
  ``DURABLE_DATA_DIR``: the 2-process load spread over two "hosts" that share only PostgreSQL and
  the broker, as two machines would (on one machine here: the same cores serve both).

The figure is steps/s ÷ steps/s at 1 process in the same round, the median of the rounds. The
broker, PostgreSQL and this process share the machine's cores with the workers, so on 2 cores
4 processes cannot scale past 2 (the JSON records the cores); and on a machine that other jobs
load, more processes win a bigger share of it, which flatters every ratio: compare quiet runs.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import Stack
from bench.stackbench import Live, connect

B11_EXECUTIONS, B11_STEPS, B11_ROUNDS = 30, 100, 2
B11_PROCESSES = (1, 2, 4)
HOSTS = ("bench-host-a", "bench-host-b")
# (key, processes per worker, host ids): one worker, or one worker per simulated host.
CONFIGURATIONS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    *((str(n), n, ()) for n in B11_PROCESSES),
    ("2_hosts", 1, HOSTS),
)


@contextmanager
def _workers(env: dict[str, str], *, processes: int, hosts: tuple[str, ...] = ()) -> Iterator[list[Stack]]:
    """One worker of ``processes`` processes, or one ``-c processes`` worker per host id."""
    stacks: list[Stack] = []
    with ExitStack() as cleanup:  # callbacks run last-first: each worker stops before its folder goes
        for host in hosts or ("",):
            host_env = dict(env)
            if host:
                data_dir = Path(tempfile.mkdtemp(prefix=f"durable-bench-{host}-"))
                cleanup.callback(shutil.rmtree, data_dir, True)
                host_env.update(DURABLE_HOST_ID=host, DURABLE_DATA_DIR=str(data_dir))
            stack = Stack(host_env, concurrency=processes)
            cleanup.callback(stack.stop)
            stack.start(scheduler=False)
            stacks.append(stack)
        yield stacks


def _steps_per_second(live: Live, executions: int) -> float:
    start = time.perf_counter()
    arns = [live.start("bench-b11", {"steps": B11_STEPS}) for _ in range(executions)]
    done = max(live.watcher.wait(arn, timeout=300) for arn in arns)
    live.result(arns[0])
    live.result(arns[-1])
    return executions * B11_STEPS / (done - start)


def _measure(live: Live, env: dict[str, str], *, processes: int, hosts: tuple[str, ...]) -> tuple[float, list[int]]:
    """Steps/s of the timed load, and how many of its invocations each worker process ran."""
    with _workers(env, processes=processes, hosts=hosts):
        # Warm every process (handler import, SDK, connections) before the clock starts.
        warm = [live.start("bench-b11", {"steps": 5}) for _ in range(processes * max(1, len(hosts)) * 2)]
        for arn in warm:
            live.watcher.wait(arn, timeout=120)
        with psycopg.connect(live.ctx.dsn, autocommit=True) as conn:
            before = conn.execute("SELECT coalesce(max(id), 0) FROM durable_invocation").fetchone()[0]
        rate = _steps_per_second(live, B11_EXECUTIONS)
        with psycopg.connect(live.ctx.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT count(*) FROM durable_invocation WHERE id > %s GROUP BY worker, pid ORDER BY 1 DESC", (before,)
            ).fetchall()
        return rate, [row[0] for row in rows]


def b11(live: Live, *, env: dict[str, str]) -> None:
    ctx = live.ctx
    ctx.function("bench-b11", "bench.handlers.steps")
    rates: dict[str, list[float]] = {key: [] for key, _, _ in CONFIGURATIONS}
    spread: dict[str, list[list[int]]] = {key: [] for key, _, _ in CONFIGURATIONS}
    load_before = os.getloadavg()[0]  # other jobs on the machine flatter the larger configurations
    for round_no in range(B11_ROUNDS):
        # A-B-C-D, then D-C-B-A: a machine whose load drifts during the run favours none of them.
        order = CONFIGURATIONS if round_no % 2 == 0 else tuple(reversed(CONFIGURATIONS))
        for key, processes, hosts in order:
            ctx.database.truncate_engine_tables()
            rate, per_process = _measure(live, env, processes=processes, hosts=hosts)
            rates[key].append(rate)
            spread[key].append(per_process)
            ctx.log(
                f"B11 round {round_no + 1}: {key.replace('_', ' ')}: {rate:.0f} steps/s "
                f"(invocations per process: {per_process})"
            )
    runs = {
        key: {
            "processes": processes * max(1, len(hosts)),
            "hosts": list(hosts) or None,
            "steps_per_s": statistics.median(rates[key]),
            "rounds_steps_per_s": rates[key],
            # Timed invocations each worker process ran, per round: an idle process shows here.
            "rounds_invocations_per_process": spread[key],
        }
        for key, processes, hosts in CONFIGURATIONS
    }
    ratios = {}
    for key in rates:
        per_round = [rate / one for rate, one in zip(rates[key], rates["1"], strict=True)]
        ratios[key] = {
            "median": statistics.median(per_round),
            "min": min(per_round),
            "max": max(per_round),
            "rounds": len(per_round),
        }
    ctx.results["B11"] = {
        "executions": B11_EXECUTIONS,
        "steps": B11_STEPS,
        "rounds": B11_ROUNDS,
        "cpus": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "runs": runs,
        "ratios": ratios,
    }
    ctx.log(
        "B11: vs 1 process: "
        + ", ".join(f"{key.replace('_', ' ')} {ratio['median']:.2f}x" for key, ratio in ratios.items() if key != "1")
    )


def run(ctx: Any, env: dict[str, str]) -> None:
    """B11 on workers of its own (the suite's -c 2 worker is stopped by then)."""
    from bench.celery_app import app

    app.control.purge()
    live = connect(ctx)
    try:
        b11(live, env=env)
    finally:
        live.watcher.close()
        app.control.purge()
