"""The checkpoint state machine: plain, deterministic Python with no I/O.

``apply_batch`` takes the stored operations a batch refers to and the SDK's updates (in
``OperationUpdate.to_dict`` form) and returns what must be written: new operation documents,
history events, timers to arm or cancel, chained invokes to start, and an execution finish.
Operation documents use the SDK's JSON form (``Operation.to_json_dict``: epoch-millisecond
timestamps), so loading them for the SDK is a single ``Operation.from_json_dict`` each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import orjson

from engine.errors import InvalidCheckpointError
from engine.rows import OperationDoc, OperationStatus

OP_TYPES = frozenset({"EXECUTION", "CONTEXT", "STEP", "WAIT", "CALLBACK", "CHAINED_INVOKE"})
ACTIONS = frozenset({"START", "SUCCEED", "FAIL", "RETRY", "CANCEL"})
VALID_ACTIONS = {
    "EXECUTION": {"SUCCEED", "FAIL"},
    "STEP": {"START", "SUCCEED", "FAIL", "RETRY"},
    "WAIT": {"START", "CANCEL"},
    "CALLBACK": {"START"},
    "CONTEXT": {"START", "SUCCEED", "FAIL"},
    "CHAINED_INVOKE": {"START"},
}
# Statuses in which an operation waits on the service: a PENDING invocation output is valid then.
PENDING_STATUSES = {
    "STEP": (OperationStatus.PENDING, OperationStatus.READY),
    "WAIT": (OperationStatus.STARTED,),
    "CALLBACK": (OperationStatus.STARTED,),
    "CHAINED_INVOKE": (OperationStatus.STARTED,),
}
MAX_ERROR_BYTES = 32 * 1024
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_INVOKE_INPUT_BYTES = 1024 * 1024
TENANT_ID_RE = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")
# The version every chained invoke runs: functions are never published as numbered versions here.
LATEST = "$LATEST"
CALLBACK_TIMEOUT_ERROR = {"ErrorType": "Callback.Timeout", "ErrorMessage": "Callback timed out"}
CALLBACK_HEARTBEAT_ERROR = {
    "ErrorType": "Callback.Heartbeat",
    "ErrorMessage": "Callback timed out on heartbeat",
}


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def payload_detail(payload: str | None) -> dict[str, Any]:
    return {"Payload": payload, "Truncated": False} if payload is not None else {"Truncated": False}


def error_detail(error: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"Payload": dict(error or {}), "Truncated": False}


def make_event(event_type: str, op: Mapping[str, Any] | None, details: Mapping[str, Any]) -> dict[str, Any]:
    """Return a history event (without EventId/EventTimestamp, which the store assigns)."""
    event: dict[str, Any] = {"EventType": event_type}
    if op is not None:
        for key in ("Id", "Name", "ParentId", "SubType"):
            if op.get(key) is not None:
                event[key] = op[key]
    event[f"{event_type}Details"] = dict(details)
    return event


@dataclass
class Finish:
    status: str
    result: str | None = None
    error: dict[str, Any] | None = None


@dataclass
class ChainedInvoke:
    op_id: str
    function_name: str
    payload: str | None
    tenant_id: str | None
    started_event: dict[str, Any]


@dataclass
class Transition:
    """Everything one batch (or one service-side completion) changes."""

    ops: dict[str, OperationDoc] = field(default_factory=dict)
    touched: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    timers: list[tuple[str, str, datetime]] = field(default_factory=list)
    cancel_timers: list[tuple[str, str]] = field(default_factory=list)
    invokes: list[ChainedInvoke] = field(default_factory=list)
    finish: Finish | None = None

    def touch(self, op: Mapping[str, Any]) -> None:
        self.ops[op["Id"]] = cast(OperationDoc, op)  # the machine built it as one
        if op["Id"] not in self.touched:
            self.touched.append(op["Id"])

    @property
    def changed_ops(self) -> list[OperationDoc]:
        """The operations it touched, in the order it first touched them."""
        return [self.ops[op_id] for op_id in self.touched]


@dataclass
class Clock:
    """The batch's notion of time: wall clock plus the execution's demo time scale."""

    now: datetime
    time_scale: float = 1.0

    def after(self, seconds: float) -> datetime:
        return self.now + timedelta(seconds=seconds * self.time_scale)


def _size(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value)
    return len(text.encode())


def _fail(message: str) -> InvalidCheckpointError:
    return InvalidCheckpointError(message)


def validate_batch(stored: Mapping[str, Mapping[str, Any]], updates: list[dict[str, Any]]) -> None:
    """Reject a batch that breaks the protocol's batch rules (protocol §2.4)."""
    seen: dict[str, str] = {}
    started_contexts: set[str] = set()
    for index, update in enumerate(updates):
        _validate_shape(update)
        op_id, op_type, action = update["Id"], update["Type"], update["Action"]
        if op_type == "EXECUTION":
            if index != len(updates) - 1:
                raise _fail("An EXECUTION update must be the last update of a batch.")
            continue
        if op_id in seen and not (op_type in {"STEP", "CONTEXT"} and seen[op_id] == "START" and action != "START"):
            raise _fail(f"Operation {op_id} appears more than once in one batch.")
        seen[op_id] = action
        parent = update.get("ParentId")
        if parent and parent not in started_contexts:
            stored_parent = stored.get(parent)
            if stored_parent is None or stored_parent.get("Type") != "CONTEXT":
                raise _fail(f"ParentId {parent} of operation {op_id} is not a known CONTEXT operation.")
        if op_type == "CONTEXT" and action == "START":
            started_contexts.add(op_id)
        _validate_identity(stored.get(op_id), update)


