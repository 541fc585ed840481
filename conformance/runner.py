"""Runs one conformance requirement end to end on the engine and checks it by the README's rules."""

from __future__ import annotations

import json
import random
import re
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from conformance.matcher import Mismatch, match, substitute

GEN_STR = re.compile(r"^\$\{GEN_STR:(\d+)\}$")
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"}
IDLE_LIMIT = 30.0
POLL = 0.25


@dataclass(frozen=True)
class Spec:
    """How to run one requirement's handler: ``handler`` is an attribute of the suite module."""

    handler: str
    timeout: int = 30
    execution_timeout: int = 300
    time_scale: float | None = None
    environment: dict[str, str] = field(default_factory=dict)
    # Extra functions the handler invokes (chained invoke targets): {"Handler": …, "DurableConfig": …}.
    extra_functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Why the engine cannot meet the requirement yet; the test is then a strict xfail.
    engine_gap: str | None = None


def bind_variables(requirement: dict[str, Any]) -> dict[str, Any]:
    bindings: dict[str, Any] = {}
    for name, value in (requirement.get("Variables") or {}).items():
        generated = GEN_STR.match(str(value))
        if generated:
            alphabet = string.ascii_lowercase + string.digits
            bindings[name] = "".join(random.choice(alphabet) for _ in range(int(generated.group(1))))
        else:
            bindings[name] = value
    return bindings


def _callback_name_matches(pattern: str, name: str | None, bindings: dict[str, Any]) -> bool:
    if pattern == "*":
        return True
    regex = re.fullmatch(r"\$\{/(.*)/\}", pattern, re.S)
    if regex:
        return bool(re.search(regex.group(1), name or ""))
    return substitute(pattern, bindings) == name


