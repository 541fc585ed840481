"""Runs one invocation: claim the lease, call the unchanged SDK handler, record the outcome.

This module is the seam to ``aws-durable-execution-sdk-python``: the handler receives a
``DurableExecutionInvocationInputWithClient`` whose service client talks to the duties in ``engine.duties``.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aws_durable_execution_sdk_python.exceptions import CheckpointError, DurableApiErrorCategory
from aws_durable_execution_sdk_python.execution import (
    DurableExecutionInvocationInputWithClient,
    InitialExecutionState,
)
from aws_durable_execution_sdk_python.lambda_service import (
    CallbackDetails,
    ChainedInvokeDetails,
    CheckpointOutput,
    CheckpointUpdatedExecutionState,
    ContextDetails,
    ExecutionDetails,
    Operation,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StateOutput,
    StepDetails,
    WaitDetails,
)

from engine import db, journal, registry
from engine.duties.callbacks import complete_plain_invoke
from engine.duties.checkpoint import CheckpointCache, checkpoint, get_state
from engine.duties.claim import Ticket, claim_invocation
from engine.duties.end import complete_invocation
from engine.duties.loops import through_outages
from engine.duties.tokens import function_arn
from engine.duties.unit import PlainCall, utcnow
from engine.errors import InvalidCheckpointError, InvalidCheckpointTokenError

log = logging.getLogger(__name__)


def _ms_to_datetime(ms: int | None) -> datetime | None:
    """``TimestampConverter.from_unix_millis`` for a set timestamp; a falsy one is kept as it is,
    as ``Operation.from_json_dict`` keeps it."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else ms


_OPERATION_TYPES = {member.value: member for member in OperationType}
_OPERATION_STATUSES = {member.value: member for member in OperationStatus}
_DETAILS = (  # field, key, SDK conversion, what a falsy value becomes (as in Operation.from_dict)
    ("execution_details", "ExecutionDetails", ExecutionDetails.from_dict, False),
    ("context_details", "ContextDetails", ContextDetails.from_dict, False),
    ("step_details", "StepDetails", StepDetails.from_dict, False),
    ("wait_details", "WaitDetails", WaitDetails.from_dict, False),
    ("callback_details", "CallbackDetails", CallbackDetails.from_dict, False),
    # The SDK's walrus rebinds this one to the falsy value itself: {} stays {}.
    ("chained_invoke_details", "ChainedInvokeDetails", ChainedInvokeDetails.from_dict, True),
)
_DETAIL_TIMESTAMPS = {"StepDetails": "NextAttemptTimestamp", "WaitDetails": "ScheduledEndTimestamp"}


def operation_from_doc(doc: dict[str, Any]) -> Operation:
    """``Operation.from_json_dict`` without its deep copy, its enum calls and its dataclass ``__init__``.

    A replay converts every stored operation, so this runs 10,000 times for 10,000 operations:
    the SDK's conversion costs ~6 µs a document, this ~2.5 µs. The engine's documents come fresh
    from the database or the state machine and are not modified afterwards, so the copy is
    wasted. ``Operation`` is a frozen dataclass without ``__post_init__``, so filling its
    ``__dict__`` makes the object its ``__init__`` makes. The details keep the SDK's
    ``from_dict``. What the fast path does not know (a type or status the SDK would reject, no
    ``Id``) goes to the SDK's conversion, which raises its own error. Contract tests check that
    both give equal objects with equal attributes.
    """
    try:
        fields = _operation_fields(doc)
    except (KeyError, TypeError):
        return Operation.from_json_dict(doc)
    operation = object.__new__(Operation)
    operation.__dict__.update(fields)
    return operation


def _operation_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """``Operation.from_dict``'s fields, in declaration order, with timestamps converted."""
    start_ms, end_ms = doc.get("StartTimestamp"), doc.get("EndTimestamp")
    start = _ms_to_datetime(start_ms)
    fields = {
        "operation_id": doc["Id"],
        "operation_type": _OPERATION_TYPES[doc.get("Type")],
        "status": _OPERATION_STATUSES[doc.get("Status")],
        "parent_id": doc.get("ParentId"),
        "name": doc.get("Name"),
        "start_timestamp": start,
        "end_timestamp": start if end_ms == start_ms else _ms_to_datetime(end_ms),  # often equal: one conversion
        "sub_type": doc.get("SubType") or None,
    }
    for field, key, from_dict, keeps_falsy in _DETAILS:
        details = doc.get(key)
        if details:
            fields[field] = from_dict(_details_with_timestamp(key, details))
        else:
            fields[field] = details if keeps_falsy else None
    return fields