def _validate_shape(update: Mapping[str, Any]) -> None:
    op_type, action = update.get("Type"), update.get("Action")
    if not update.get("Id") or op_type not in OP_TYPES or action not in ACTIONS:
        raise _fail(f"Malformed operation update: {dict(update)!r:.200}")
    if action not in VALID_ACTIONS[op_type]:
        raise _fail(f"Action {action} is not valid for operation type {op_type}.")
    if update.get("Error") is not None and _size(update["Error"]) > MAX_ERROR_BYTES:
        raise _fail("Error objects are limited to 32 KiB.")
    if update.get("Payload") is not None and _size(update["Payload"]) > MAX_PAYLOAD_BYTES:
        raise _fail("Operation payloads are limited to 6 MiB.")


def _validate_identity(op: Mapping[str, Any] | None, update: Mapping[str, Any]) -> None:
    if op is None:
        return
    for key in ("Type", "SubType", "Name", "ParentId"):
        # An update that names a field must match the stored op, also where the op lacks it:
        # the SDK's replay check treats a missing Name/SubType/ParentId as a value too.
        if update.get(key) is not None and update[key] != op.get(key):
            raise _fail(f"Operation {op['Id']}: {key} {update[key]!r} differs from stored {op.get(key)!r}.")


def apply_batch(
    stored: Mapping[str, Mapping[str, Any]],
    updates: list[dict[str, Any]],
    clock: Clock,
    mint_callback_id: Callable[[str], str],
) -> Transition:
    """Apply one checkpoint batch; raise ``InvalidCheckpointError`` if it breaks the protocol."""
    validate_batch(stored, updates)
    change = Transition()
    for update in updates:
        current = change.ops.get(update["Id"]) or stored.get(update["Id"])
        handler = _HANDLERS[update["Type"]]
        handler(change, _copy(current), update, clock, mint_callback_id)
    return change


def may_be_lost_in_a_crash(updates: list[dict[str, Any]]) -> bool:
    """Whether a batch may be committed without waiting for the disk (PostgreSQL's asynchronous
    commit), so that a database crash soon after may lose it: a batch of step ends and child
    contexts that starts no step it does not also end.

    Losing such a batch is the same as the handler's process dying just before sending it, which
    each step's semantics already answer for: an at-least-once step's body runs again; an
    at-most-once step is seen started but not ended, interrupted, and goes to its retry strategy;
    a child context runs again from its own checkpoints. A crash loses only a tail of such
    batches, since each durable commit makes every earlier one durable too, and everything that
    must not be lost is such a commit: a step START sent alone (an at-most-once step's, before
    its body runs), a callback id handed out, a wait, a chained invoke, the execution's end.
    """
    started: set[str] = set()
    for update in updates:
        if update["Type"] == "CONTEXT":
            continue
        if update["Type"] != "STEP":
            return False
        if update["Action"] == "START":
            started.add(update["Id"])
        else:  # validate_batch allows only SUCCEED, FAIL or RETRY here
            started.discard(update["Id"])
    return bool(updates) and not started


