"""One test per AWS conformance requirement, run end to end on the engine (real worker, real SDK)."""

from __future__ import annotations

import importlib

import pytest

from tests.conformance.runner import Run, load_requirement, requirement_paths

SUITES = {
    "step": "step",
    "wait": "wait",
    "child": "child",
    "parallel": "parallel",
    "callback": "callback",
    "wait_for_callback": "wait_for_callback",
}
PATHS = requirement_paths()


@pytest.mark.parametrize("path", PATHS, ids=[f"{p.parent.name}-{p.stem}" for p in PATHS])
def test_requirement(path, lam):
    module_name = f"tests.conformance.handlers.{SUITES[path.parent.name]}"
    specs = importlib.import_module(module_name).SPECS
    if path.stem not in specs:
        pytest.fail(f"no handler written yet for requirement {path.stem} in {module_name}")
    run = Run(lam, load_requirement(path), specs[path.stem], module_name, path.stem)
    run.register()
    run.start()
    events = run.drive()
    run.check(events)
