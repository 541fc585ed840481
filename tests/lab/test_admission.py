"""A comparison measures its variants, not how busy the workers are (issue #22, point 3).

The lab starts at most ``DURABLE_LAB_PARALLEL`` variants at once (one per worker process); the
others wait, unstarted, and the scheduler starts each as a running one ends. So a variant run
alone and the same variant run among 12 end the same way, with the same counts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from engine import timeline
from executions import charts
from lab import scenarios, services
from lab.models import Comparison
from tests.conftest import wait_until
from tests.lab.support import finished_rows, operator_client
from tests.truth import assert_truthful

LEAST, MOST = scenarios.SEMANTICS
DEFAULT, NONE = {"kind": "default"}, {"kind": "none"}
TIMEOUT, FAIL_TWICE = {"kind": "timeout"}, {"kind": "fail_n", "n": 2}
SCALE = 0.1  # the scale the issue saw all 8 variants time out at
COUNTS = ("invocations", "attempts", "failed_attempts", "body_runs", "replays", "effects", "duplicate_effects")


def _the_variant(order: str) -> scenarios.VariantSpec:
    """The variant the issue saw succeed alone and time out among 8."""
    return scenarios.lab_variants([MOST], [DEFAULT], [FAIL_TWICE], order=order)[0]


def _crowd() -> list[scenarios.VariantSpec]:
    """Eleven others that keep every worker busy (a timed-out body holds a worker for the whole
    2 s Timeout), then the variant itself, last: it can start only after others ended."""
    hogs = scenarios.lab_variants([LEAST, MOST], [DEFAULT, NONE], [TIMEOUT], order="crowd-hog")
    quick = scenarios.lab_variants([LEAST, MOST], [DEFAULT, NONE], [FAIL_TWICE, {"kind": "none"}], order="crowd-quick")
    return [*hogs, *quick[:7], _the_variant("crowd-it")]


def _counts(row: Any) -> dict[str, Any]:
    return {"status": row.status, **{key: row.counters[key] for key in COUNTS}}


@pytest.fixture(scope="module")
def alone(stack: Any) -> Any:
    comparison = services.comparison_start(
        user=None, scenario="lab", variants=[_the_variant("alone")], time_scale=SCALE
    )
    (row,) = finished_rows(comparison, timeout=60).values()
    return row


@pytest.fixture(scope="module")
def crowd(stack: Any, alone: Any) -> dict[str, Any]:
    variants = _crowd()
    assert len(variants) == scenarios.MAX_VARIANTS == 12
    comparison = services.comparison_start(user=None, scenario="lab", variants=variants, time_scale=SCALE)
    started = [v.position for v in comparison.variants.all() if v.execution_arn]
    page = operator_client(f"crowd{comparison.pk}").get(reverse("lab:comparison", args=[comparison.pk]))
    rows = finished_rows(comparison, timeout=240)
    return {"comparison": comparison, "started": started, "page": page.content.decode(), "rows": rows}


def test_the_issue_s_variant_succeeds_alone(alone: Any) -> None:
    assert alone.status == "SUCCEEDED", alone.error
    assert alone.counters["failed_attempts"] == 2  # charge failed twice, then succeeded


def test_among_twelve_it_ends_the_same_way_with_the_same_counts(alone: Any, crowd: dict[str, Any]) -> None:
    among = crowd["rows"][alone.variant.label]
    assert among.variant.position == 11
    assert _counts(among) == _counts(alone)


def test_only_as_many_variants_start_as_there_are_workers(crowd: dict[str, Any]) -> None:
    assert crowd["started"] == list(range(settings.DURABLE_LAB_PARALLEL))
    # The others were started later, by the scheduler, with no page open: every one ran.
    assert all(row.data is not None for row in crowd["rows"].values())


def test_the_page_says_which_variants_wait_for_a_worker(crowd: dict[str, Any]) -> None:
    page = crowd["page"]
    waiting = scenarios.MAX_VARIANTS - settings.DURABLE_LAB_PARALLEL
    assert f"{waiting} variants waiting for a worker" in page
    assert page.count(">waiting for a worker</span>") == waiting


def test_the_timed_out_hogs_end_the_same_as_alone(crowd: dict[str, Any]) -> None:
    hogs = [row for row in crowd["rows"].values() if row.variant.fault == TIMEOUT]
    assert {row.status for row in hogs if row.variant.retry == DEFAULT} == {"TIMED_OUT"}


def test_an_invocation_that_waited_for_a_worker_shows_its_queue_time(stack: Any, lam: Any, unique: str) -> None:
    """Outside the lab's admission nothing holds invocations back: five executions whose first
    invocation holds a worker for the whole 2 s Timeout, on four workers. One waits, and its wait
    is drawn and counted as queue time, neither billed nor suspended."""
    payload = json.dumps({"semantics": MOST, "retry": NONE, "fault": TIMEOUT, "order": unique})
    arns = [
        lam.invoke(
            FunctionName=scenarios.LAB_FUNCTION,
            InvocationType="Event",
            Payload=payload,
            DurableExecutionName=f"q-{unique}-{n}",
            TimeScale=0.05,
        )["DurableExecutionArn"]
        for n in range(settings.DURABLE_LAB_PARALLEL + 1)
    ]

    def all_done() -> list[dict[str, Any]] | None:
        data = [timeline.execution_timeline(arn) for arn in arns]
        ended = all(
            d["execution"]["status"] != "RUNNING" and all(i["ended_at"] for i in d["invocations"]) for d in data
        )
        return data if ended else None

    finished = wait_until(all_done, timeout=60, interval=0.5, message="the five executions to end")
    for data in finished:
        assert_truthful(data)
    queued = [d for d in finished if d["counters"]["queued_seconds"] > 1.0]
    assert queued, [d["counters"]["queued_seconds"] for d in finished]
    waited = [i for d in queued for i in d["invocations"] if i["queued_at"] is not None]
    assert waited and all(i["started_at"] - i["queued_at"] > timeline.QUEUED_AFTER for i in waited)
    figure = charts.timeline_figure(queued[0], now=timezone.now())
    assert any(trace.get("name") == charts.QUEUED_NAME for trace in figure["data"])
    counters = queued[0]["counters"]
    assert counters["suspended_seconds"] < counters["wall_seconds"] - counters["queued_seconds"] + 0.01


def test_a_comparison_is_saved_before_any_variant_starts(crowd: dict[str, Any]) -> None:
    assert Comparison.objects.filter(pk=crowd["comparison"].pk).exists()