def _details_with_timestamp(key: str, details: dict[str, Any]) -> dict[str, Any]:
    """The details with their timestamp (if any) as a datetime, in a shallow copy."""
    ms_key = _DETAIL_TIMESTAMPS.get(key)
    if ms_key is None or not details.get(ms_key):
        return details
    return {**details, ms_key: _ms_to_datetime(details[ms_key])}


class EngineServiceClient:
    """The SDK's ``DurableServiceClient``, served by the engine (called on the SDK's checkpoint thread).

    One per invocation: it keeps the invocation's ``CheckpointCache`` (from its ticket), seeded
    with the operations the invocation started from and the execution row its claim wrote, so
    that most checkpoints, the first one included, are one guarded statement.
    """

    def __init__(self, cache: CheckpointCache | None = None) -> None:
        self.cache = cache if cache is not None else CheckpointCache(ops={})

    def checkpoint(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        updates: list[OperationUpdate],
        client_token: str | None,
    ) -> CheckpointOutput:
        try:
            token, ops = checkpoint(
                durable_execution_arn, checkpoint_token, [_storable_update(u.to_dict()) for u in updates], self.cache
            )
        except InvalidCheckpointError as exc:
            # A protocol violation cannot succeed on retry: the SDK then fails the execution.
            raise CheckpointError(str(exc), error_category=DurableApiErrorCategory.EXECUTION) from exc
        except InvalidCheckpointTokenError as exc:
            raise CheckpointError("Invalid checkpoint token") from exc
        state = CheckpointUpdatedExecutionState(operations=[operation_from_doc(op) for op in ops])
        return CheckpointOutput(checkpoint_token=token, new_execution_state=state)

    def get_execution_state(
        self, durable_execution_arn: str, checkpoint_token: str, next_marker: str, max_items: int = 1000
    ) -> StateOutput:
        ops = get_state(durable_execution_arn, checkpoint_token)
        return StateOutput(operations=[operation_from_doc(op) for op in ops], next_marker=None)


def _storable_update(update: dict[str, Any]) -> dict[str, Any]:
    """The update with a name PostgreSQL can store, escaped as the store would write it.

    Escaped here, where the handler's text enters the engine, rather than only when written:
    a replayed operation's name is compared with the stored one, which must then be equal.
    """
    name = update.get("Name")
    if isinstance(name, str) and not db.is_storable(name):
        update["Name"] = db.escape_untranslatable(name)
    return update


class LambdaContext:
    """The subset of Lambda's context object that handlers and the SDK read."""

    def __init__(self, ticket: Ticket) -> None:
        self.aws_request_id = ticket.request_id
        self.function_name = ticket.function["name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn(ticket.function["name"])
        self.memory_limit_in_mb = 128
        self.log_group_name = f"/aws/lambda/{ticket.function['name']}"
        self.log_stream_name = f"durable-lab/{ticket.execution_id}/{ticket.seq}"
        self._deadline = ticket.deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - utcnow()).total_seconds() * 1000))


