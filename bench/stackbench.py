"""Benchmarks through the real stack (Celery worker prefork -c 2, scheduler): B2, B3, B6, B7, B8 engine side."""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

import engine
from bench import baselines, inprocess
from bench.context import MAX_EXECUTION_TIMEOUT, BenchContext
from bench.harness import DoneWatcher, Ratio, percentile
from engine.celery_tasks import CeleryDispatcher

TINY_TIME_SCALE = 0.0001  # a 1 s wait lasts 0.1 ms: the suspend/resume path without the sleep


@dataclass
class Live:
    """Handles on the running stack: the engine's client and the completion watcher."""

    ctx: BenchContext
    lam: Any
    watcher: DoneWatcher

    def run(self, function: str, event: Any, *, time_scale: float | None = None) -> tuple[str, float]:
        """Start an execution and return (arn, seconds until its completion was observed)."""
        kwargs: dict[str, Any] = {"TimeScale": time_scale} if time_scale else {}
        start = time.perf_counter()
        arn = self.start(function, event, **kwargs)
        return arn, self.watcher.wait(arn) - start

    def start(self, function: str, event: Any, **kwargs: Any) -> str:
        response = self.lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event), **kwargs)
        return str(response["DurableExecutionArn"])

    def result(self, arn: str) -> Any:
        execution = self.lam.get_durable_execution(DurableExecutionArn=arn)
        if execution["Status"] != "SUCCEEDED":
            raise RuntimeError(f"{arn} ended {execution['Status']}: {execution.get('Error')}")
        return json.loads(execution["Result"])


def connect(ctx: BenchContext) -> Live:
    import bench.celery_app  # noqa: F401  (result backend for the round-trip baselines)

    engine.configure(dispatcher=CeleryDispatcher())
    return Live(ctx, engine.client(), DoneWatcher(ctx.dsn))


def execution_counters(ctx: BenchContext, arn: str) -> dict[str, Any]:
    """The engine's own per-execution counters: invocations (= Celery tasks), checkpoints, updates."""
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT counters FROM durable_execution WHERE arn = %s", (arn,)).fetchone()
    return dict(row[0] or {}) if row else {}


def round_trips(count: int) -> float:
    """Seconds for ``count`` sequential ``noop.delay().get()`` on the bench's worker."""
    from bench.celery_app import noop

    start = time.perf_counter()
    for _ in range(count):
        noop.delay().get(timeout=30)
    return time.perf_counter() - start


