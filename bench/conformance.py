"""B8c: wall time of the project's conformance run, on the engine and on AWS's local runner.

Both sides run the same requirements (AWS's pinned wheel, ``conformance.requirements``) with the
same handlers (``conformance.handlers``), inputs and callback actions, one after the other,
through the conformance suite's own driver (``conformance.runner.Run``: register, start,
drive callbacks, check; polling every 10 ms here). Only the Lambda client differs: the engine's
``engine.client()`` with the bench's worker and scheduler behind it, or ``PeerLambda``, a
boto3-shaped adapter over the peer's in-process ``DurableFunctionTestRunner``. Both sides use
the real clock (the peer with ``skip_time=False``, the engine without a TimeScale).
"""

from __future__ import annotations

import importlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from conformance import handler_module
from conformance.requirements import RequirementFile, requirement_files
from conformance.runner import Run, Spec

PEER_LOGGER = "aws_durable_execution_sdk_python_testing"

# B8c keeps the six suites it was first measured on (99 requirements), so its figures stay
# comparable across runs; the four suites AWS's 1.0.0 wheel added (invoke, map,
# wait_for_condition, plugin) run in the test suite only.
SUITES = ("step", "wait", "child", "parallel", "callback", "wait_for_callback")

# The handler ends its own process (``os._exit``) to show crash recovery; in-process, the peer
# would take the bench down with it.
CRASHES = {"1-17", "1-18", "3-12"}
# The real waiting of the whole suite is about 2 minutes per side, too long for the bench, so
# these requirements, which sleep (waits, retry delays, callback timeouts, callback action
# delays) 2 s or more each, are left out of the timed run on both sides. What stays covers
# every suite, including callbacks answered after a 1 s delay.
LONG_SLEEPS = {
    "1-8": 2,
    "1-12": 3,
    "1-14": 8,
    "2-1": 2,
    "2-2": 2,
    "2-3": 4,
    "3-18": 2,
    "4-3": 5,
    "4-4": 5,
    "4-8": 5,
    "4-9": 6,
    "4-10": 6,
    "4-11": 9,
    "4-12": 3,
    "4-13": 3,
    "4-14": 5,
    "4-17": 2,
    "4-18": 7,
    "4-19": 5,
    "7-5": 3,
    "7-9": 2,
    "7-10": 2,
    "7-12": 5,
    "7-14": 3,
    "8-14": 2,
}

# Callback requirements each answered after a 1 s delay, too, that differ from one kept in the
# run only by the callback's name or the payload's shape; left out for the budget as well.
VARIANTS = {
    "4-2": "4-1",
    "4-16": "4-15",
    "7-2": "7-1",
    "7-6": "7-4",
    "7-11": "7-1",
    "7-15": "7-1",
}


def skip_reason(requirement: str, spec: Spec | None) -> str | None:
    """Why ``requirement`` is left out of B8c on both sides, or None if it runs on both."""
    if spec is None:
        return "no handler in conformance/handlers"
    if spec.engine_gap:
        return f"a known engine gap (a strict xfail in the tests): {spec.engine_gap}"
    if requirement in CRASHES:
        return "the handler kills its own process (crash recovery); the peer runs in the bench's process"
    if spec.extra_functions:
        return "chained invoke of another function"
    if spec.time_scale:
        return f"the engine runs it with TimeScale {spec.time_scale}; the peer has no equivalent scale"
    if requirement in LONG_SLEEPS:
        return f"budget: sleeps about {LONG_SLEEPS[requirement]} s of real time"
    if requirement in VARIANTS:
        return f"budget: a 1 s-delayed callback like {VARIANTS[requirement]}, only the name or payload shape differs"
    return None


Selected = list[tuple[RequirementFile, str, Spec]]


def select(
    requirements: Iterable[RequirementFile], specs: Callable[[str], dict[str, Spec]]
) -> tuple[Selected, dict[str, str]]:
    """Split the requirements into (requirement, handler module, spec) to run, and skipped id → reason."""
    selected: Selected = []
    skipped: dict[str, str] = {}
    for requirement in requirements:
        if requirement.suite not in SUITES:
            skipped[requirement.id] = f"suite {requirement.suite} is outside B8c's six suites"
            continue
        module = handler_module(requirement.suite)
        spec = specs(module).get(requirement.id)
        reason = skip_reason(requirement.id, spec)
        if reason:
            skipped[requirement.id] = reason
        else:
            assert spec is not None
            selected.append((requirement, module, spec))
    return selected, skipped