def _copy(op: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A deep copy of a JSON document; orjson's round trip is several times faster than the stdlib's."""
    if op is None:
        return None
    copy: dict[str, Any]
    try:
        copy = orjson.loads(orjson.dumps(op))
    except TypeError:  # what orjson refuses, the stdlib copies as it always did
        copy = json.loads(json.dumps(op))
    return copy


def _own_copy(op: Mapping[str, Any]) -> dict[str, Any]:
    """The machine changes its own copy of a stored operation, never the caller's."""
    copied = _copy(op)
    assert copied is not None
    return copied


def _new_op(update: Mapping[str, Any], status: str, clock: Clock) -> dict[str, Any]:
    op: dict[str, Any] = {
        "Id": update["Id"],
        "Type": update["Type"],
        "Status": status,
        "StartTimestamp": to_ms(clock.now),
    }
    for key in ("ParentId", "Name", "SubType"):
        if update.get(key):
            op[key] = update[key]
    return op


def _close(op: dict[str, Any], status: str, clock: Clock) -> None:
    op["Status"] = status
    op["EndTimestamp"] = to_ms(clock.now)


def _require(op: Mapping[str, Any] | None, allowed: set[str | None], update: Mapping[str, Any]) -> None:
    status = op["Status"] if op else None
    if status not in allowed:
        raise _fail(
            f"{update['Type']} {update['Action']} is not allowed for operation {update['Id']} "
            f"in status {status or 'absent'}."
        )


# --- STEP -------------------------------------------------------------------------------------


def _apply_step(
    change: Transition, op: dict[str, Any] | None, update: dict[str, Any], clock: Clock, _mint: Any
) -> None:
    action = update["Action"]
    if action == "START":
        _require(op, {None, "READY"}, update)
        op = op or _new_op(update, "STARTED", clock)
        op["Status"] = "STARTED"
        op.setdefault("StepDetails", {"Attempt": 0})
        change.touch(op)
        change.events.append(make_event("StepStarted", op, {}))
        return
    _require(op, {None, "STARTED", "READY"}, update)
    op = op or _new_op(update, "STARTED", clock)
    details = op.setdefault("StepDetails", {"Attempt": 0})
    details["Attempt"] = details.get("Attempt", 0) + 1
    details.pop("NextAttemptTimestamp", None)
    if action == "SUCCEED":
        _step_finish(change, op, update, clock, "SUCCEEDED")
    elif action == "FAIL":
        _step_finish(change, op, update, clock, "FAILED")
    else:
        _step_retry(change, op, update, clock)


def _step_finish(change: Transition, op: dict[str, Any], update: Mapping[str, Any], clock: Clock, status: str) -> None:
    details = op["StepDetails"]
    _close(op, status, clock)
    retry = {"CurrentAttempt": details["Attempt"]}
    if status == "SUCCEEDED":
        if update.get("Error") is not None:
            raise _fail("A SUCCEED update must not carry an Error.")
        details["Result"] = update.get("Payload")
        details.pop("Error", None)
        event = {"Result": payload_detail(update.get("Payload")), "RetryDetails": retry}
        change.events.append(make_event("StepSucceeded", op, event))
    else:
        if update.get("Payload") is not None:
            raise _fail("A FAIL update must not carry a Payload.")
        details["Error"] = update.get("Error") or {}
        event = {"Error": error_detail(update.get("Error")), "RetryDetails": retry}
        change.events.append(make_event("StepFailed", op, event))
    change.cancel_timers.append(("retry", op["Id"]))
    change.touch(op)


def _step_retry(change: Transition, op: dict[str, Any], update: Mapping[str, Any], clock: Clock) -> None:
    options = update.get("StepOptions") or {}
    delay = options.get("NextAttemptDelaySeconds")
    if delay is None:
        raise _fail("A RETRY update needs StepOptions.NextAttemptDelaySeconds.")
    if update.get("Error") is not None and update.get("Payload") is not None:
        raise _fail("A RETRY update carries either an Error or a Payload, not both.")
    details = op["StepDetails"]
    due = clock.after(int(delay))
    op["Status"] = "PENDING"
    details["NextAttemptTimestamp"] = to_ms(due)
    retry = {"CurrentAttempt": details["Attempt"], "NextAttemptDelaySeconds": int(delay)}
    if update.get("Payload") is not None:
        details["Result"] = update["Payload"]
        details.pop("Error", None)
        event = {"Result": payload_detail(update["Payload"]), "RetryDetails": retry}
        change.events.append(make_event("StepSucceeded", op, event))
    else:
        details["Error"] = update.get("Error") or {}
        event = {"Error": error_detail(update.get("Error")), "RetryDetails": retry}
        change.events.append(make_event("StepFailed", op, event))
    change.timers.append(("retry", op["Id"], due))
    change.touch(op)


# --- WAIT -------------------------------------------------------------------------------------


def _apply_wait(
    change: Transition, op: dict[str, Any] | None, update: dict[str, Any], clock: Clock, _mint: Any
) -> None:
    if update["Action"] == "CANCEL":
        _require(op, {"STARTED"}, update)
        assert op is not None
        _close(op, "CANCELLED", clock)
        change.cancel_timers.append(("wait", op["Id"]))
        change.events.append(make_event("WaitCancelled", op, {"Error": error_detail(update.get("Error"))}))
        change.touch(op)
        return
    _require(op, {None}, update)
    seconds = int((update.get("WaitOptions") or {}).get("WaitSeconds") or 0)
    if seconds < 1:
        raise _fail("WaitOptions.WaitSeconds must be at least 1.")
    op = _new_op(update, "STARTED", clock)
    due = clock.after(seconds)
    op["WaitDetails"] = {"ScheduledEndTimestamp": to_ms(due)}
    change.touch(op)
    change.timers.append(("wait", op["Id"], due))
    details = {"Duration": seconds, "ScheduledEndTimestamp": due.isoformat()}
    change.events.append(make_event("WaitStarted", op, details))


def fire_wait(stored: Mapping[str, Any], clock: Clock) -> Transition:
    """Complete a WAIT whose timer is due."""
    op = _own_copy(stored)
    change = Transition()
    if op["Status"] != "STARTED":
        return change
    _close(op, "SUCCEEDED", clock)
    start_ms = op.get("StartTimestamp") or to_ms(clock.now)
    end_ms = op["WaitDetails"].get("ScheduledEndTimestamp", to_ms(clock.now))
    duration = max(1, round((end_ms - start_ms) / 1000 / (clock.time_scale or 1.0)))
    change.touch(op)
    change.events.append(make_event("WaitSucceeded", op, {"Duration": duration}))
    return change


def fire_retry(stored: Mapping[str, Any]) -> Transition:
    """Move a STEP whose retry delay has elapsed from PENDING to READY (no history event)."""
    op = _own_copy(stored)
    change = Transition()
    if op["Status"] != "PENDING":
        return change
    op["Status"] = "READY"
    op.get("StepDetails", {}).pop("NextAttemptTimestamp", None)
    change.touch(op)
    return change


# --- CALLBACK ---------------------------------------------------------------------------------


def _apply_callback(
    change: Transition, op: dict[str, Any] | None, update: dict[str, Any], clock: Clock, mint: Callable[[str], str]
) -> None:
    _require(op, {None}, update)
    options = update.get("CallbackOptions") or {}
    timeout = int(options.get("TimeoutSeconds") or 0)
    heartbeat = int(options.get("HeartbeatTimeoutSeconds") or 0)
    op = _new_op(update, "STARTED", clock)
    callback_id = mint(update["Id"])
    op["CallbackDetails"] = {"CallbackId": callback_id}
    change.touch(op)
    details: dict[str, Any] = {"CallbackId": callback_id}
    if timeout:
        details["Timeout"] = timeout
        change.timers.append(("callback_timeout", op["Id"], clock.after(timeout)))
    if heartbeat:
        details["HeartbeatTimeout"] = heartbeat
        change.timers.append(("callback_heartbeat", op["Id"], clock.after(heartbeat)))
    change.events.append(make_event("CallbackStarted", op, details))


def complete_callback(
    stored: Mapping[str, Any],
    clock: Clock,
    *,
    result: str | None = None,
    error: dict[str, Any] | None = None,
    status: str,
) -> Transition:
    """Close a STARTED callback: SUCCEEDED (result), FAILED or TIMED_OUT (error)."""
    op = _own_copy(stored)
    change = Transition()
    _close(op, status, clock)
    details = op.setdefault("CallbackDetails", {})
    if status == "SUCCEEDED":
        details["Result"] = result
        change.events.append(make_event("CallbackSucceeded", op, {"Result": payload_detail(result)}))
    else:
        details["Error"] = error or {}
        event_type = "CallbackFailed" if status == "FAILED" else "CallbackTimedOut"
        change.events.append(make_event(event_type, op, {"Error": error_detail(error)}))
    change.cancel_timers.extend([("callback_timeout", op["Id"]), ("callback_heartbeat", op["Id"])])
    change.touch(op)
    return change


# --- CONTEXT ----------------------------------------------------------------------------------


def _apply_context(
    change: Transition, op: dict[str, Any] | None, update: dict[str, Any], clock: Clock, _mint: Any
) -> None:
    action = update["Action"]
    if action == "START":
        _require(op, {None}, update)
        op = _new_op(update, "STARTED", clock)
        change.touch(op)
        change.events.append(make_event("ContextStarted", op, {}))
        return
    _require(op, {None, "STARTED"}, update)
    op = op or _new_op(update, "STARTED", clock)
    details: dict[str, Any] = {}
    replay_children = (update.get("ContextOptions") or {}).get("ReplayChildren")
    if replay_children:
        details["ReplayChildren"] = True
    if action == "SUCCEED":
        details["Result"] = update.get("Payload")
        _close(op, "SUCCEEDED", clock)
        change.events.append(make_event("ContextSucceeded", op, {"Result": payload_detail(update.get("Payload"))}))
    else:
        details["Error"] = update.get("Error") or {}
        _close(op, "FAILED", clock)
        change.events.append(make_event("ContextFailed", op, {"Error": error_detail(update.get("Error"))}))
    op["ContextDetails"] = details
    change.touch(op)


# --- CHAINED_INVOKE ---------------------------------------------------------------------------


def _apply_invoke(
    change: Transition, op: dict[str, Any] | None, update: dict[str, Any], clock: Clock, _mint: Any
) -> None:
    _require(op, {None}, update)
    options = update.get("ChainedInvokeOptions") or {}
    function_name = options.get("FunctionName")
    if not function_name:
        raise _fail("A CHAINED_INVOKE START needs ChainedInvokeOptions.FunctionName.")
    payload = update.get("Payload")
    if payload is not None and _size(payload) > MAX_INVOKE_INPUT_BYTES:
        raise _fail("Chained-invoke input is limited to 1 MiB.")
    tenant_id = options.get("TenantId")
    if tenant_id is not None and not (isinstance(tenant_id, str) and TENANT_ID_RE.fullmatch(tenant_id)):
        raise _fail("ChainedInvokeOptions.TenantId must be 1-256 characters of letters, digits, spaces and ._:/=+-@.")
    op = _new_op(update, "STARTED", clock)
    op["ChainedInvokeDetails"] = {}
    change.touch(op)
    # The service adds the child execution's ARN to this event once it has started the target.
    started = chained_invoke_started(op, function_name, payload, None, tenant_id)
    change.events.append(started)
    change.invokes.append(ChainedInvoke(op["Id"], function_name, payload, tenant_id, started))


def chained_invoke_started(
    op: Mapping[str, Any], function_name: str, payload: str | None, child_arn: str | None, tenant_id: str | None = None
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "FunctionName": function_name,
        "Input": payload_detail(payload),
        "ExecutedVersion": LATEST,
    }
    if tenant_id is not None:
        details["TenantId"] = tenant_id
    if child_arn:
        details["DurableExecutionArn"] = child_arn
    return make_event("ChainedInvokeStarted", op, details)


def complete_chained_invoke(
    stored: Mapping[str, Any],
    clock: Clock,
    *,
    status: str,
    result: str | None = None,
    error: dict[str, Any] | None = None,
) -> Transition:
    """Close a chained invoke from its target's outcome."""
    op = _own_copy(stored)
    change = Transition()
    _close(op, status, clock)
    details = op.setdefault("ChainedInvokeDetails", {})
    if status == "SUCCEEDED":
        details["Result"] = result
        change.events.append(make_event("ChainedInvokeSucceeded", op, {"Result": payload_detail(result)}))
    else:
        details["Error"] = error or {}
        event_type = {"FAILED": "ChainedInvokeFailed", "TIMED_OUT": "ChainedInvokeTimedOut"}.get(
            status, "ChainedInvokeStopped"
        )
        change.events.append(make_event(event_type, op, {"Error": error_detail(error)}))
    change.touch(op)
    return change


# --- EXECUTION --------------------------------------------------------------------------------


def _apply_execution(change: Transition, _op: Any, update: dict[str, Any], clock: Clock, _mint: Any) -> None:
    # The SDK closes the execution this way only when its result is too large to return; the
    # update's Id is "execution-result-<ms>", not an operation to store.
    if update["Action"] == "SUCCEED":
        change.finish = Finish("SUCCEEDED", result=update.get("Payload"))
    else:
        change.finish = Finish("FAILED", error=update.get("Error") or {})


_HANDLERS: dict[str, Callable[..., None]] = {
    "STEP": _apply_step,
    "WAIT": _apply_wait,
    "CALLBACK": _apply_callback,
    "CONTEXT": _apply_context,
    "CHAINED_INVOKE": _apply_invoke,
    "EXECUTION": _apply_execution,
}


def has_pending_work(ops: list[Mapping[str, Any]]) -> bool:
    """Return True if some operation is waiting on the service (so PENDING is a valid output)."""
    return any(op["Status"] in PENDING_STATUSES.get(op["Type"], ()) for op in ops)
