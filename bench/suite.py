"""Runs the benchmark suite (benchmarks.md B1-B11) in a database of its own and writes the results.

In-process benchmarks (B1, B4, B4b, B5, the B8 peer) run first, while no worker or scheduler
is connected, so commit counts see only the measured work. Then the bench starts its own
Celery worker (prefork -c 2) and scheduler for B2, B6, B7, the B8 engine side, B3 and B9
(which starts the web server too). Last, B11 starts workers of its own: 1, 2 and 4 processes,
and two "hosts".
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bench import (
    conformance,
    dashboard,
    inprocess,
    peer,
    report,
    runtimebench,
    scalebench,
    seams,
    stackbench,
    wirebench,
)
from bench.context import BenchContext
from bench.harness import ROOT, BenchDatabase, Stack, StatementCounter, fsync_probe
from engine.duties.checkpoint import asynchronous_commit_allowed

RESULTS = ROOT / "bench" / "results" / "latest.json"


def attempt(ctx: BenchContext, key: str, step: Callable[..., Any], *args: Any) -> None:
    """Run one benchmark; a failure is recorded against its key and the suite goes on."""
    if ctx.only and key not in ctx.only:
        return
    ctx.log(f"{key} ...")
    try:
        step(*args)
    except Exception as exc:
        ctx.skipped[key] = f"error: {type(exc).__name__}: {exc}"[:300]
        ctx.out.write(traceback.format_exc())


def use_database(database: BenchDatabase) -> Callable[[], None]:
    """Point Django's default connection at the bench database and migrate it."""
    from django.core.management import call_command
    from django.db import connections

    close_django_connections()
    connections["default"].settings_dict["NAME"] = database.name
    call_command("migrate", interactive=False, verbosity=0)
    return close_django_connections