def handler_specs(module: str) -> dict[str, Spec]:
    return dict(importlib.import_module(module).SPECS)


def run_all(lam: Any, selected: Selected, make_run: Callable[..., Run]) -> dict[str, Any]:
    """Run every selected requirement in order; return the total and per-requirement wall times."""
    per_requirement: dict[str, float] = {}
    failures: dict[str, str] = {}  # requirement → first line of the failed check
    start = time.perf_counter()
    for requirement, module, spec in selected:
        name = requirement.id
        began = time.perf_counter()
        try:
            run = make_run(lam, requirement.load(), spec, module, name)
            run.register()
            run.start()
            run.check(run.drive())
        except Exception as exc:  # a requirement that does not conform is reported, not fatal
            failures[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        per_requirement[name] = round(time.perf_counter() - began, 4)
    return {
        "total_s": time.perf_counter() - start,
        "requirements_run": len(selected),
        "checks_passed": len(selected) - len(failures),
        # Run.check compares status and result first: a later failure (logs, history) still
        # means the execution ended as the requirement expects.
        "outcomes_matched": len(selected) - sum(1 for f in failures.values() if not _outcome_ok(f)),
        "check_failures": failures,
        "per_requirement_s": per_requirement,
    }


# Failures of the checks Run.check makes after the status and result matched.
_AFTER_OUTCOME = (
    "log records matching",
    "after anchor",
    "before anchor",
    "event ",
    "no event ",
    "EventIds are not contiguous",
)


def _outcome_ok(failure: str) -> bool:
    return failure == "AssertionError: " or failure.startswith(tuple(f"AssertionError: {p}" for p in _AFTER_OUTCOME))


def plan() -> tuple[Selected, dict[str, Any]]:
    requirements = requirement_files()
    selected, skipped = select(requirements, handler_specs)
    method = {
        "requirements_total": len(requirements),
        "requirements_run": len(selected),
        "skipped": skipped,
        "clock": "real on both sides: peer skip_time=False, engine without TimeScale",
        "driver": f"conformance.runner.Run (register, start, drive with {BenchRun.poll * 1000:.0f} ms polls, check), sequential",
        "subset": (
            "every requirement that runs unchanged on both sides, minus (budget) those sleeping >= 2 s "
            "and 6 callback variants of kept ones"
        ),
        "checks": (
            "engine: status, result, history and ExpectedLogs; peer: status, result and history (it captures "
            "no logs). A failed check is recorded, the run goes on: the peer's histories leave out "
            "InvocationCompletedDetails and CallbackStartedDetails.HeartbeatTimeout, so most of its checks fail "
            "after the execution has ended"
        ),
    }
    return selected, method


# --- peer side ---------------------------------------------------------------------------------


class BenchRun(Run):
    """The conformance driver, looking every 10 ms instead of every 250 ms: with the test suite's
    poll, a run that ends a few ms after a look pays a quarter second, whichever side it is on."""

    poll = 0.01


class PeerRun(BenchRun):
    """The conformance driver against the peer: the peer has no captured-log API to check."""

    def _check_logs(self) -> None:
        return None


class _Exceptions:
    class ResourceConflictException(Exception):
        pass


class PeerLambda:
    """The few boto3 Lambda calls ``Run`` makes, answered by one peer runner per function."""

    exceptions = _Exceptions

    def __init__(self) -> None:
        self.runners: dict[str, Any] = {}
        self.functions: dict[str, dict[str, Any]] = {}
        self.by_arn: dict[str, Any] = {}
        self.arns: dict[str, list[str]] = {}

    def create_function(self, *, FunctionName: str, Handler: str, **config: Any) -> dict[str, Any]:
        from aws_durable_execution_sdk_python_testing import DurableFunctionTestRunner

        module, _, attribute = Handler.rpartition(".")
        handler = getattr(importlib.import_module(module), attribute)
        execution_timeout = int(config.get("DurableConfig", {}).get("ExecutionTimeout", 300))
        self.runners[FunctionName] = DurableFunctionTestRunner(
            handler,
            skip_time=False,
            execution_timeout=execution_timeout,
            invocation_timeout=int(config.get("Timeout", 900)),
        )
        self.functions[FunctionName] = {"execution_timeout": execution_timeout}
        return {"FunctionName": FunctionName}

    def invoke(
        self,
        *,
        FunctionName: str,
        InvocationType: str = "RequestResponse",
        Payload: str | None = None,
    ) -> dict[str, Any]:
        runner = self.runners[FunctionName]
        timeout = self.functions[FunctionName]["execution_timeout"]
        arn = runner.run_async(
            input=Payload, execution_timeout=timeout, function_name=FunctionName, execution_name=uuid.uuid4().hex
        )
        self.by_arn[arn] = runner
        self.arns.setdefault(FunctionName, []).append(arn)
        if InvocationType == "RequestResponse":
            runner.wait_for_result(arn, timeout=timeout)
        return {"StatusCode": 200, "DurableExecutionArn": arn}

    def list_durable_executions_by_function(self, *, FunctionName: str) -> dict[str, Any]:
        return {"DurableExecutions": [{"DurableExecutionArn": arn} for arn in self.arns.get(FunctionName, [])]}

    def get_durable_execution_history(
        self,
        *,
        DurableExecutionArn: str,
        IncludeExecutionData: bool = False,
        Marker: str | None = None,
    ) -> dict[str, Any]:
        executor = self.by_arn[DurableExecutionArn]._executor
        page = executor.get_execution_history(
            DurableExecutionArn, include_execution_data=IncludeExecutionData, marker=Marker
        )
        return dict(page.to_dict())

    def get_durable_execution(self, *, DurableExecutionArn: str) -> dict[str, Any]:
        executor = self.by_arn[DurableExecutionArn]._executor
        return dict(executor.get_execution_details(DurableExecutionArn).to_dict())

    def stop_durable_execution(self, *, DurableExecutionArn: str) -> dict[str, Any]:
        self.by_arn[DurableExecutionArn]._executor.stop_execution(DurableExecutionArn)
        return {}

    def _runner_for(self, callback_id: str) -> Any:
        from aws_durable_execution_sdk_python_testing.token import CallbackToken

        return self.by_arn[CallbackToken.from_str(callback_id).execution_arn]

    def send_durable_execution_callback_success(self, *, CallbackId: str, Result: bytes | None = None) -> None:
        self._runner_for(CallbackId).send_callback_success(CallbackId, Result)

    def send_durable_execution_callback_failure(self, *, CallbackId: str, Error: dict[str, Any]) -> None:
        from aws_durable_execution_sdk_python.lambda_service import ErrorObject

        self._runner_for(CallbackId).send_callback_failure(CallbackId, ErrorObject.from_dict(Error))

    def send_durable_execution_callback_heartbeat(self, *, CallbackId: str) -> None:
        self._runner_for(CallbackId).send_callback_heartbeat(CallbackId)

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()
        self.runners.clear()


class _ClosingPeerRun(PeerRun):
    """Closes the requirement's runner once it is checked, so threads do not pile up."""

    def check(self, events: list[dict[str, Any]]) -> None:
        try:
            super().check(events)
        finally:
            runner = self.lam.runners.pop(self.function_name, None)
            if runner is not None:
                runner.close()


def peer_side() -> dict[str, Any]:
    selected, method = plan()
    lam = PeerLambda()
    # The SDK logs every failed step with its traceback, and the runner every invocation; on the
    # engine side that goes to the worker's log file, here it would flood the bench's output.
    # The handlers' own log lines (root and "conformance.*" loggers) go to the worker's log there too.
    quiet = [logging.getLogger(name) for name in ("aws_durable_execution_sdk_python", PEER_LOGGER, "conformance")]
    quiet.append(logging.getLogger())
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        figures = run_all(lam, selected, _ClosingPeerRun)
    finally:
        lam.close()
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    return figures | {"method": method}


# --- engine side -------------------------------------------------------------------------------


def engine_side(lam: Any) -> dict[str, Any]:
    selected, method = plan()
    return run_all(lam, selected, BenchRun) | {"method": method}


def summary(peer: dict[str, Any], engine: dict[str, Any]) -> dict[str, Any]:
    return {
        "ratio": engine["total_s"] / peer["total_s"],
        "engine_total_s": engine["total_s"],
        "peer_total_s": peer["total_s"],
        "requirements_run": engine["requirements_run"],
        "checks_passed": {"engine": engine["checks_passed"], "peer": peer["checks_passed"]},
        "outcomes_matched": {"engine": engine["outcomes_matched"], "peer": peer["outcomes_matched"]},
        "clock": engine["method"]["clock"],
        "subset": engine["method"]["subset"],
        "skipped": engine["method"]["skipped"],
    }
