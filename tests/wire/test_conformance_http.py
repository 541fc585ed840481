"""AWS's conformance requirements a second time: every AWS call through boto3 over HTTP.

The same requirements, handlers (still run by the session's worker) and driver as
tests/conformance/test_conformance.py (``conformance.runner.Run``: register, start, drive the
callbacks, check), with the same checks. Only the Lambda client differs: an unchanged
``boto3.client("lambda")`` pointed at the wire server and signing with a real access key, so
CreateFunction, Invoke, ListDurableExecutionsByFunction, GetDurableExecution(History),
SendDurableExecutionCallback* and StopDurableExecution all cross the socket. What reads the
engine's internals stays in-process: the ExpectedLogs check reads the captured logs, which the
wire API does not serve (AWS keeps them in CloudWatch).

Time: one test per suite runs its requirements ``PARALLEL`` at a time (but see ``SEQUENTIAL``),
so the second pass overlaps the real sleeping (waits, retry delays, delayed callback answers) that
makes up most of the in-process run's time: about 1.5 min where the in-process run takes 4.
"""

from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conformance import SUITES, handler_module
from conformance.requirements import RequirementFile
from conformance.runner import Run
from tests.conformance.test_conformance import REQUIREMENTS, UNAVAILABLE, _spec
from tests.wire.conftest import ROLE

# Requirements of one suite run at a time: the test worker's pool size (tests/conftest.py), so
# none waits for a free worker process while its clock runs.
PARALLEL = 4
# Run one requirement at a time, as in-process: in these, a target function races its caller. If
# the target ends before the caller's first invocation has (a busy worker makes that invocation
# slow), ChainedInvokeSucceeded lands before the caller's InvocationCompleted, and a history check
# such as 5-4's (InvocationCompleted as event 3) fails, over HTTP or not.
SEQUENTIAL = {"invoke"}


class WireLambda:
    """``Run``'s Lambda client, as boto3: the driver's calls pass through unchanged except for
    what only the in-process client accepts.

    - CreateFunction: AWS requires ``Role`` and ``Code`` (and the engine ignores both), the driver
      omits them because ``engine.client()`` does not require them.
    - Invoke: a ``None`` payload is left out (boto3 refuses ``None`` for a blob), and ``TimeScale``
      (Durable Lab's demo speed-up, not in botocore's model) cannot be sent, so the one requirement
      that uses it (step 1-13, default retry delays) runs in real time: up to 15 s of waiting, well
      inside the driver's 30 s idle limit, and the same checks.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_function(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("Runtime", "python3.13")
        return self._client.create_function(Role=ROLE, Code={}, **fields)

    def invoke(self, *, Payload: str | None = None, TimeScale: float | None = None, **kwargs: Any) -> dict[str, Any]:
        if Payload is not None:
            kwargs["Payload"] = Payload
        return self._client.invoke(**kwargs)


def _by_suite() -> dict[str, list[RequirementFile]]:
    suites: dict[str, list[RequirementFile]] = {suite: [] for suite in SUITES}
    for requirement in REQUIREMENTS:
        suites.setdefault(requirement.suite, []).append(requirement)
    return suites


def _outcome(lam: WireLambda, requirement: RequirementFile) -> str | None:
    """None when the requirement behaves as it does in-process (passes, or fails where the
    in-process test is a strict xfail); else what went wrong."""
    spec = _spec(requirement)
    if spec is None:
        return "no handler written yet"
    try:
        run = Run(lam, requirement.load(), spec, handler_module(requirement.suite), requirement.id)
        run.register()
        run.start()
        run.check(run.drive())
    except Exception:
        if spec.engine_gap:
            return None
        return traceback.format_exc(limit=3)
    if spec.engine_gap:
        return f"passed over HTTP, but in-process it is a strict xfail ({spec.engine_gap})"
    return None


@pytest.mark.timeout(600)
@pytest.mark.parametrize("suite", list(_by_suite()) if not UNAVAILABLE else ["requirements-unavailable"])
def test_suite_over_http(suite: str, lambda_client: Any, stack: Any) -> None:
    if UNAVAILABLE:
        pytest.fail(UNAVAILABLE, pytrace=False)
    requirements = _by_suite()[suite]
    assert requirements, f"no requirements for suite {suite}"
    lam = WireLambda(lambda_client)
    at_once = 1 if suite in SEQUENTIAL else PARALLEL
    with ThreadPoolExecutor(at_once, thread_name_prefix=f"conf-{suite}") as pool:
        outcomes = dict(
            zip([r.id for r in requirements], pool.map(lambda r: _outcome(lam, r), requirements), strict=True)
        )
    failed = {rid: problem for rid, problem in outcomes.items() if problem}
    report = "\n\n".join(f"--- {suite} {rid}:\n{problem}" for rid, problem in failed.items())
    assert not failed, f"{len(failed)} of {len(requirements)} {suite} requirements differ over HTTP:\n{report}"
    print(f"{suite}: {len(requirements)} requirements, same results over HTTP")
