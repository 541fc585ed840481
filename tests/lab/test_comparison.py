"""A lab comparison: one scenario under several semantics x retry x fault variants, started at once."""

from __future__ import annotations

import pytest

from lab import scenarios, services
from tests.lab.support import finished_rows, step

QUICK = {
    "kind": "custom",
    "max_attempts": 3,
    "initial_delay": 1,
    "backoff_rate": 2.0,
    "max_delay": 10,
    "jitter": "NONE",
}
LEAST, MOST = scenarios.SEMANTICS


@pytest.fixture(scope="module")
def rows(stack):
    variants = [
        *scenarios.lab_variants([LEAST], [{"kind": "default"}], [{"kind": "kill_after_body"}], order="cmp-a"),
        *scenarios.lab_variants([MOST], [{"kind": "none"}], [{"kind": "kill_after_body"}], order="cmp-b"),
        *scenarios.lab_variants([LEAST], [QUICK], [{"kind": "fail_n", "n": 2}], order="cmp-c"),
        *scenarios.lab_variants([MOST], [{"kind": "default"}], [{"kind": "kill_body_start"}], order="cmp-d"),
    ]
    comparison = services.comparison_start(user=None, scenario="lab", variants=variants, time_scale=0.5)
    return list(finished_rows(comparison, timeout=150).values())


def test_kill_after_body_at_least_once_runs_the_body_twice_and_duplicates_the_charge(rows):
    row = rows[0]
    assert row.status == "SUCCEEDED", row.error
    assert row.counters["invocations"] == 2
    assert len(step(row, "charge")["body_runs"]) == 2
    assert row.counters["duplicate_effects"] == 1


def test_kill_after_body_at_most_once_without_retry_fails_with_one_charge(rows):
    row = rows[1]
    assert row.status == "FAILED"
    assert "interrupted" in row.error.lower()
    assert len(step(row, "charge")["body_runs"]) == 1
    assert row.counters["effects"] == 1 and row.counters["duplicate_effects"] == 0


def test_fail_n_retries_on_the_planned_schedule(rows):
    row = rows[2]
    assert row.status == "SUCCEEDED", row.error
    attempts = step(row, "charge")["attempts"]
    assert [a["outcome"] for a in attempts] == ["failed", "failed", "succeeded"]
    assert [(p.low, p.high) for p in row.planned] == [(1, 1), (2, 2)]
    assert [a.chosen_delay for a in row.actual] == [1, 2]
    # Scaled by 0.5: the measured gaps are about half the planned seconds (plus dispatch latency).
    assert all(a.gap_seconds is not None and a.gap_seconds >= 0.5 * a.chosen_delay - 0.05 for a in row.actual)
    assert row.counters["duplicate_effects"] == 0


def test_kill_at_body_start_at_most_once_retries_in_a_new_attempt(rows):
    row = rows[3]
    assert row.status == "SUCCEEDED", row.error
    charge = step(row, "charge")
    assert [a["outcome"] for a in charge["attempts"]] == ["interrupted", "succeeded"]
    assert row.counters["effects"] == 1
    assert [f["phase"] for f in row.data["faults"]] == ["body_start"]
