"""benchmarks.md B5's floor, checked in CI: the timeline's data endpoint against SELECT + dumps.

The bench's row is the 10k-operation execution (``make bench`` also reports 1k); so is this
check, so that a change that makes the endpoint slow (per-row templating, a query per
operation) fails CI and not only the next bench run. The first response is capped, as the
bench measures it; the baseline reads every operation.
"""

from __future__ import annotations

import statistics
import time

import psycopg
from django.test import Client
from django.urls import reverse

from bench import baselines, report
from engine import db
from tests.dashboard.seed import seed_execution

OPERATIONS = 10_000
ROUNDS = 5


def test_timeline_data_server_time_is_within_the_b5_floor(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"b5-{unique}", operations=OPERATIONS, invocations=20)
    url = reverse("executions:timeline_data", args=[execution.pk])
    assert op_client.get(url).status_code == 200  # warm the session and caches, as a returning user
    ratios = []
    with psycopg.connect(db.dsn(), autocommit=True) as conn:
        for _ in range(ROUNDS):  # interleaved, as the bench does
            baseline_s, baseline_bytes = baselines.select_summary_and_dump(conn, execution.pk)
            start = time.perf_counter()
            response = op_client.get(url)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200 and baseline_bytes > OPERATIONS * 50
            ratios.append(elapsed / baseline_s)
    floor = report.B5_TIME_LEVELS[0]
    assert statistics.median(ratios) <= floor, (
        f"B5 floor: the timeline data of {OPERATIONS} operations took {statistics.median(ratios):.1f}x "
        f"a SELECT of their summary columns + json.dumps (floor {floor}x); rounds {[round(r, 2) for r in ratios]}"
    )