def close_django_connections() -> None:
    """Close Django's connections and their pools: with a pool, ``close()`` only hands the
    connection back, and the pool keeps the database it was created for."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()


def restore_database(name: str) -> None:
    from django.db import connections

    close_django_connections()
    connections["default"].settings_dict["NAME"] = name


def child_env(database: BenchDatabase) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database.url,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        DURABLE_HANDLER_PATHS=str(ROOT),
        DJANGO_SETTINGS_MODULE="durable_site.settings",
    )
    return env


def run_in_process(ctx: BenchContext) -> None:
    ctx.database.truncate_engine_tables()
    if "SEAMS" in ctx.only:  # asked for by name only: it runs B1 and B4 once per seam and round
        attempt(ctx, "SEAMS", seams.measure, ctx)
    attempt(ctx, "B1", inprocess.b1, ctx)
    ctx.database.truncate_engine_tables()
    attempt(ctx, "B4", inprocess.b4, ctx)
    attempt(ctx, "B5", dashboard.b5, ctx)
    if not ctx.quick:
        ctx.database.truncate_engine_tables()
        attempt(ctx, "B4b", inprocess.b4b, ctx)
        attempt(ctx, "B8", run_peer, ctx)
        ctx.database.truncate_engine_tables()
        attempt(ctx, "B10", lambda: runtimebench.b10(ctx, env=child_env(ctx.database)))


def run_peer(ctx: BenchContext) -> None:
    reason = peer.ensure_peer()
    if reason:
        ctx.skipped["B8"] = f"skipped: {reason}"
        return
    ctx.results["B8"] = {"peer": peer.peer_figures(ctx.quick)}
    if not ctx.quick:
        ctx.log("B8c: the conformance run on the peer ...")
        try:
            ctx.results["B8"]["conformance"] = {"peer": conformance.peer_side()}
        except Exception as exc:
            ctx.skipped["B8c"] = f"error on the peer: {type(exc).__name__}: {exc}"[:300]
            ctx.out.write(traceback.format_exc())


def run_on_stack(ctx: BenchContext, broker: str) -> None:
    if not broker.startswith("redis"):
        reason = "skipped: needs CELERY_BROKER_URL=redis://… (same-broker round-trip baseline)"
        for key in ("B2a",) if ctx.quick else ("B2a", "B2b", "B3", "B6", "B7"):
            ctx.skipped[key] = reason
        if not ctx.quick and (not ctx.only or "B9" in ctx.only):
            ctx.skipped["B9"] = "skipped: runs on the bench's worker stack, which needs CELERY_BROKER_URL=redis://…"
        return
    from bench.celery_app import app

    app.control.purge()
    stack = Stack(child_env(ctx.database))
    stack.start(scheduler=not ctx.quick)
    live = stackbench.connect(ctx)
    try:
        benches: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [("B2a", stackbench.b2, {"suspending": False})]
        if not ctx.quick:
            benches += [
                ("B2b", stackbench.b2, {"suspending": True}),
                ("B6", stackbench.b6, {}),
                ("B7", stackbench.b7, {}),
                ("B8", engine_side_b8, {}),
                ("B9", wirebench.b9, {"env": child_env(ctx.database)}),
                ("B3", stackbench.b3, {}),
            ]
        for key, bench, kwargs in benches:
            ctx.database.truncate_engine_tables()
            attempt(ctx, key, lambda b=bench, k=kwargs: b(live, **k))
    finally:
        live.watcher.close()
        stack.stop()
        app.control.purge()
        ctx.log(f"worker and scheduler logs: {stack.logs}")


def engine_side_b8(live: stackbench.Live) -> None:
    b8 = live.ctx.results.get("B8")
    if not b8:
        return
    b8["engine"] = stackbench.b8_engine(live)
    b8["ratio_inline_100"] = b8["engine"]["inline_100_median_s"] / b8["peer"]["inline_100_median_s"]
    if "inline_100_sdk_as_shipped_median_s" in b8["peer"]:
        shipped = b8["peer"]["inline_100_sdk_as_shipped_median_s"]
        b8["ratio_inline_100_sdk_as_shipped"] = b8["engine"]["inline_100_median_s"] / shipped
    if "waits_10_s" in b8["peer"]:
        b8["ratio_waits_10"] = b8["engine"]["waits_10_s"] / b8["peer"]["waits_10_s"]
    if "conformance" in b8:
        live.ctx.log("B8c: the conformance run on the engine ...")
        live.ctx.database.truncate_engine_tables()
        try:
            b8["conformance"]["engine"] = conformance.engine_side(live.lam)
        except Exception as exc:
            live.ctx.skipped["B8c"] = f"error on the engine: {type(exc).__name__}: {exc}"[:300]
            live.ctx.out.write(traceback.format_exc())
            return
        b8["conformance"] |= conformance.summary(b8["conformance"]["peer"], b8["conformance"]["engine"])
        c = b8["conformance"]
        live.ctx.log(
            f"B8c: {c['requirements_run']} requirements, engine {c['engine_total_s']:.1f} s, "
            f"peer {c['peer_total_s']:.1f} s, ratio {c['ratio']:.2f}"
        )


def collect_counters(results: dict[str, Any]) -> dict[str, Any]:
    counters: dict[str, Any] = {}
    if "B1" in results:
        counters["B1"] = {k: v for k, v in results["B1"]["counters"].items() if k != "runs"}
    if "B4" in results:
        counters["B4"] = {
            n: {
                k: results["B4"][n]["runs"][0][k]
                for k in ("statements_load", "statements_handler", "statements_complete", "statements_total")
            }
            for n in ("1000", "10000")
        }
    if "B5" in results:
        counters["B5_sql_queries"] = {n: results["B5"][n]["sql_queries"] for n in ("1000", "10000")}
    for key in ("B2a", "B2b"):
        if key in results:
            counters[f"{key}_per_execution"] = results[key]["execution_counters"]
    return counters


def run(*, quick: bool, json_path: Path | None, out: TextIO, only: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Run the suite; ``only`` (e.g. {"B8"}) limits it to those keys and then leaves latest.json alone."""
    from django.conf import settings

    from engine.contrib.django.setup import dsn_from_settings

    os.environ.setdefault("DURABLE_DB_POOL_SIZE", "20")  # B3's 50 clients: the baseline's pool is 20 too
    server = dsn_from_settings(settings.DATABASES["default"])
    original_name = settings.DATABASES["default"]["NAME"]
    database = BenchDatabase(server, os.environ.get("DURABLE_BENCH_DB", "durable_bench"))
    broker = str(settings.CELERY_BROKER_URL)
    started = time.monotonic()
    database.create()
    ctx = BenchContext(database=database, quick=quick, out=out, counter=StatementCounter(), only=only)
    try:
        import engine

        engine.configure(dsn=database.dsn)  # before migrate: post_migrate registers demos through the engine
        ctx.close_django = use_database(database)
        meta = report.environment(database.dsn, broker) | {
            "quick": quick,
            "only": sorted(only),
            "fsync_probe": fsync_probe(ROOT / ".data"),
            # Checkpoints that only end steps commit without waiting for the disk (B1, B7, B10).
            "async_step_ends": asynchronous_commit_allowed(),
        }
        run_in_process(ctx)
        run_on_stack(ctx, broker)
        if not ctx.quick:  # B11 starts workers of its own, once the suite's worker has stopped
            env = child_env(database) | {"CELERY_BROKER_URL": broker}
            attempt(ctx, "B11", scalebench.run, ctx, env)
    finally:
        ctx.close_pools()
        restore_database(original_name)
        database.drop()
    return write(ctx, meta | {"duration_s": round(time.monotonic() - started, 1)}, json_path)


def write(ctx: BenchContext, meta: dict[str, Any], json_path: Path | None) -> dict[str, Any]:
    rows = report.rows_for(ctx.results)
    document = {
        "meta": meta,
        "ratios": {row.key: row.as_dict() for row in rows},
        "counters": collect_counters(ctx.results),
        "skipped": ctx.skipped,
        "results": ctx.results,
    }
    text = json.dumps(document, indent=2, default=str)
    written = [] if ctx.only else [RESULTS]  # a partial run must not replace the full results
    if json_path is not None:
        written.append(json_path)
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    ctx.out.write("\n" + report.table(rows, ctx.skipped) + "\n")
    ctx.out.write(
        f"\n{meta['date']} · {meta['machine']['cpus']} CPUs {meta['machine']['cpu']} · "
        f"fsync {meta['fsync_probe']['mean_us']:.0f} µs · "
        f"asynchronous step ends {'on' if meta.get('async_step_ends') else 'off'} · {meta['duration_s']} s · "
        f"written {', '.join(map(str, written)) or 'nothing'}\n"
    )
    return document
