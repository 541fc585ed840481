"""The idempotency-key and express-vs-checkpoints demos, and seed 000's four scenarios as one comparison."""

from __future__ import annotations

import pytest

from lab import scenarios, services
from tests.lab.support import finished_rows, step


@pytest.fixture(scope="module")
def idempotency(stack):
    order = services.demo_order_id()
    comparison = services.comparison_start(
        user=None, scenario="idempotency", variants=scenarios.idempotency_variants(order), time_scale=0.1
    )
    return finished_rows(comparison, timeout=90)


@pytest.fixture(scope="module")
def express(stack):
    order = services.demo_order_id()
    comparison = services.comparison_start(
        user=None, scenario="express", variants=scenarios.express_variants(order), time_scale=0.25
    )
    return finished_rows(comparison, timeout=90)


def charges(row):
    return [e for e in row.data["effects"] if e["kind"] == "charge"]


def test_without_an_idempotency_key_the_rerun_body_charges_twice(idempotency):
    row = idempotency["without idempotency key"]
    assert row.status == "SUCCEEDED", row.error
    assert len(step(row, "charge-payment")["body_runs"]) == 2
    assert [(e["performed"], e["duplicate"]) for e in charges(row)] == [(True, False), (True, True)]
    assert row.counters["duplicate_effects"] == 1


def test_with_an_idempotency_key_the_rerun_body_charges_once(idempotency):
    row = idempotency["with idempotency key"]
    assert row.status == "SUCCEEDED", row.error
    assert len(step(row, "charge-payment")["body_runs"]) == 2
    assert [(e["performed"], e["duplicate"]) for e in charges(row)] == [(True, False), (False, False)]
    assert row.counters["duplicate_effects"] == 0


def test_both_idempotency_variants_were_killed_once_after_the_body(idempotency):
    for row in idempotency.values():
        assert row.data["invocations"][0]["outcome"] == "killed"
        assert [(f["step_name"], f["phase"]) for f in row.data["faults"]] == [("charge-payment", "after_body")]


def test_one_big_step_repeats_every_side_effect_on_retry(express):
    row = express["one big step (re-runs everything, like Express)"]
    assert row.status == "SUCCEEDED", row.error
    assert len(step(row, "process-order")["body_runs"]) == 2
    kinds = sorted(e["kind"] for e in row.data["effects"] if e["duplicate"])
    assert kinds == ["charge", "inventory"]


def test_a_checkpoint_per_step_retries_only_the_failed_step(express):
    row = express["a checkpoint per step"]
    assert row.status == "SUCCEEDED", row.error
    assert len(step(row, "reserve-inventory")["body_runs"]) == 1
    assert len(step(row, "charge-card")["body_runs"]) == 1
    assert len(step(row, "ship-order")["body_runs"]) == 2
    assert row.counters["duplicate_effects"] == 0
    assert step(row, "charge-card")["replays"], "the retry's invocation replays completed steps from checkpoints"
