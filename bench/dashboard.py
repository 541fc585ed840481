"""B5: the dashboard's timeline for 1k and 10k operations, through Django's test Client."""

from __future__ import annotations

import gzip
import json
import statistics
import time
from typing import Any

import psycopg
from django.core.management import call_command

from bench import baselines
from bench.context import BenchContext
from bench.harness import Ratio

DATA_URL = "executions:timeline_data"
# The page's URL name is not fixed by the brief; the first that resolves is measured too.
PAGE_URLS = ("executions:timeline", "executions:execution_detail", "executions:detail", "executions:execution")
SKIP_REASON = "skipped: dashboard timeline endpoint not present"


def _param_value(param: str, execution: dict[str, Any]) -> Any:
    lowered = param.lower()
    if "arn" in lowered:
        return execution["arn"]
    if "name" in lowered:
        return execution["name"]
    return execution["id"]


def url_for(name: str, execution: dict[str, Any]) -> str | None:
    """Reverse ``name`` for an execution, whichever identifier its pattern takes; None if absent."""
    from django.urls import NoReverseMatch, get_resolver, reverse

    namespace, _, short = name.partition(":")
    entry = get_resolver().namespace_dict.get(namespace)
    if entry is None:
        return None
    for possibilities, *_ in entry[1].reverse_dict.getlist(short):
        for _template, params in possibilities:
            try:
                return reverse(name, kwargs={p: _param_value(p, execution) for p in params})
            except NoReverseMatch:
                continue
    return None


def _client() -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client()
    client.force_login(user)
    return client


def _content(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def measure_get(ctx: BenchContext, client: Any, url: str) -> dict[str, Any]:
    with ctx.counter:
        before, start = ctx.counter.snapshot(), time.perf_counter()
        response = client.get(url)
        body = _content(response)
        elapsed, sql = time.perf_counter() - start, ctx.counter.snapshot() - before
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return {
        "server_s": elapsed,
        "bytes": len(body),
        "gzip_bytes": len(gzip.compress(body)),
        "sql": sql.statements,
        "hidden_rows": _hidden_rows(response, body),
    }


def _hidden_rows(response: Any, body: bytes) -> int:
    """Rows the endpoint left out of its first response (it pages or caps long executions)."""
    if "json" not in response.get("Content-Type", ""):
        return 0
    try:
        hidden = json.loads(body).get("hidden_rows", 0)
    except (ValueError, AttributeError):
        return 0
    return int(hidden) if isinstance(hidden, int) else 0


def _execution_row(ctx: BenchContext, execution_id: int) -> dict[str, Any]:
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT id, arn, name FROM durable_execution WHERE id = %s", (execution_id,)).fetchone()
    assert row is not None
    return {"id": row[0], "arn": row[1], "name": row[2]}


def b5(ctx: BenchContext) -> None:
    seeded = (ctx.results.get("B4") or {}).get("executions")
    if not seeded:
        ctx.skipped["B5"] = "skipped: needs the B4 seed"
        return
    executions = {n: _execution_row(ctx, ids[0]) for n, ids in seeded.items()}
    data_urls = {n: url_for(DATA_URL, e) for n, e in executions.items()}
    if not all(data_urls.values()):
        ctx.skipped["B5"] = SKIP_REASON
        ctx.log(f"B5 {SKIP_REASON}")
        return
    # The pages name their static files through the manifest, as `make run` serves them; a fresh
    # clone has none until collectstatic has run (into .data/staticfiles).
    call_command("collectstatic", interactive=False, verbosity=0)
    client, repeats = _client(), 3 if ctx.quick else 5
    result: dict[str, Any] = {"urls": data_urls}
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        for n, execution in executions.items():
            result[n] = _measure_one(ctx, client, conn, data_urls[n], execution, repeats)
    ctx.results["B5"] = result


def _measure_one(
    ctx: BenchContext, client: Any, conn: psycopg.Connection, url: str, execution: dict[str, Any], repeats: int
) -> dict[str, Any]:
    runs, base, ratio = [], [], Ratio()
    client.get(url)  # warm caches and the session, as a returning user would
    for _ in range(repeats):
        base.append(baselines.select_summary_and_dump(conn, execution["id"])[0])
        runs.append(measure_get(ctx, client, url))
        ratio.per_round.append(runs[-1]["server_s"] / base[-1])
    ops = conn.execute("SELECT count(*) FROM durable_operation WHERE execution_id = %s", (execution["id"],)).fetchone()
    op_count = int(ops[0]) if ops else 1
    page_url = next((u for u in (url_for(p, execution) for p in PAGE_URLS) if u), None)
    page = measure_get(ctx, client, page_url) if page_url else None
    # A capped first response is judged per op it carries, and by its size (benchmarks.md: ≤ 250 KiB).
    shown = max(1, op_count - runs[-1]["hidden_rows"])
    summary = {
        "ops": op_count,
        "ops_in_first_response": shown,
        "runs": runs,
        "baseline_s": base,
        "ratio": ratio.as_dict(),
        "bytes_per_op": runs[-1]["bytes"] / shown,
        "gzip_bytes_per_op": runs[-1]["gzip_bytes"] / shown,
        "first_response_kib": runs[-1]["bytes"] / 1024,
        "sql_queries": runs[-1]["sql"],
        "page_url": page_url,
        "page": page,
    }
    ctx.log(
        f"B5 ops={op_count}: data {statistics.median(r['server_s'] for r in runs) * 1e3:.1f} ms, "
        f"{runs[-1]['bytes']} B ({runs[-1]['gzip_bytes']} B gzip), {runs[-1]['sql']} SQL, ratio {ratio.median:.2f}"
    )
    return summary