class Run:
    """One requirement's execution: start, drive callbacks, wait, and check."""

    poll = POLL  # seconds between looks at the history while driving

    def __init__(
        self,
        lam: Any,
        requirement: dict[str, Any],
        spec: Spec,
        module: str,
        suite_id: str,
        function_fields: dict[str, Any] | None = None,
    ) -> None:
        self.lam = lam
        self.req = requirement
        self.spec = spec
        self.bindings = bind_variables(requirement)
        self.function_name = f"conf-{suite_id}-{uuid.uuid4().hex[:8]}"
        self.module = module
        # More CreateFunction fields: Runtime and Code for a handler that runs in its own runtime process.
        self.function_fields = dict(function_fields or {})
        self.arn: str | None = None
        self.sync_response: dict[str, Any] | None = None

    def register(self) -> None:
        for name, config in self.spec.extra_functions.items():
            handler = config["Handler"]
            fields = {k: v for k, v in config.items() if k != "Handler"}
            try:
                self.lam.create_function(FunctionName=name, Handler=handler, **fields)
            except self.lam.exceptions.ResourceConflictException:
                self.lam.update_function_configuration(FunctionName=name, Handler=handler, **fields)
        self.lam.create_function(
            FunctionName=self.function_name,
            Handler=f"{self.module}.{self.spec.handler}",
            Timeout=self.spec.timeout,
            DurableConfig={"ExecutionTimeout": self.spec.execution_timeout, "RetentionPeriodInDays": 1},
            Environment={"Variables": self.spec.environment},
            **self.function_fields,
        )

    def start(self) -> None:
        payload_value = substitute(self.req.get("Input"), self.bindings)
        payload = None if payload_value is None else json.dumps(payload_value)
        kwargs: dict[str, Any] = {"FunctionName": self.function_name, "Payload": payload}
        if self.spec.time_scale:
            kwargs["TimeScale"] = self.spec.time_scale
        if self.req.get("AsyncInvoke") or self.spec.execution_timeout > 900:
            self.arn = self.lam.invoke(InvocationType="Event", **kwargs)["DurableExecutionArn"]
            return
        # A synchronous invoke blocks until the end, so it runs beside the callback driver.
        ready = threading.Event()

        def invoke_sync() -> None:
            self.sync_response = self.lam.invoke(InvocationType="RequestResponse", **kwargs)

        thread = threading.Thread(target=invoke_sync, daemon=True)
        thread.start()
        self.thread = thread
        deadline = time.monotonic() + 30
        while self.arn is None and time.monotonic() < deadline:
            listing = self.lam.list_durable_executions_by_function(FunctionName=self.function_name)
            if listing["DurableExecutions"]:
                self.arn = listing["DurableExecutions"][0]["DurableExecutionArn"]
            else:
                ready.wait(0.02)
        assert self.arn, "synchronous invoke did not start an execution"

    def history(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        marker = None
        while True:
            kwargs: dict[str, Any] = {"DurableExecutionArn": self.arn, "IncludeExecutionData": True}
            if marker:
                kwargs["Marker"] = marker
            page = self.lam.get_durable_execution_history(**kwargs)
            events.extend(page["Events"])
            marker = page.get("NextMarker")
            if not marker:
                return events

    def status(self) -> dict[str, Any]:
        return self.lam.get_durable_execution(DurableExecutionArn=self.arn)

    def drive(self) -> list[dict[str, Any]]:
        """Send callback actions as callbacks start; return the history once the run is over."""
        actions = [dict(a) for a in self.req.get("CallbackActions") or []]
        handled: set[int] = set()
        expected_ids = [e["EventId"] for e in self.req.get("ExpectedExecutionHistory") or []]
        wait_for_terminal = "ExpectedResult" in self.req
        last_count, last_change = 0, time.monotonic()
        while True:
            events = self.history()
            if len(events) != last_count:
                last_count, last_change = len(events), time.monotonic()
            self._send_actions(events, actions, handled)
            terminal = self.status()["Status"] in TERMINAL
            if terminal and (not hasattr(self, "thread") or not self.thread.is_alive()):
                return self.history()
            if not wait_for_terminal and expected_ids and len(events) >= max(expected_ids):
                self.lam.stop_durable_execution(DurableExecutionArn=self.arn)
                return events
            if time.monotonic() - last_change > IDLE_LIMIT:
                raise AssertionError(f"no new history event for {IDLE_LIMIT:.0f}s; history so far: {_brief(events)}")
            time.sleep(self.poll)

    def _send_actions(self, events: list[dict[str, Any]], actions: list[dict[str, Any]], handled: set[int]) -> None:
        for event in events:
            if event["EventType"] != "CallbackStarted" or event["EventId"] in handled:
                continue
            action = next(
                (
                    a
                    for a in actions
                    if not a.get("_used")
                    and _callback_name_matches(str(a.get("CallbackName", "*")), event.get("Name"), self.bindings)
                ),
                None,
            )
            if action is None:
                continue
            action["_used"] = True
            time.sleep(float(action.get("Delay", 0)))
            callback_id = event["CallbackStartedDetails"]["CallbackId"]
            payload = substitute(action.get("Payload"), self.bindings)
            operation = action.get("Operation", "success")
            try:
                if operation == "success":
                    kwargs = {} if payload is None else {"Result": json.dumps(payload).encode()}
                    self.lam.send_durable_execution_callback_success(CallbackId=callback_id, **kwargs)
                elif operation == "failure":
                    self.lam.send_durable_execution_callback_failure(CallbackId=callback_id, Error=payload or {})
                else:
                    self.lam.send_durable_execution_callback_heartbeat(CallbackId=callback_id)
            except Exception as exc:  # a late action is part of some scenarios; the history decides
                print(f"callback action {operation} on {event.get('Name')} raised {exc}")
            if operation != "heartbeat":
                handled.add(event["EventId"])

    def check(self, events: list[dict[str, Any]]) -> None:
        expected_result = self.req.get("ExpectedResult")
        if expected_result:
            execution = self.status()
            assert execution["Status"] == expected_result["ExecutionStatus"], (
                f"status {execution['Status']} != {expected_result['ExecutionStatus']}; error={execution.get('Error')}; "
                f"history: {_brief(events)}"
            )
            if execution["Status"] == "SUCCEEDED" and "Result" in expected_result:
                want = substitute(expected_result["Result"], self.bindings)
                # No Result at all (a handler returning undefined in JS) reads as null, as in AWS's own validator.
                raw = execution.get("Result")
                assert (None if raw is None else json.loads(raw)) == want, f"result {raw!r} != {want!r}"
        by_id = {e["EventId"]: e for e in events}
        assert events and events[0]["EventType"] == "ExecutionStarted"
        assert [e["EventId"] for e in events] == list(range(1, len(events) + 1)), "EventIds are not contiguous"
        for expected in self.req.get("ExpectedExecutionHistory") or []:
            actual = by_id.get(expected["EventId"])
            if actual is None:
                raise AssertionError(f"no event {expected['EventId']}; history: {_brief(events)}")
            try:
                match(expected, actual, self.bindings, f"event {expected['EventId']}")
            except Mismatch as exc:
                raise AssertionError(f"{exc}\nhistory: {_brief(events)}") from None
        # After the history: log expectations may name ids the history bound (${ID1}).
        self._check_logs()

    def _check_logs(self) -> None:
        """ExpectedLogs: count the execution's log records matching each pattern, and their order."""
        from engine.timeline import invocation_logs

        expectations = self.req.get("ExpectedLogs") or []
        if not expectations:
            return
        records = [log_record(line) for line in invocation_logs(self.arn)]
        for expectation in expectations:
            check_log_expectation(expectation, records, self.bindings)


def log_record(line: dict[str, Any]) -> dict[str, Any]:
    """A captured line as the README's log record: a JSON object line's fields, else its ``message``."""
    try:
        fields = json.loads(line["message"])
    except (TypeError, ValueError):
        fields = None
    return {**line, **fields} if isinstance(fields, dict) else dict(line)


def check_log_expectation(expectation: dict[str, Any], records: list[dict[str, Any]], bindings: dict[str, Any]) -> None:
    """One ExpectedLogs entry: its count (or min/max, at least one by default) and its before/after anchors."""
    pattern = expectation["match"]
    own = [i for i, record in enumerate(records) if _log_matches(pattern, record, bindings)]
    summary = f"log records matching {pattern}: {len(own)}"
    captured = f"captured: {[record['message'] for record in records]}"
    if "count" in expectation:
        assert len(own) == expectation["count"], f"{summary}, expected {expectation['count']}; {captured}"
    else:
        low, high = expectation.get("min_count", 1), expectation.get("max_count")
        assert len(own) >= low and (high is None or len(own) <= high), f"{summary}, expected {low}..{high}; {captured}"
    for direction in ("after", "before"):
        anchors = expectation.get(direction) or []
        for anchor in [anchors] if isinstance(anchors, dict) else anchors:
            anchored = [i for i, record in enumerate(records) if _log_matches(anchor, record, bindings)]
            assert anchored, f"{direction} anchor {anchor} matched no log record; {captured}"
            if not own:
                continue
            in_order = own[0] > anchored[-1] if direction == "after" else own[-1] < anchored[0]
            assert in_order, f"log records matching {pattern} are not all {direction} {anchor}; {captured}"


def _log_matches(pattern: dict[str, Any], record: dict[str, Any], bindings: dict[str, Any]) -> bool:
    for key, want in pattern.items():
        want = substitute(want, bindings)
        got = record.get(key)
        if isinstance(want, str) and len(want) > 1 and want.startswith("/") and want.endswith("/"):
            if not re.search(want[1:-1], "" if got is None else str(got)):
                return False
        elif isinstance(want, str):
            if want.strip() != ("" if got is None else str(got).strip()):
                return False
        elif want != got:
            return False
    return True


def _brief(events: list[dict[str, Any]]) -> str:
    lines = []
    for event in events:
        details = event.get(f"{event['EventType']}Details", {})
        lines.append(
            f"  {event['EventId']} {event['EventType']} {event.get('Name') or ''} {event.get('SubType') or ''} "
            f"{json.dumps(details, default=str)[:300]}"
        )
    return "\n" + "\n".join(lines)
