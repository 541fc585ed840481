"""Turn raw bench results into verdict rows (floor/target/stretch), a stdout table and the JSON file."""

from __future__ import annotations

import math
import os
import platform
import socket
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import psycopg

from bench.harness import ROOT

INF = math.inf
FLOOR_FAILED = "FAIL (floor)"  # a Row's verdict when it misses its floor, which is what CI gates on
# Floor, target, stretch. The re-based rows (benchmarks.md, 2026-12-03) judge what the engine adds:
# engine ÷ the ideal engine (the SDK alone + the baseline's own write) measured in the same run.
B1_OWN_SYNC_LEVELS = (2.0, 1.3, 1.1)
B1_OWN_ASYNC_LEVELS = (2.5, 1.5, 1.2)
B4_OWN_LEVELS = (2.0, 1.3, 1.1)
B7_OWN_LEVELS = (0.5, 0.8, 0.9)
B2B_LEVELS = (2.5, 1.5, 1.2)
# B9: a wire call through boto3 over HTTP ÷ the same call to a bare endpoint of the same server (p50).
# Target and stretch are benchmarks.md's. The floor, twice the target, is where the wire API costs
# three bare round trips on top of the one no server avoids: the target already allows one more for
# the work every such call must do (verify the signature against a stored key, one engine
# transaction with its commit, one broker publish); beyond twice that is a regression of the kind
# a floor is for (a per-request connection, key derivation or model load, a synchronous wait),
# not load noise. Not gated in CI yet: on the loaded 2-core box the callback measured 4.2-5.0.
B9_LEVELS = (4.0, 2.0, 1.5)
# B10: a step checkpointed over HTTP by a handler in its own runtime process ÷ the same step in the
# worker. Target and stretch are benchmarks.md's; it names no floor, so the floor is twice the
# target (the same reasoning as B9's): past that, something per step (a connection, a key
# derivation, a process round trip beyond the one HTTP call) is wrong, not the machine's load.
B10_LEVELS = (6.0, 3.0, 2.0)
# B11: steps/s with 2 worker processes (or 2 hosts of one process each) ÷ with 1. The target is
# benchmarks.md's (≥ 1.6x at 2); it names no floor or stretch. Floor 1.0: a second process that
# adds nothing means something serialises them (a lock, a shared connection), not the machine.
# Stretch 1.8: near-linear, as far as one core each for PostgreSQL and the broker allows.
B11_LEVELS = (1.0, 1.6, 1.8)
# The raw ratios against a bare write stay in the report as information, beside their old levels.
B1_RAW_SYNC_LEVELS = (2.0, 1.3, 1.1)
B1_RAW_ASYNC_LEVELS = (3.0, 2.0, 1.5)
B4_RAW_LEVELS = (5.0, 2.0, 1.5)
B7_RAW_LEVELS = (0.3, 0.5, 0.7)


@dataclass(frozen=True)
class Row:
    """One line of benchmarks.md's target table, with this run's value."""

    key: str
    label: str
    value: float
    floor: float
    target: float
    stretch: float
    higher_is_better: bool = False
    kind: str = "ratio"  # ratio | counter | absolute | reference (shown beside a row, not judged)
    spread: dict[str, Any] | None = None

    def verdict(self) -> str:
        if self.kind == "reference":
            return f"reference (would be: {self._level()})"
        return self._level()

    def _level(self) -> str:
        sign = -1 if self.higher_is_better else 1
        value, floor, target, stretch = (sign * x for x in (self.value, self.floor, self.target, self.stretch))
        if value > floor:
            return FLOOR_FAILED
        if value <= stretch:
            return "stretch"
        if value <= target:
            return "target"
        return "below target"

    def as_dict(self) -> dict[str, Any]:
        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "label": self.label,
            "value": self.value,
            "floor": finite(self.floor),
            "target": self.target,
            "stretch": self.stretch,
            "better": "higher" if self.higher_is_better else "lower",
            "kind": self.kind,
            "spread": self.spread,
            "verdict": self.verdict(),
        }


def _ratio_row(key: str, label: str, ratio: dict[str, Any], levels: tuple[float, float, float], **kw: Any) -> Row:
    return Row(key, label, ratio["median"], *levels, spread=ratio, **kw)


