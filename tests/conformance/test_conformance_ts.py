"""The conformance requirements of six suites with TypeScript handlers, through the same driver.

Each requirement's handler is an export of ``conformance/handlers_ts/<suite>.ts`` on AWS's
unchanged ``@aws/durable-execution-sdk-js``. The driver (``conformance.runner.Run``) registers it as
a ``nodejs22.x`` function with the ``.ts`` file zipped as its code, starts it, drives its callbacks
and checks the history and result exactly as for the Python handlers: the real worker runs each
invocation in a warm Node runtime process whose SDK checkpoints over HTTP to the real web server.
Nothing here knows the handlers are JavaScript beyond the CreateFunction fields.
"""

from __future__ import annotations

import importlib

import pytest

from conformance import handlers_ts
from conformance.requirements import RequirementFile, RequirementsUnavailable, requirement_files
from conformance.runner import Run, Spec
from tests.runtimes.conftest import runtime_stack
from tests.wire.conftest import wire_server

__all__ = ["runtime_stack", "wire_server"]  # the fixtures that start the web server the SDK reaches

try:
    REQUIREMENTS = [r for r in requirement_files() if r.suite in handlers_ts.SUITES]
    UNAVAILABLE = None
except RequirementsUnavailable as exc:
    REQUIREMENTS, UNAVAILABLE = [], str(exc)


def _spec(requirement: RequirementFile) -> Spec | None:
    return importlib.import_module(handlers_ts.spec_module(requirement.suite)).SPECS.get(requirement.id)


def _marks(requirement: RequirementFile) -> list:
    spec = _spec(requirement)
    if spec is not None and spec.engine_gap:
        return [pytest.mark.xfail(reason=spec.engine_gap, strict=True)]
    return []


def _params() -> list:
    if UNAVAILABLE:
        return [pytest.param(None, id="requirements-unavailable")]
    return [pytest.param(r, id=f"{r.suite}-{r.id}", marks=_marks(r)) for r in REQUIREMENTS]


@pytest.mark.parametrize("requirement", _params())
def test_requirement_in_typescript(requirement: RequirementFile | None, request: pytest.FixtureRequest) -> None:
    if UNAVAILABLE or requirement is None:
        pytest.fail(UNAVAILABLE or "no requirements", pytrace=False)
    spec = _spec(requirement)
    if spec is None:
        pytest.fail(f"no TypeScript handler for {requirement.suite} requirement {requirement.id}", pytrace=False)
    request.getfixturevalue("runtime_stack")  # the worker's runtime processes reach this web server
    lam = request.getfixturevalue("lam")
    fields = handlers_ts.function_fields(requirement.suite)
    run = Run(lam, requirement.load(), spec, requirement.suite, requirement.id, function_fields=fields)
    run.register()
    run.start()
    events = run.drive()
    run.check(events)