@contextmanager
def function_environment(variables: dict[str, str], function_name: str, timeout: int) -> Iterator[None]:
    """Set the function's environment variables for this invocation only."""
    values = {**variables, "AWS_LAMBDA_FUNCTION_NAME": function_name, "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout)}
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def error_object(exc: BaseException) -> dict[str, Any]:
    error_type = (
        type(exc).__name__ if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{type(exc).__qualname__}"
    )
    return {
        "ErrorType": error_type,
        "ErrorMessage": str(exc) or error_type,
        "StackTrace": traceback.format_exception(exc)[-20:],
    }


def build_event(ticket: Ticket) -> DurableExecutionInvocationInputWithClient:
    state = InitialExecutionState(operations=[operation_from_doc(op) for op in ticket.operations], next_marker="")
    return DurableExecutionInvocationInputWithClient(
        durable_execution_arn=ticket.arn,
        checkpoint_token=ticket.token,
        initial_execution_state=state,
        service_client=EngineServiceClient(ticket.cache),
    )


_heap_frozen_in: int | None = None


def freeze_startup_heap() -> None:
    """Before a process's first invocation, move the objects it holds (Django, Celery, the SDK,
    the handlers' modules) out of the garbage collector's sight.

    A replay allocates several objects per operation, and every full collection it triggers
    would rescan that whole long-lived heap: ~30 ms each at 10,000 operations. Garbage is
    collected first, so nothing unreachable is kept; that full collection takes ~70 ms, which is
    why a Celery pool child does this as it starts, before its first task. A forked child freezes
    its own heap.
    """
    global _heap_frozen_in
    if _heap_frozen_in != os.getpid():
        gc.collect()
        gc.freeze()
        _heap_frozen_in = os.getpid()


def run_invocation(execution_id: int, *, in_sandbox: bool = False, generation: int | None = None) -> bool:
    """Run the execution's next invocation if one is owed; return True if one ran.

    ``in_sandbox`` (a worker child) lets the function's Timeout and armed faults kill this
    process, as Lambda kills a sandbox; in-process callers (tests, benchmarks) keep it off.
    ``generation`` is a re-dispatched message's (see ``engine.duties.sweep.redispatch_stranded``).
    """
    ticket = claim_invocation(execution_id, generation)
    if ticket is None:
        return False
    freeze_startup_heap()
    remaining = max(0.0, (ticket.deadline - utcnow()).total_seconds())
    deadline = remaining if in_sandbox else None
    with journal.recording(ticket.request_id, ticket.faults, deadline, ticket.execution_id, ticket.seq):
        output, raised = call_handler(ticket)
    # The journal stays on disk meanwhile; if the database stays away, the sweeper records the
    # invocation as timed out when it is back.
    through_outages(partial(complete_invocation, ticket, output, raised), f"recording invocation {ticket.request_id}")
    return True


class HandlerLoadError(Exception):
    """The function's handler could not be loaded; ``error`` is the error object Lambda reports."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["ErrorMessage"])
        self.error = error


def load_function_handler(fn: dict[str, Any]) -> Any:
    """Return the function's handler, or raise ``HandlerLoadError`` with the error Lambda's Python
    runtime reports (``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``, …), logged once
    with the function's name: the worker log is where an operator looks first."""
    module_name, _, attr = fn["handler"].rpartition(".")
    error = _import_error(module_name)
    if error is None:
        try:  # the module is imported now: what is left to fail is the attribute
            return registry.load_handler(fn["handler"])
        except (AttributeError, TypeError) as exc:
            error = _runtime_error(
                "Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_name}'", exc
            )
    log.error("function %s: %s: %s", fn["name"], error["ErrorType"], error["ErrorMessage"])
    raise HandlerLoadError(error)


def _import_error(module_name: str) -> dict[str, Any] | None:
    """Import the handler's module; return the error Lambda reports if that fails, else None."""
    try:
        importlib.import_module(module_name)
    except ImportError as exc:
        return _runtime_error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", exc)
    except SyntaxError as exc:
        return _runtime_error("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", exc)
    except Exception as exc:  # the module's own code raised: reported with its type, as Lambda reports an init error
        return error_object(exc)
    return None


def _runtime_error(error_type: str, message: str, exc: BaseException) -> dict[str, Any]:
    return {"ErrorType": error_type, "ErrorMessage": message, "StackTrace": traceback.format_exception(exc)[-20:]}


def call_handler(ticket: Ticket) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    fn = ticket.function
    try:
        handler = load_function_handler(fn)
    except HandlerLoadError as exc:
        return None, exc.error
    with function_environment(fn["environment"] or {}, fn["name"], fn["timeout"]):
        try:
            output = handler(build_event(ticket), LambdaContext(ticket))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            return None, error_object(exc)
    if not isinstance(output, dict):
        # A handler without @durable_execution returns its plain value: the wrong kind of function.
        return None, {
            "ErrorType": "InvalidHandlerOutput",
            "ErrorMessage": f"Handler returned {json.dumps(output, default=str)[:200]}; is it decorated with @durable_execution?",
        }
    return output, None


def call_plain_handler(fn: dict[str, Any], payload: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """Call a plain (non-durable) function once; return (JSON result, None) or (None, error)."""
    try:
        handler = load_function_handler(fn)
    except HandlerLoadError as exc:
        return None, exc.error
    try:
        event = json.loads(payload) if payload else {}
        with function_environment(fn["environment"] or {}, fn["name"], fn["timeout"]):
            return json.dumps(handler(event, None)), None
    except Exception as exc:
        return None, error_object(exc)


def call_plain_function(call: PlainCall) -> None:
    """Run a plain function for a chained invoke and close the operation with its outcome."""
    try:
        fn = registry.get_function_row(call.function_name)
    except Exception as exc:
        result, error = None, error_object(exc)
    else:
        result, error = call_plain_handler(fn, call.payload)
    if call.op_id:
        complete_plain_invoke(call.execution_id, call.op_id, result=result, error=error)
