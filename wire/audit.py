"""The wire API's audit trail: every state-changing request leaves an entry, accepted or refused.

As the dashboard's actions do (``executions.services``), under the same action names: who (the
user of the access key that signed the request), what, on what, and how it ended; the detail
says ``"via": "aws api"`` and names the key. Payloads are not copied (an Invoke's input may be
6 MB): their size is. Not audited here:

- CheckpointDurableExecution: a handler's own traffic, one request per step or wait, many per
  invocation (the worker's in-process checkpoints are not audited either); the history records
  every one of them.
- Requests whose signature is refused: there is no user to name; ``accesskeys.sigv4`` audits
  those (``access_key.rejected``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse

from accesskeys.sigv4 import signing_key_id
from engine.contrib.django.models import Execution, Operation
from executions.services import audit

log = logging.getLogger(__name__)

VIA = "aws api"
ACTIONS = {
    "Invoke": "execution.start",
    "StopDurableExecution": "execution.stop",
    "PauseDurableExecution": "execution.pause",
    "ResumeDurableExecution": "execution.resume",
    "DeleteDurableExecution": "execution.delete",
    "SendDurableExecutionCallbackSuccess": "callback.success",
    "SendDurableExecutionCallbackFailure": "callback.failure",
    "SendDurableExecutionCallbackHeartbeat": "callback.heartbeat",
    "CreateFunction": "function.create",
    "UpdateFunctionConfiguration": "function.update",
}
# Parameters kept as they were sent (short, and what a reader of the trail asks first).
KEPT = ("FunctionName", "DurableExecutionName", "InvocationType", "Handler", "Runtime", "Timeout")
TEXT_LIMIT = 512


@dataclass
class Attempt:
    """What the view learned of one request on its way through, for its audit entry."""

    operation: str
    uri: Mapping[str, str]
    user: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    execution_pk: int | None = None
    result: Mapping[str, Any] | None = None

    @property
    def audited(self) -> bool:
        return self.operation in ACTIONS

    def note_target(self, params: Mapping[str, Any]) -> None:
        """Keep the parameters and find the execution they name, before the engine acts (a
        deleted execution's row is gone after)."""
        self.params = dict(params)
        arn, callback = params.get("DurableExecutionArn"), params.get("CallbackId")
        if isinstance(arn, str):
            self.execution_pk = Execution.objects.filter(arn=arn).values_list("pk", flat=True).first()
        elif isinstance(callback, str):
            rows = Operation.objects.filter(callback_id=callback).values_list("execution_id", flat=True)
            self.execution_pk = rows.first()


def record(request: HttpRequest, attempt: Attempt, response: HttpResponse) -> None:
    """Write the attempt's entry; a failure to write is logged, never the client's error."""
    if not attempt.audited or attempt.user is None:
        return
    try:
        _write(request, attempt, response)
    except Exception:
        log.exception("wire %s: the audit entry could not be written", attempt.operation)


def _write(request: HttpRequest, attempt: Attempt, response: HttpResponse) -> None:
    ok = response.status_code < 400
    detail = _detail(request, attempt)
    execution_pk = attempt.execution_pk
    target = _target(request, attempt)
    if attempt.result is not None and attempt.operation == "Invoke":
        arn = attempt.result.get("DurableExecutionArn")
        if isinstance(arn, str) and arn:
            target = arn
            execution_pk = Execution.objects.filter(arn=arn).values_list("pk", flat=True).first()
    if not ok:
        detail["error"] = _refusal(response)
    audit(
        user=attempt.user,
        action=ACTIONS[attempt.operation],
        target=storable(target),
        execution_pk=execution_pk,
        ok=ok,
        **detail,
    )


def _detail(request: HttpRequest, attempt: Attempt) -> dict[str, Any]:
    params = attempt.params
    detail: dict[str, Any] = {"via": VIA, "access_key_id": signing_key_id(request), "operation": attempt.operation}
    detail.update({key: _plain(params[key]) for key in KEPT if key in params})
    for key in ("Payload", "Result"):
        if params.get(key) is not None:
            detail[f"{key.lower()}_bytes"] = len(params[key])
    if isinstance(params.get("Error"), Mapping):
        detail["sent"] = {k: _plain(v) for k, v in params["Error"].items() if k in ("ErrorType", "ErrorMessage")}
    return detail


def _target(request: HttpRequest, attempt: Attempt) -> str:
    for key in ("DurableExecutionArn", "CallbackId", "FunctionName"):
        value = attempt.params.get(key) or attempt.uri.get(key)
        if isinstance(value, str) and value:
            return value
    return request.path


def _refusal(response: HttpResponse) -> str:
    """``Code: message`` of an AWS-shaped error response."""
    code = response.get("x-amzn-ErrorType", "")
    try:
        message = json.loads(response.content).get("Message", "")
    except (ValueError, AttributeError):
        message = ""
    return storable(f"{code}: {message}")


def _plain(value: Any) -> Any:
    return storable(value) if isinstance(value, str) else value


def storable(text: str) -> str:
    """Client text as PostgreSQL stores it (no NUL, no lone surrogate), cut to TEXT_LIMIT."""
    escaped = text[:TEXT_LIMIT].encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")