def _latency_summary(engine_s: list[float], base_s: list[float], blocks: int = 5) -> dict[str, Any]:
    size = max(1, len(engine_s) // blocks)
    ratio = Ratio(
        [
            statistics.median(engine_s[i : i + size]) / statistics.median(base_s[i : i + size])
            for i in range(0, len(engine_s), size)
        ]
    )
    return {
        "engine_ms": {"p50": percentile(engine_s, 50) * 1e3, "p95": percentile(engine_s, 95) * 1e3},
        "baseline_ms": {"p50": percentile(base_s, 50) * 1e3, "p95": percentile(base_s, 95) * 1e3},
        "ratio_p50": percentile(engine_s, 50) / percentile(base_s, 50),
        "ratio_blocks": ratio.as_dict(),
        "runs": len(engine_s),
    }


# --- B2: end-to-end latency of a 10-step workflow ----------------------------------------------


def b2(live: Live, *, suspending: bool) -> None:
    ctx = live.ctx
    key = "B2b" if suspending else "B2a"
    handler = "suspending_steps" if suspending else "steps"
    # The tiny time scale shrinks the execution timeout too: give it the maximum.
    ctx.function(f"bench-{key.lower()}", f"bench.handlers.{handler}", execution_timeout=MAX_EXECUTION_TIMEOUT)
    # benchmarks.md's 50 runs each: a suspending run's 11 invocations take ~50 ms in all here.
    runs = 20 if ctx.quick else 50
    scale = TINY_TIME_SCALE if suspending else None
    live.run(f"bench-{key.lower()}", {"steps": 10}, time_scale=scale)  # warm the worker's imports
    round_trips(2)
    if suspending:
        baselines.ensure_table(ctx.dsn)
        ideal_run(live)  # warm the worker's imports and connection
    engine_s, base_s, ideal_s, arns = [], [], [], []
    for _ in range(runs):
        base_s.append(round_trips(10))
        arn, seconds = live.run(f"bench-{key.lower()}", {"steps": 10}, time_scale=scale)
        engine_s.append(seconds)
        arns.append(arn)
        if suspending:
            ideal_s.append(ideal_run(live))
    live.result(arns[-1])
    ctx.results[key] = _latency_summary(engine_s, base_s) | {"execution_counters": execution_counters(ctx, arns[-1])}
    summary = ctx.results[key]
    ctx.log(
        f"{key}: engine p50 {summary['engine_ms']['p50']:.1f} ms, 10 round trips p50 "
        f"{summary['baseline_ms']['p50']:.1f} ms, ratio {summary['ratio_p50']:.2f}"
    )
    if suspending:
        summary["ideal_engine"] = _latency_summary(ideal_s, base_s) | {
            "engine_ratio_p50": _p50_ratio(engine_s, ideal_s)
        }
        ideal = summary["ideal_engine"]
        ctx.log(
            f"{key}: ideal engine p50 {ideal['engine_ms']['p50']:.1f} ms ({ideal['ratio_p50']:.2f} of the round trips); "
            f"engine ÷ ideal engine {ideal['engine_ratio_p50']:.2f}"
        )


def ideal_run(live: Live) -> float:
    """Seconds for B2b's execution on the ideal engine through the same broker and worker: each of
    its 11 invocations a ``bench.ideal_hop`` message (``bench.inprocess.ideal_invocation``)."""
    from bench.celery_app import ideal_hop

    run_id = f"ideal-{uuid.uuid4()}"
    start = time.perf_counter()
    ideal_hop.delay(run_id, {}, 10)
    return live.watcher.wait(run_id) - start


def _p50_ratio(numerator: list[float], denominator: list[float]) -> float:
    return percentile(numerator, 50) / percentile(denominator, 50)


# --- B6: callback and timer wake-up -----------------------------------------------------------


def _suspended_callback(ctx: BenchContext, arn: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                """SELECT o.callback_id FROM durable_execution e JOIN durable_operation o ON o.execution_id = e.id
                   WHERE e.arn = %s AND o.type = 'CALLBACK' AND o.callback_id IS NOT NULL
                     AND NOT e.running AND NOT e.needs_invoke""",
                (arn,),
            ).fetchone()
            if row:
                return str(row[0])
            time.sleep(0.02)
    raise TimeoutError(f"{arn} did not suspend on its callback")


def _scheduled_end(ctx: BenchContext, arn: str) -> float:
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        row = conn.execute(
            """SELECT o.doc FROM durable_operation o JOIN durable_execution e ON e.id = o.execution_id
               WHERE e.arn = %s AND o.type = 'WAIT'""",
            (arn,),
        ).fetchone()
    assert row is not None
    doc = row[0]
    end_ms = (doc.get("WaitDetails") or {}).get("ScheduledEndTimestamp") or doc["StartTimestamp"] + 1000
    return float(end_ms) / 1000


def b6(live: Live) -> None:
    ctx = live.ctx
    ctx.function("bench-callback", "bench.handlers.callback_then_step")
    ctx.function("bench-wait", "bench.handlers.wait_then_step")
    runs = 30
    arns = [live.start("bench-callback", {}) for _ in range(runs)]
    callback_ids = [_suspended_callback(ctx, arn) for arn in arns]
    round_trips(2)
    wake_s, base_s = [], []
    for arn, callback_id in zip(arns, callback_ids, strict=True):
        base_s.append(round_trips(1))
        sent = time.time()
        live.lam.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"ok"')
        live.watcher.wait(arn)
        wake_s.append(float(live.result(arn)) - sent)
    overshoot = _wait_overshoot(live)
    ctx.results["B6"] = {"callback": _latency_summary(wake_s, base_s), "wait_overshoot_ms": overshoot}
    ctx.log(
        f"B6: callback wake-up p50 {percentile(wake_s, 50) * 1e3:.1f} ms vs round trip "
        f"{percentile(base_s, 50) * 1e3:.1f} ms; wait(1 s) overshoot p95 {overshoot['p95']:.0f} ms"
    )


def _wait_overshoot(live: Live, runs: int = 10, stagger: float = 0.15) -> dict[str, Any]:
    arns = []
    for _ in range(runs):
        arns.append(live.start("bench-wait", {}))
        time.sleep(stagger)
    values = []
    for arn in arns:
        live.watcher.wait(arn, timeout=60)
        values.append((float(live.result(arn)) - _scheduled_end(live.ctx, arn)) * 1e3)
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values), "runs": values}


# --- B7: sustained step throughput --------------------------------------------------------------


def _engine_throughput(live: Live, executions: int, steps: int) -> tuple[float, float]:
    start = time.perf_counter()
    arns = [live.start("bench-b7", {"steps": steps}) for _ in range(executions)]
    done = max(live.watcher.wait(arn, timeout=300) for arn in arns)
    live.result(arns[-1])
    elapsed = done - start
    return executions * steps / elapsed, elapsed


