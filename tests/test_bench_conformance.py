"""B8c's choice of conformance requirements (bench/conformance.py): pure, no worker, no peer."""

from __future__ import annotations

from bench import conformance
from bench.conformance import handler_specs, select, skip_reason
from conformance.requirements import RequirementFile, requirement_files
from conformance.runner import Spec


def requirement(suite: str, id: str) -> RequirementFile:
    return RequirementFile(suite, id, "{}", f"{suite}/{id}.yaml")


def test_skip_reasons() -> None:
    assert skip_reason("1-1", Spec("step_basic")) is None
    assert skip_reason("1-1", None) == "no handler in conformance/handlers"
    assert "kills its own process" in str(skip_reason("1-17", Spec("at_most_once_no_retry")))
    assert "TimeScale" in str(skip_reason("1-13", Spec("default_retry", time_scale=0.1)))
    chained = Spec("caller", extra_functions={"callee": {"Handler": "m.callee"}})
    assert skip_reason("9-1", chained) == "chained invoke of another function"
    assert str(skip_reason("4-11", Spec("callback_wait_timeout"))).startswith("budget: sleeps about 9 s")
    assert "like 4-1" in str(skip_reason("4-2", Spec("named")))
    assert "engine gap" in str(skip_reason("9-1", Spec("m", engine_gap="no such feature")))


def test_select_keeps_order_and_reports_every_left_out_requirement() -> None:
    requirements = [requirement("step", "1-1"), requirement("step", "1-17"), requirement("nosuch", "99-1")]
    requirements.append(requirement("step", "1-2"))
    specs = {"conformance.handlers.step": {"1-1": Spec("a"), "1-17": Spec("b"), "1-2": Spec("c")}}
    selected, skipped = select(requirements, lambda module: specs.get(module, {}))
    assert [(r.id, module, spec.handler) for r, module, spec in selected] == [
        ("1-1", "conformance.handlers.step", "a"),
        ("1-2", "conformance.handlers.step", "c"),
    ]
    assert set(skipped) == {"1-17", "99-1"}
    assert skipped["99-1"] == "suite nosuch is outside B8c's six suites"


def test_the_real_selection_covers_every_suite_on_a_budget() -> None:
    requirements = requirement_files()
    selected, skipped = select(requirements, handler_specs)
    assert len(selected) + len(skipped) == len(requirements)
    # Every suite in B8c's scope has at least one requirement both sides run unchanged.
    assert {r.suite for r, _, _ in selected} == set(conformance.SUITES)
    assert len([r for r in requirements if r.suite in conformance.SUITES]) == 99
    kept = {r.id for r, _, _ in selected}
    assert not kept & conformance.CRASHES
    assert not kept & set(conformance.LONG_SLEEPS)
    # Every variant left out names a sibling that does run.
    assert set(conformance.VARIANTS.values()) <= kept
