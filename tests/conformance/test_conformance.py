"""One test per AWS conformance requirement, run end to end on the engine (real worker, real SDK)."""

from __future__ import annotations

import importlib

import pytest

from conformance import SUITES, handler_module
from conformance.requirements import RequirementFile, RequirementsUnavailable, requirement_files
from conformance.runner import Run

try:
    REQUIREMENTS: list[RequirementFile] = requirement_files()
    UNAVAILABLE = None
except RequirementsUnavailable as exc:
    # One failing test that names the command to run, instead of a collection traceback.
    REQUIREMENTS, UNAVAILABLE = [], str(exc)


def _params() -> list:
    if UNAVAILABLE:
        return [pytest.param(None, id="requirements-unavailable")]
    return [
        pytest.param(requirement, id=f"{requirement.suite}-{requirement.id}", marks=_marks(requirement))
        for requirement in REQUIREMENTS
    ]


def _spec(requirement: RequirementFile):
    if requirement.suite not in SUITES:
        return None
    return importlib.import_module(handler_module(requirement.suite)).SPECS.get(requirement.id)


def _marks(requirement: RequirementFile) -> list:
    spec = _spec(requirement)
    if spec is not None and spec.engine_gap:
        return [pytest.mark.xfail(reason=spec.engine_gap, strict=True)]
    return []


@pytest.mark.parametrize("requirement", _params())
def test_requirement(requirement, request):
    if UNAVAILABLE:
        pytest.fail(UNAVAILABLE, pytrace=False)
    spec = _spec(requirement)
    if spec is None:
        pytest.fail(f"no handler written yet for {requirement.suite} requirement {requirement.id}", pytrace=False)
    lam = request.getfixturevalue("lam")
    run = Run(lam, requirement.load(), spec, handler_module(requirement.suite), requirement.id)
    run.register()
    run.start()
    events = run.drive()
    run.check(events)
