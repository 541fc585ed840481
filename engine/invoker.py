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
import threading
import traceback
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from functools import partial
from typing import Any, cast

from aws_durable_execution_sdk_python.exceptions import CheckpointError, DurableApiErrorCategory
from aws_durable_execution_sdk_python.execution import (
    DurableExecutionInvocationInputWithClient,
    InitialExecutionState,
)
from aws_durable_execution_sdk_python.lambda_service import (
    CheckpointOutput,
    CheckpointUpdatedExecutionState,
    Operation,
    OperationUpdate,
    StateOutput,
)

from engine import db, handler_paths, journal, registry
from engine.duties.callbacks import complete_plain_invoke
from engine.duties.checkpoint import CheckpointCache, checkpoint, get_state
from engine.duties.claim import Ticket, claim_invocation
from engine.duties.end import complete_invocation
from engine.duties.loops import through_outages
from engine.duties.tokens import function_arn
from engine.duties.unit import PlainCall, utcnow
from engine.errors import InvalidCheckpointError, InvalidCheckpointTokenError

log = logging.getLogger(__name__)


def operation_from_doc(doc: Mapping[str, Any]) -> Operation:
    """The SDK's ``Operation`` for one of the engine's operation documents.

    ``engine.speedups`` replaces this with a conversion that skips the SDK's deep copy.
    """
    return Operation.from_json_dict(cast(MutableMapping[str, Any], doc))  # it deep-copies, never writes


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


def _storable_update(update: MutableMapping[str, Any]) -> dict[str, Any]:
    """The update with a name PostgreSQL can store, escaped as the store would write it.

    Escaped here, where the handler's text enters the engine, rather than only when written:
    a replayed operation's name is compared with the stored one, which must then be equal.
    """
    if not isinstance(update, dict):  # the SDK declares a MutableMapping and builds a dict
        update = dict(update)
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


class _FunctionEnvironments:
    """The process's environment while invocations run, which may overlap in threads of one
    process (inline invocations, a web process answering RequestResponse calls).

    ``os.environ`` is one per process: each invocation's variables stay set while it runs, and
    when one ends the environment goes back to the newest one still running, or to what it was
    before any began. A plain save-and-restore per invocation would let two overlapping ones
    restore each other's values and leave a finished function's name behind for good.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[dict[str, str]] = []
        self._before: dict[str, str | None] = {}

    def enter(self, values: dict[str, str]) -> None:
        with self._lock:
            for key in values:
                self._before.setdefault(key, os.environ.get(key))
            self._running.append(values)
            os.environ.update(values)

    def leave(self, values: dict[str, str]) -> None:
        with self._lock:
            self._running.remove(values)
            newest = self._running[-1] if self._running else {}
            for key, before in self._before.items():
                value = newest.get(key, before)
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if not self._running:
                self._before.clear()


_environments = _FunctionEnvironments()


@contextmanager
def function_environment(variables: dict[str, str], function_name: str, timeout: int) -> Iterator[None]:
    """Set the function's environment variables for this invocation only."""
    values = {**variables, "AWS_LAMBDA_FUNCTION_NAME": function_name, "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout)}
    _environments.enter(values)
    try:
        yield
    finally:
        _environments.leave(values)


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
    if ticket.function.get("code_sha256"):
        # Its own runtime process: that process, not this one, is what the Timeout kills.
        from engine.runtimes.invoke import call_out_of_process

        with journal.recording(ticket.request_id, ticket.faults, None, ticket.execution_id, ticket.seq):
            output, raised = call_out_of_process(ticket)
    else:
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
    error = _outside_code_error(fn["handler"])  # before any import: os.system is never called
    if error is None:
        error = _import_error(module_name)
    if error is None:
        try:  # the module is imported now: what is left to fail is the attribute
            return registry.load_handler(fn["handler"])
        except handler_paths.HandlerOutsideCode as exc:  # another module held its name
            error = _runtime_error("Runtime.ImportModuleError", str(exc), exc)
        except (AttributeError, TypeError) as exc:
            error = _runtime_error(
                "Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_name}'", exc
            )
    log.error("function %s: %s: %s", fn["name"], error["ErrorType"], error["ErrorMessage"])
    raise HandlerLoadError(error)


def _outside_code_error(handler: str) -> dict[str, Any] | None:
    """A handler stored before the rule (or under other handler directories) that resolves
    outside the function's code: a failed invocation that says so, never a call."""
    try:
        handler_paths.check(handler)
    except handler_paths.HandlerOutsideCode as exc:
        return _runtime_error("Runtime.ImportModuleError", str(exc), exc)
    return None


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


def call_plain_handler(
    fn: dict[str, Any], payload: str | None, context: Any = None, request_id: str | None = None
) -> tuple[str | None, dict[str, Any] | None]:
    """Call a plain (non-durable) function once, in the worker or (with its own code) in its
    runtime process; return (JSON result, None) or (None, error)."""
    try:
        event = json.loads(payload) if payload else {}
    except ValueError as exc:
        return None, error_object(exc)
    if fn.get("code_sha256"):
        from engine.runtimes.invoke import call_plain_out_of_process

        return call_plain_out_of_process(fn, event, request_id or str(uuid.uuid4()))
    try:
        handler = load_function_handler(fn)
    except HandlerLoadError as exc:  # a function error for Lambda too: an event is retried, then dead-lettered
        return None, exc.error
    try:
        with function_environment(fn["environment"] or {}, fn["name"], fn["timeout"]):
            return json.dumps(handler(event, context)), None
    except Exception as exc:  # the function's own error: what Lambda reports as FunctionError
        return None, error_object(exc)


def call_plain_function(call: PlainCall) -> None:
    """Run a plain function for a chained invoke and close the operation with its outcome."""
    try:
        fn = registry.get_function_row(call.function_name)
    except Exception as exc:
        result: str | None = None
        error: dict[str, Any] | None = error_object(exc)
    else:
        result, error = call_plain_handler(fn, call.payload)
    if call.op_id:
        complete_plain_invoke(call.execution_id, call.op_id, result=result, error=error)
