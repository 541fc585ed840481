"""B8c's choice of conformance requirements (bench/conformance.py): pure, no worker, no peer."""

from __future__ import annotations

from pathlib import Path

from bench import conformance
from bench.conformance import handler_specs, select, skip_reason
from tests.conformance.runner import Spec, requirement_paths


def test_skip_reasons() -> None:
    assert skip_reason("1-1", Spec("step_basic")) is None
    assert skip_reason("1-1", None) == "no handler in tests/conformance"
    assert "kills its own process" in str(skip_reason("1-17", Spec("at_most_once_no_retry")))
    assert "TimeScale" in str(skip_reason("1-13", Spec("default_retry", time_scale=0.1)))
    chained = Spec("caller", extra_functions={"callee": {"Handler": "m.callee"}})
    assert skip_reason("9-1", chained) == "chained invoke of another function"
    assert str(skip_reason("4-11", Spec("callback_wait_timeout"))).startswith("budget: sleeps about 9 s")
    assert "like 4-1" in str(skip_reason("4-2", Spec("named")))


def test_select_keeps_order_and_reports_every_left_out_requirement() -> None:
    paths = [Path("step/1-1.yaml"), Path("step/1-17.yaml"), Path("map/9-1.yaml"), Path("step/1-2.yaml")]
    specs = {"tests.conformance.handlers.step": {"1-1": Spec("a"), "1-17": Spec("b"), "1-2": Spec("c")}}
    selected, skipped = select(paths, lambda module: specs.get(module, {}))
    assert [(p.stem, module, spec.handler) for p, module, spec in selected] == [
        ("1-1", "tests.conformance.handlers.step", "a"),
        ("1-2", "tests.conformance.handlers.step", "c"),
    ]
    assert set(skipped) == {"1-17", "9-1"}


def test_the_real_selection_covers_every_suite_on_a_budget() -> None:
    paths = requirement_paths()
    selected, skipped = select(paths, handler_specs)
    assert len(selected) + len(skipped) == len(paths)
    assert {path.parent.name for path, _, _ in selected} == set(conformance.SUITES)
    kept = {path.stem for path, _, _ in selected}
    assert not kept & conformance.CRASHES
    assert not kept & set(conformance.LONG_SLEEPS)
    # Every variant left out names a sibling that does run.
    assert set(conformance.VARIANTS.values()) <= kept