def rows_for(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for build in (_b1, _b2, _b3, _b4, _b5, _b6, _b7, _b8, _b9, _b10, _b11):
        rows.extend(build(results))
    return rows


def _b1(r: dict[str, Any]) -> list[Row]:
    b1 = r.get("B1")
    if not b1:
        return []
    counters = b1["counters"]
    own = "µs/step ÷ ideal engine's (SDK alone + INSERT+COMMIT), {}"
    raw = "raw: µs/step ÷ µs/INSERT+COMMIT, {}"
    return [
        _ratio_row("B1_own_sync", own.format("sync"), b1["sync"]["own_ratio"], B1_OWN_SYNC_LEVELS),
        _ratio_row("B1_own_async", own.format("both async commit"), b1["async"]["own_ratio"], B1_OWN_ASYNC_LEVELS),
        _ratio_row("B1_raw_sync", raw.format("sync"), b1["sync"]["ratio"], B1_RAW_SYNC_LEVELS, kind="reference"),
        _ratio_row("B1_raw_async", raw.format("async"), b1["async"]["ratio"], B1_RAW_ASYNC_LEVELS, kind="reference"),
        Row("B1_commits_per_step", "commits per step", counters["commits_per_step"], 1.0, 1.0, 0.999, kind="counter"),
        Row(
            "B1_statements_per_step",
            "SQL statements per step",
            counters["statements_per_step"],
            3,
            2,
            1,
            kind="counter",
        ),
    ]


def _latency_row(key: str, label: str, summary: dict[str, Any], levels: tuple[float, float, float]) -> Row:
    return Row(key, label, summary["ratio_p50"], *levels, spread=summary["ratio_blocks"])


def _b2(r: dict[str, Any]) -> list[Row]:
    rows = []
    if "B2a" in r:
        rows.append(
            _latency_row("B2a_inline_10_steps_p50", "10 steps inline ÷ 10 round trips (p50)", r["B2a"], (1.0, 0.5, 0.3))
        )
    if "B2b" in r:
        rows.append(
            _latency_row(
                "B2b_suspending_10_steps_p50", "10 suspending steps ÷ 10 round trips (p50)", r["B2b"], B2B_LEVELS
            )
        )
    ideal = r.get("B2b", {}).get("ideal_engine")
    if ideal:
        # Information: what the ideal engine scores on B2b's own scale, and the engine against it on
        # the re-based B1 scale (benchmarks.md re-bases no B2b level).
        rows.append(
            Row(
                "B2b_ideal_engine_p50",
                "ideal engine's 10 suspending steps ÷ 10 round trips (p50)",
                ideal["ratio_p50"],
                *B2B_LEVELS,
                kind="reference",
                spread=ideal["ratio_blocks"],
            )
        )
        rows.append(
            Row(
                "B2b_own_p50",
                "10 suspending steps ÷ the ideal engine's (p50)",
                ideal["engine_ratio_p50"],
                *B1_OWN_SYNC_LEVELS,
                kind="reference",
            )
        )
    return rows


def _b3(r: dict[str, Any]) -> list[Row]:
    b3 = r.get("B3")
    if not b3:
        return []
    return [
        _ratio_row(
            "B3_starts_per_s",
            "starts/s ÷ INSERT+delay baseline (≥)",
            b3["throughput_ratio"],
            (0.5, 0.8, 1.0),
            higher_is_better=True,
        ),
        _ratio_row("B3_p99_start_latency", "p99 start latency ÷ baseline p99", b3["p99_ratio"], (3, 2, 1.5)),
        Row(
            "B3_duplicates",
            "duplicate executions on replayed keys",
            b3["idempotency"]["duplicates"] + b3["idempotency"]["replay_arn_mismatches"],
            0,
            0,
            0,
            kind="counter",
        ),
    ]


def _b4(r: dict[str, Any]) -> list[Row]:
    b4 = r.get("B4")
    if not b4:
        return []
    rows = []
    for n, tag in ((1000, "1k"), (10000, "10k")):
        entry = b4[str(n)]
        rows.append(
            _ratio_row(
                f"B4_own_{tag}",
                f"replay ÷ ideal engine's (bulk load + SDK-alone replay), N={tag}",
                entry["own_ratio"],
                B4_OWN_LEVELS,
            )
        )
        rows.append(
            _ratio_row(
                f"B4_raw_{tag}", f"raw: replay ÷ bulk load, N={tag}", entry["ratio"], B4_RAW_LEVELS, kind="reference"
            )
        )
    for n, tag in ((1000, "1k"), (10000, "10k")):
        rows.append(
            Row(
                f"B4_statements_per_replay_{tag}",
                f"statements per replay, N={tag}",
                b4[str(n)]["statements_per_replay"],
                n / 100,
                math.ceil(n / 1000) + 2,
                2,
                kind="counter",
            )
        )
    rows.append(Row("B4_t10k_over_t1k", "t(10k) ÷ t(1k)", b4["t10k_over_t1k"], 15, 12, 11))
    b4b = r.get("B4b")
    if b4b:
        small, large = b4b["sizes"]
        rows.append(
            Row(
                "B4b_t4n_over_tn", f"t({large}) ÷ t({small}), all ops suspending", b4b["t_large_over_t_small"], 10, 6, 5
            )
        )
    return rows


# Floor, target, stretch of the timeline's server time ÷ SELECT+dumps (CI checks the floor too).
B5_TIME_LEVELS = (4.0, 2.0, 1.5)


def _b5(r: dict[str, Any]) -> list[Row]:
    b5 = r.get("B5")
    if not b5:
        return []
    small, large = b5["1000"], b5["10000"]
    rows = [
        _ratio_row(
            "B5_timeline_server_time", "timeline server time ÷ SELECT+dumps (10k)", large["ratio"], B5_TIME_LEVELS
        )
    ]
    if large["ops_in_first_response"] < large["ops"]:
        # A capped first response is judged by its size (benchmarks.md: "or paginated first response").
        rows.append(
            Row(
                "B5_first_response_kib",
                f"first response KiB ({large['ops_in_first_response']} of 10k ops)",
                large["first_response_kib"],
                INF,
                250,
                250,
                kind="counter",
            )
        )
    else:
        rows += [
            Row("B5_bytes_per_op_raw", "bytes per op, raw (10k)", large["bytes_per_op"], 300, 150, 100, kind="counter"),
            Row(
                "B5_bytes_per_op_gzip",
                "bytes per op, gzip (10k)",
                large["gzip_bytes_per_op"],
                30,
                15,
                10,
                kind="counter",
            ),
        ]
    return [
        *rows,
        # Floor: the 10k count must not exceed the 1k count (queries growing with N fail).
        Row(
            "B5_sql_queries",
            "SQL queries at 10k (floor: the 1k count)",
            large["sql_queries"],
            small["sql_queries"],
            10,
            5,
            kind="counter",
        ),
    ]


def _b6(r: dict[str, Any]) -> list[Row]:
    b6 = r.get("B6")
    if not b6:
        return []
    return [
        _latency_row("B6_callback_wakeup_p50", "callback wake-up ÷ 1 round trip (p50)", b6["callback"], (4, 2, 1.5)),
        Row(
            "B6_wait_overshoot_p95_ms",
            "wait(1 s) overshoot p95 (ms)",
            b6["wait_overshoot_ms"]["p95"],
            1000,
            100,
            20,
            kind="absolute",
        ),
    ]


def _b7(r: dict[str, Any]) -> list[Row]:
    b7 = r.get("B7")
    if not b7:
        return []
    return [
        _ratio_row(
            "B7_own",
            "steps/s ÷ 2 processes running the ideal engine (≥)",
            b7["own_ratio"],
            B7_OWN_LEVELS,
            higher_is_better=True,
        ),
        _ratio_row(
            "B7_raw",
            "raw: steps/s ÷ 2 bare INSERT loops (≥)",
            b7["ratio"],
            B7_RAW_LEVELS,
            higher_is_better=True,
            kind="reference",
        ),
    ]


def _b8(r: dict[str, Any]) -> list[Row]:
    b8 = r.get("B8")
    if not b8:
        return []
    rows = [
        Row(
            "B8a_100_steps_vs_peer",
            "100 inline steps: engine ÷ AWS local runner",
            b8["ratio_inline_100"],
            INF,
            1.5,
            1.0,
        )
    ]
    if "ratio_inline_100_sdk_as_shipped" in b8:
        rows.append(
            Row(
                "B8a_peer_sdk_as_shipped",
                "100 inline steps: engine ÷ AWS local runner on the SDK as shipped (without the seams)",
                b8["ratio_inline_100_sdk_as_shipped"],
                INF,
                1.5,
                1.0,
                kind="reference",
            )
        )
    if "ratio_waits_10" in b8:
        rows.append(
            Row(
                "B8b_10_waits_vs_peer",
                "10 steps + 1 s waits: engine ÷ AWS local runner",
                b8["ratio_waits_10"],
                INF,
                1.1,
                1.0,
            )
        )
    conformance = b8.get("conformance", {})
    if "ratio" in conformance:
        rows.append(
            Row(
                "B8c_conformance_vs_peer",
                f"conformance run ({conformance['requirements_run']} requirements): engine ÷ AWS local runner",
                conformance["ratio"],
                INF,
                1.1,
                1.0,
            )
        )
    return rows


def _b9(r: dict[str, Any]) -> list[Row]:
    b9 = r.get("B9")
    if not b9:
        return []
    return [
        _latency_row(
            "B9_callback_success_p50",
            "boto3 send_durable_execution_callback_success ÷ bare endpoint (p50)",
            b9["callback_success"],
            B9_LEVELS,
        ),
        _latency_row("B9_invoke_event_p50", "boto3 invoke(Event) ÷ bare endpoint (p50)", b9["invoke_event"], B9_LEVELS),
    ]


def _b10(r: dict[str, Any]) -> list[Row]:
    b10 = r.get("B10")
    if not b10:
        return []
    spread = {"median": b10["ratio"], "min": b10["ratio_min"], "max": b10["ratio_max"]}
    return [
        Row(
            "B10_http_step", "a step out of process over HTTP ÷ in the worker", b10["ratio"], *B10_LEVELS, spread=spread
        ),
        # The warm and cold starts have no levels in benchmarks.md: they are in the JSON and the log.
    ]


def _b11(r: dict[str, Any]) -> list[Row]:
    b11 = r.get("B11")
    if not b11:
        return []
    ratios, runs = b11["ratios"], b11["runs"]

    def label(key: str, what: str) -> str:
        return f"steps/s, {what} ÷ 1 process ({runs[key]['steps_per_s']:.0f} vs {runs['1']['steps_per_s']:.0f}/s, ≥)"

    return [
        _ratio_row("B11_2_processes", label("2", "2 processes"), ratios["2"], B11_LEVELS, higher_is_better=True),
        _ratio_row(
            "B11_2_hosts", label("2_hosts", "2 hosts x 1 process"), ratios["2_hosts"], B11_LEVELS, higher_is_better=True
        ),
        # The curve's next point: judged by nothing in benchmarks.md, and on a 2-core machine
        # (b11["cpus"]) 4 processes share the cores with PostgreSQL and the broker.
        _ratio_row(
            "B11_4_processes",
            label("4", f"4 processes on {b11['cpus']} cores"),
            ratios["4"],
            B11_LEVELS,
            higher_is_better=True,
            kind="reference",
        ),
    ]


# --- output ------------------------------------------------------------------------------------


def table(rows: list[Row], skipped: dict[str, str]) -> str:
    def fmt(x: float) -> str:
        if not math.isfinite(x):
            return "-"
        return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"

    lines = [f"{'metric':<36} {'value':>8} {'min-max':>13} {'floor':>7} {'target':>7} {'stretch':>7}  verdict"]
    for row in rows:
        spread = f"{row.spread['min']:.2f}-{row.spread['max']:.2f}" if row.spread else ""
        sign = "≥" if row.higher_is_better else "≤"
        lines.append(
            f"{row.key:<36} {fmt(row.value):>8} {spread:>13} {fmt(row.floor):>7} "
            f"{sign}{fmt(row.target):>6} {sign}{fmt(row.stretch):>6}  {row.verdict()}"
        )
    lines.extend(f"{key:<36} {reason}" for key, reason in sorted(skipped.items()))
    return "\n".join(lines)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _meminfo_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            kib = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
        return round(kib / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _redis_version(broker: str) -> str | None:
    if not broker.startswith("redis"):
        return None
    try:
        import redis

        return str(redis.Redis.from_url(broker, socket_timeout=2).info()["redis_version"])
    except Exception:
        return None


def environment(dsn: str, broker: str) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "mem_gib": _meminfo_gib(),
            "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "versions": {
            "python": platform.python_version(),
            "postgresql": row[0] if row else None,
            "libpq": psycopg.pq.version(),
            "redis": _redis_version(broker),
            **{
                p: _version(p)
                for p in ("django", "celery", "kombu", "psycopg", "psycopg-pool", "aws-durable-execution-sdk-python")
            },
        },
        "broker": broker.split("@")[-1],
        # SDK instrumentation plugins change the SDK's per-checkpoint work (it snapshots every op for them).
        "sdk_plugins": os.environ.get("DURABLE_EXECUTION_PLUGINS", ""),
    }
