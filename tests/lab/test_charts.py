"""The lab's figures, asserted on ``fig.to_dict()`` data (no rendering, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lab import charts, retry_plan, selectors
from lab.models import Variant

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def op(name: str, attempts: list[dict], *, body_runs: int = 1) -> dict:
    return {
        "op_id": name,
        "parent_id": None,
        "name": name,
        "type": "STEP",
        "sub_type": "Step",
        "status": "SUCCEEDED",
        "started_at": at(0.1),
        "ended_at": at(3),
        "depth": 0,
        "attempts": attempts,
        "replays": [],
        "body_runs": [
            {"invocation_seq": 1, "attempt": 1, "started_at": at(0.1), "ended_at": at(0.2), "outcome": "failed"}
        ]
        * body_runs,
    }


def attempt(number: int, start: float, end: float, outcome: str, delay: int | None = None) -> dict:
    return {
        "attempt": number,
        "invocation_seq": number,
        "started_at": at(start),
        "ended_at": at(end),
        "outcome": outcome,
        "error": None,
        "next_attempt_delay": delay,
        "retrying": delay is not None,
    }


def timeline(operations: list[dict], started: float = 0) -> dict:
    return {
        "execution": {
            "arn": "a",
            "name": "n",
            "status": "SUCCEEDED",
            "started_at": at(started),
            "ended_at": at(started + 3),
            "time_scale": 0.5,
            "error": None,
        },
        "invocations": [
            {
                "seq": 1,
                "reason": "start",
                "started_at": at(started),
                "ended_at": at(started + 1),
                "outcome": "suspended",
                "error": None,
            }
        ],
        "operations": operations,
        "effects": [],
        "faults": [],
        "counters": {},
    }


def test_small_multiples_share_one_row_order_and_align_each_run_at_zero():
    first = timeline([op("charge", [attempt(1, 0.1, 0.2, "succeeded")])], started=0)
    second = timeline([op("prepare", []), op("charge", [attempt(1, 10.1, 10.2, "succeeded")])], started=10)
    figure = charts.small_multiples([charts.Panel("A", first), charts.Panel("B", second)], now=at(20)).to_dict()
    layout = figure["layout"]
    assert layout["yaxis"]["categoryarray"] == layout["yaxis2"]["categoryarray"] == ["invocations", "charge", "prepare"]
    bars = [t for t in figure["data"] if t["name"] == "Attempt succeeded"]
    assert [round(t["base"][0], 3) for t in bars] == [0.1, 0.1], "both runs start at x = 0"


def test_planned_retry_windows_are_scaled_and_placed_after_each_failure():
    data = timeline([op("charge", [attempt(1, 0.1, 0.2, "failed", 2), attempt(2, 1.5, 1.6, "succeeded")])])
    spec = {
        "kind": "custom",
        "max_attempts": 3,
        "initial_delay": 2,
        "backoff_rate": 2,
        "max_delay": 10,
        "jitter": "HALF",
    }
    figure = charts.small_multiples([charts.Panel("A", data, spec, time_scale=0.5)], now=at(5)).to_dict()
    [window] = [t for t in figure["data"] if t["name"].startswith("Planned next attempt")]
    # HALF jitter after attempt 1 (base 2 s): 1 … 2 s, times 0.5, after the failure at 0.2 s.
    assert window["base"] == [0.2 + 0.5] and window["x"] == [0.5]


def test_retry_schedule_draws_plan_choice_and_measurement_in_real_seconds():
    spec = {
        "kind": "custom",
        "max_attempts": 3,
        "initial_delay": 2,
        "backoff_rate": 2,
        "max_delay": 10,
        "jitter": "NONE",
    }
    row = selectors.VariantRow(
        Variant(label="v", retry=spec),
        None,
        0.5,
        planned=retry_plan.planned_retries(spec),
        actual=[selectors.ActualRetry(1, "failed", 2, 1.3, 2.6, 1.0)],
    )
    figure = charts.retry_schedule([row]).to_dict()
    by_name = {t["name"]: t for t in figure["data"]}
    planned = by_name["Planned delay \N{MULTIPLICATION SIGN} time scale (range = jitter)"]
    # No jitter: one exact delay each, drawn as a thin band centred on 2 s and 4 s times 0.5.
    assert [b + y / 2 for b, y in zip(planned["base"], planned["y"], strict=True)] == pytest.approx([1.0, 2.0])
    assert list(by_name["Delay the strategy chose \N{MULTIPLICATION SIGN} time scale"]["y"]) == [1.0]
    assert list(by_name["Measured: failure \N{RIGHTWARDS ARROW} next attempt"]["y"]) == [1.3]


def test_a_single_variant_with_only_its_invocations_row_still_has_a_plot_area():
    # One panel, no operations drawn yet (a waiting variant): the margins once took the whole
    # height and Plotly threw "Something went wrong with axis scaling" in the browser.
    layout = charts.small_multiples([charts.Panel("waiting", None)], now=at(0)).to_dict()["layout"]
    margin, fit = layout["margin"], layout["meta"]["legend_fit"]
    assert layout["height"] - margin["t"] - margin["b"] > 0
    legend_px = 300  # lab.js: the legend's lines on a phone, added to the top margin and the height
    assert (fit["height"] + legend_px) - (fit["top"] + legend_px) - margin["b"] > 0
