"""Actions taken from the dashboard: each goes through the engine's public API and is audited."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser

import engine
from engine import faults
from engine.contrib.django.models import Execution, Operation
from engine.errors import ServiceError
from executions.models import OPERATE_PERMISSION, AuditEntry


def can_operate(user: Any) -> bool:
    """Staff users, or anyone granted ``executions.operate_executions``."""
    return bool(user.is_authenticated and user.is_active and (user.is_staff or user.has_perm(OPERATE_PERMISSION)))


def audit(
    *, user: Any, action: str, target: str, execution_pk: int | None = None, ok: bool = True, **detail: Any
) -> AuditEntry:
    return AuditEntry.objects.create(
        user=user if user.is_authenticated else None,
        action=action,
        target=target[:512],
        execution_pk=execution_pk,
        ok=ok,
        detail=json.loads(json.dumps(detail, default=str)),
    )


def _audited(user: Any, action: str, target: str, execution_pk: int | None, detail: dict[str, Any], call: Any) -> Any:
    """Run ``call``; write the audit entry whether it worked or the engine refused (with its error)."""
    try:
        result = call()
    except ServiceError as exc:
        # The refusal is the entry's "error", as for every refusal; a rejection's own error object
        # (its "error" too) is kept as "sent". Both under one key was a TypeError: a late reject 500ed.
        refused = {**detail, "error": str(exc)}
        if "error" in detail:
            refused["sent"] = detail["error"]
        audit(user=user, action=action, target=target, execution_pk=execution_pk, ok=False, **refused)
        raise
    audit(user=user, action=action, target=target, execution_pk=execution_pk, **detail)
    return result


# --- starting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartOutcome:
    arn: str
    status_code: int
    function_error: str | None = None
    payload: str | None = None
    # Set when the name was taken with the same input: the engine returned that execution, and
    # this is its status (RUNNING, or how it ended), not a new start.
    existing_status: str | None = None

    def started_message(self, function_name: str) -> str:
        """What an ``Event`` start tells the person who asked for it."""
        if self.existing_status is None:
            return f"Started {function_name} (202 Accepted)."
        if self.existing_status == "RUNNING":
            return "Not started: an execution with this name and input is already running — this is the existing execution."
        return (
            f"Not started: an execution with this name and input already finished ({self.existing_status}) — "
            "this is the existing execution. Choose another name to run it again."
        )


def existing_execution(*, function_name: str, name: str | None) -> str | None:
    """The ARN of the execution already holding ``name``, if any.

    Starting a taken name with the same input returns that execution (idempotent start), and
    the engine's answer looks the same as a new start: compare its ARN with this one to tell.
    """
    if not name:
        return None
    return Execution.objects.filter(function_name=function_name, name=name).values_list("arn", flat=True).first()


def execution_start(
    *,
    user: Any,
    function_name: str,
    payload: str | None,
    name: str | None = None,
    invocation_type: str = "Event",
    time_scale: float | None = None,
) -> StartOutcome:
    """Invoke a durable function. ``RequestResponse`` blocks until the execution ends."""
    params: dict[str, Any] = {"FunctionName": function_name, "InvocationType": invocation_type, "Payload": payload}
    if name:
        params["DurableExecutionName"] = name
    if time_scale is not None and time_scale != 1:
        params["TimeScale"] = time_scale
    detail = {"function": function_name, "invocation_type": invocation_type, "name": name, "input": payload}
    before = existing_execution(function_name=function_name, name=name)
    try:
        response = engine.client().invoke(**params)
    except ServiceError as exc:
        audit(user=user, action="execution.start", target=function_name, ok=False, error=str(exc), **detail)
        raise
    arn = response.get("DurableExecutionArn", "")
    row = Execution.objects.filter(arn=arn).values("pk", "status").first() if arn else None
    existing_status = row["status"] if row and before is not None and before == arn else None
    if existing_status is not None:
        detail["existing"] = True
    audit(user=user, action="execution.start", target=arn or function_name, execution_pk=row and row["pk"], **detail)
    body = response["Payload"].read().decode() if response.get("Payload") is not None else ""
    return StartOutcome(arn, response["StatusCode"], response.get("FunctionError"), body or None, existing_status)


def execution_rerun(*, user: Any, execution: Execution) -> StartOutcome:
    """Start the same function with the same input under a fresh name."""
    return execution_start(
        user=user,
        function_name=execution.function_name,
        payload=execution.input,
        invocation_type="Event",
        time_scale=execution.time_scale,
    )


# --- stopping and faults --------------------------------------------------------------------


def execution_stop(*, user: Any, execution: Execution) -> None:
    who = user.get_username() if user.is_authenticated else "anonymous"
    error = {"ErrorType": "StoppedFromDashboard", "ErrorMessage": f"Stopped by {who} from the dashboard"}
    _audited(
        user,
        "execution.stop",
        execution.arn,
        execution.pk,
        {},
        lambda: engine.client().stop_durable_execution(DurableExecutionArn=execution.arn, Error=error),
    )


def execution_pause(*, user: Any, execution: Execution) -> None:
    """Pause: no invocation until resumed (one at work stops at its next checkpoint)."""
    reason = f"Paused by {_who(user)} from the dashboard"
    _audited(
        user,
        "execution.pause",
        execution.arn,
        execution.pk,
        {},
        lambda: engine.client().pause_durable_execution(DurableExecutionArn=execution.arn, Reason=reason),
    )


def execution_resume(*, user: Any, execution: Execution) -> None:
    reason = f"Resumed by {_who(user)} from the dashboard"
    _audited(
        user,
        "execution.resume",
        execution.arn,
        execution.pk,
        {},
        lambda: engine.client().resume_durable_execution(DurableExecutionArn=execution.arn, Reason=reason),
    )


def execution_delete(*, user: Any, execution: Execution) -> None:
    """Delete a finished execution and all its data (the audit trail keeps the entry)."""
    detail = {"function": execution.function_name, "name": execution.name, "status": execution.status}
    _audited(
        user,
        "execution.delete",
        execution.arn,
        execution.pk,
        detail,
        lambda: engine.client().delete_durable_execution(DurableExecutionArn=execution.arn),
    )


def _who(user: Any) -> str:
    return str(user.get_username()) if user.is_authenticated else "anonymous"


def execution_kill(*, user: Any, execution: Execution) -> dict[str, Any]:
    """Kill the invocation running right now (as a Lambda timeout would: no error, no checkpoint)."""
    return _audited(
        user,
        "fault.kill_now",
        execution.arn,
        execution.pk,
        {},
        lambda: faults.kill_now(execution.arn, user.get_username()),
    )


def execution_arm_fault(*, user: Any, execution: Execution, step_name: str, phase: str) -> dict[str, Any]:
    """Arm a kill of the next invocation reaching ``step_name`` at ``phase`` (body_start | after_body)."""
    detail = {"step_name": step_name, "phase": phase}
    return _audited(
        user,
        "fault.arm",
        execution.arn,
        execution.pk,
        detail,
        lambda: faults.arm(execution.arn, step_name, phase, user.get_username()),
    )


def execution_release_quarantine(*, user: Any, execution: Execution) -> dict[str, Any]:
    """Let the background loops take the quarantined execution again (nothing else changes)."""
    return _audited(
        user,
        "execution.release_quarantine",
        execution.arn,
        execution.pk,
        {},
        lambda: engine.client().release_durable_execution_quarantine(DurableExecutionArn=execution.arn),
    )


# --- callbacks ------------------------------------------------------------------------------


def _callback_target(operation: Operation) -> tuple[str, int]:
    return operation.callback_id or "", operation.execution_id


def callback_succeed(*, user: Any, operation: Operation, result: str) -> None:
    """Approve: complete the callback with a JSON result (validated by the caller)."""
    callback_id, execution_pk = _callback_target(operation)
    detail = {"operation": operation.name, "op_id": operation.op_id, "result": result}
    _audited(
        user,
        "callback.success",
        callback_id,
        execution_pk,
        detail,
        lambda: engine.client().send_durable_execution_callback_success(CallbackId=callback_id, Result=result),
    )


def callback_fail(*, user: Any, operation: Operation, error: dict[str, Any]) -> None:
    """Reject: fail the callback with an error object (ErrorType, ErrorMessage, ErrorData)."""
    callback_id, execution_pk = _callback_target(operation)
    detail = {"operation": operation.name, "op_id": operation.op_id, "error": error}
    _audited(
        user,
        "callback.failure",
        callback_id,
        execution_pk,
        detail,
        lambda: engine.client().send_durable_execution_callback_failure(CallbackId=callback_id, Error=error),
    )


def callback_heartbeat(*, user: Any, operation: Operation) -> None:
    callback_id, execution_pk = _callback_target(operation)
    detail = {"operation": operation.name, "op_id": operation.op_id}
    _audited(
        user,
        "callback.heartbeat",
        callback_id,
        execution_pk,
        detail,
        lambda: engine.client().send_durable_execution_callback_heartbeat(CallbackId=callback_id),
    )


# A signed link's answer is the customer's, not a user's: the audit entry has no user.
LINK_ANSWERS = {
    "approve": {"approved": True, "via": "signed link"},
    "reject": {"ErrorType": "Rejected", "ErrorMessage": "The customer rejected it through the signed link."},
}


def callback_answer_by_link(*, operation: Operation, action: str) -> None:
    """Approve (success with ``{"approved": true}``) or reject (failure) as the holder of a signed link."""
    callback_id, execution_pk = _callback_target(operation)
    detail = {"operation": operation.name, "op_id": operation.op_id, "via": "signed link"}
    client = engine.client()
    if action == "approve":
        result = json.dumps(LINK_ANSWERS["approve"])
        _audited(
            AnonymousUser(),
            "callback.success",
            callback_id,
            execution_pk,
            {**detail, "result": result},
            lambda: client.send_durable_execution_callback_success(CallbackId=callback_id, Result=result),
        )
        return
    error = dict(LINK_ANSWERS["reject"])
    _audited(
        AnonymousUser(),
        "callback.failure",
        callback_id,
        execution_pk,
        {**detail, "error": error},
        lambda: client.send_durable_execution_callback_failure(CallbackId=callback_id, Error=error),
    )