def _baseline_throughput(dsn: str, seconds: float, processes: int = 2) -> float:
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    start_at = time.time() + 1.0  # both processes begin together, after their imports
    procs = [
        spawn.Process(target=baselines.insert_for, args=(dsn, start_at, seconds, results)) for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    rows = sum(results.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join(timeout=10)
    return rows / seconds


def _ideal_engine_throughput(dsn: str, seconds: float, processes: int = 2) -> float:
    """Steps/s of ``processes`` processes each running the ideal engine (bench/inprocess.py)."""
    spawn = multiprocessing.get_context("spawn")
    results, ready = spawn.Queue(), spawn.Barrier(processes + 1)
    procs = [
        spawn.Process(target=inprocess.ideal_engine_for, args=(dsn, B7_STEPS, ready, seconds, results))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    ready.wait(timeout=120)  # both imported the SDK and connected: they start together
    steps = sum(results.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join(timeout=10)
    return steps / seconds


# benchmarks.md's 50 executions x 100 steps: ~3 s a side at ~1,600 steps/s, three rounds in its
# ~25 s budget. (Shorter rounds made the bare-INSERT baseline swing between 2,600 and 6,800/s.)
B7_EXECUTIONS, B7_STEPS, B7_ROUNDS = 50, 100, 3


def b7(live: Live) -> None:
    ctx = live.ctx
    ctx.function("bench-b7", "bench.handlers.steps")
    baselines.ensure_table(ctx.dsn)
    ratio, own, rounds = Ratio(), Ratio(), []
    for _ in range(B7_ROUNDS):
        engine_rate, elapsed = _engine_throughput(live, B7_EXECUTIONS, B7_STEPS)
        ideal_rate = _ideal_engine_throughput(ctx.dsn, elapsed)
        base_rate = _baseline_throughput(ctx.dsn, elapsed)
        own.per_round.append(engine_rate / ideal_rate)
        ratio.per_round.append(engine_rate / base_rate)
        rounds.append(
            {
                "engine_steps_per_s": engine_rate,
                "ideal_engine_steps_per_s": ideal_rate,
                "baseline_inserts_per_s": base_rate,
                "seconds": elapsed,
            }
        )
    ctx.results["B7"] = {
        "executions": B7_EXECUTIONS,
        "steps": B7_STEPS,
        "rounds": rounds,
        "own_ratio": own.as_dict(),
        "ratio": ratio.as_dict(),
    }
    ctx.log(
        f"B7: engine {rounds[-1]['engine_steps_per_s']:.0f} steps/s, ideal engine "
        f"{rounds[-1]['ideal_engine_steps_per_s']:.0f}/s, bare inserts {rounds[-1]['baseline_inserts_per_s']:.0f}/s: "
        f"own ratio {own.median:.2f}, raw ratio {ratio.median:.2f}"
    )


# --- B3: starts per second, 50 concurrent clients -----------------------------------------------


def _hammer(clients: int, seconds: float, start_one: Any) -> tuple[list[float], list[Any], int]:
    """Run ``start_one(client, i)`` from ``clients`` threads for ``seconds``; return latencies, keys, errors."""
    latencies: list[float] = []
    keys: list[Any] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(number: int) -> None:
        own_lat, own_keys, i = [], [], 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                own_keys.append(start_one(number, i))
                own_lat.append(time.perf_counter() - t0)
            except Exception:
                with lock:
                    errors[0] += 1
            i += 1
        with lock:
            latencies.extend(own_lat)
            keys.extend(own_keys)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, keys, errors[0]


def b3(live: Live, clients: int = 50, phase_s: float = 4.0) -> None:
    from bench.celery_app import app, noop_fire

    ctx = live.ctx
    ctx.function("bench-noop", "bench.handlers.noop")
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_start (id bigserial PRIMARY KEY, name text UNIQUE, "
            "input jsonb, status text, started_at timestamptz DEFAULT now())"
        )
    # As many connections as the engine's pool may open (the suite's DURABLE_DB_POOL_SIZE, 20 by
    # default), so both sides share the same budget of connections.
    size = int(os.environ.get("DURABLE_DB_POOL_SIZE", "20"))
    pool = ConnectionPool(ctx.dsn, min_size=size, max_size=size, kwargs={"autocommit": True}, open=True)
    payload = baselines.PAYLOAD_JSON

    def baseline_start(client: int, i: int) -> str:
        name = f"{client}-{i}-{time.monotonic_ns()}"
        with pool.connection() as conn:
            conn.execute("INSERT INTO bench_start (name, input, status) VALUES (%s, %s, 'RUNNING')", (name, payload))
        noop_fire.delay()
        return name

    phases: list[dict[str, Any]] = []
    acknowledged: list[tuple[str, str]] = []
    for round_no in range(2):
        for side in ("baseline", "engine"):
            if side == "baseline":
                lat, _, errors = _hammer(clients, phase_s, baseline_start)
            else:

                def engine_start(client: int, i: int, round_no: int = round_no) -> tuple[str, str]:
                    name = f"b3-{round_no}-{client}-{i}"
                    return name, live.start("bench-noop", json.loads(payload), DurableExecutionName=name)

                lat, keys, errors = _hammer(clients, phase_s, engine_start)
                acknowledged.extend(keys)
            phases.append(
                {
                    "side": side,
                    "starts_per_s": len(lat) / phase_s,
                    "p99_ms": percentile(lat, 99) * 1e3,
                    "p50_ms": percentile(lat, 50) * 1e3,
                    "errors": errors,
                    "starts": len(lat),
                }
            )
            app.control.purge()
            _settle_backlog(ctx)
    pool.close()
    ctx.results["B3"] = _b3_summary(phases) | {"idempotency": _replay_keys(live, acknowledged, payload)}
    summary = ctx.results["B3"]
    ctx.log(
        f"B3: engine {summary['engine_starts_per_s']:.0f} starts/s vs baseline "
        f"{summary['baseline_starts_per_s']:.0f}/s; p99 {summary['engine_p99_ms']:.1f} vs "
        f"{summary['baseline_p99_ms']:.1f} ms; duplicates {summary['idempotency']['duplicates']}"
    )


def _settle_backlog(ctx: BenchContext) -> None:
    """Keep executions whose queued invocation was purged from being re-dispatched later."""
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE durable_execution SET needs_invoke = false WHERE function_name = 'bench-noop' "
            "AND status = 'RUNNING' AND NOT running"
        )
    time.sleep(0.5)


def _b3_summary(phases: list[dict[str, Any]]) -> dict[str, Any]:
    def side(name: str, key: str) -> list[float]:
        return [p[key] for p in phases if p["side"] == name]

    throughput = Ratio(
        [e / b for e, b in zip(side("engine", "starts_per_s"), side("baseline", "starts_per_s"), strict=True)]
    )
    p99 = Ratio([e / b for e, b in zip(side("engine", "p99_ms"), side("baseline", "p99_ms"), strict=True)])
    return {
        "phases": phases,
        "throughput_ratio": throughput.as_dict(),
        "p99_ratio": p99.as_dict(),
        "engine_starts_per_s": statistics.mean(side("engine", "starts_per_s")),
        "baseline_starts_per_s": statistics.mean(side("baseline", "starts_per_s")),
        "engine_p99_ms": statistics.median(side("engine", "p99_ms")),
        "baseline_p99_ms": statistics.median(side("baseline", "p99_ms")),
    }


def _replay_keys(live: Live, acknowledged: list[tuple[str, str]], payload: str, sample: int = 200) -> dict[str, Any]:
    """Start a sample of acknowledged names again: each must return its first ARN, adding no row."""
    replayed = acknowledged[:: max(1, len(acknowledged) // sample)][:sample]
    mismatched = sum(
        live.start("bench-noop", json.loads(payload), DurableExecutionName=name) != arn for name, arn in replayed
    )
    with psycopg.connect(live.ctx.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT name) FROM durable_execution "
            "WHERE function_name = 'bench-noop' AND name LIKE 'b3-%%'"
        ).fetchone()
    assert row is not None
    rows, distinct = int(row[0]), int(row[1])
    return {
        "acknowledged": len(acknowledged),
        "rows": rows,
        "replayed": len(replayed),
        "replay_arn_mismatches": mismatched,
        "duplicates": rows - distinct + abs(rows - len(acknowledged)),
    }


# --- B8: the engine side of the comparison with AWS's local runner -------------------------------


def b8_engine(live: Live) -> dict[str, Any]:
    """The B8 handlers on the full stack: start to observed completion, as a user sees it."""
    ctx = live.ctx
    ctx.function("bench-b8-inline", "bench.handlers.steps")
    ctx.function("bench-b8-waits", "bench.handlers.suspending_steps")
    runs = 3 if ctx.quick else 5
    inline = [live.run("bench-b8-inline", {"steps": 100})[1] for _ in range(runs)]
    figures: dict[str, Any] = {"inline_100_s": inline, "inline_100_median_s": statistics.median(inline)}
    if not ctx.quick:
        arn, seconds = live.run("bench-b8-waits", {"steps": 10})
        live.result(arn)
        figures["waits_10_s"] = seconds
    return figures
