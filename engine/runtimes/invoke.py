"""One invocation out of process: a warm runtime child per function, code version and configuration.

The child's environment carries its access key (RUNTIME_PROTOCOL.md: the credential is given at
start). Before each invocation the key is bound to that invocation's execution, until shortly
after its deadline: a warm child serves any execution of its function, and its key reaches only
the execution it is running.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from engine import effects, journal
from engine.duties.claim import Ticket
from engine.duties.sweep import LOST_ERRORS
from engine.duties.tokens import function_arn
from engine.duties.unit import utcnow
from engine.rows import BodyRunOutcome
from engine.runtimes import RUNTIMES, RuntimeUnavailable, code, settings
from engine.runtimes.process import RecordSink, RuntimeFailure, RuntimeProcess, Timeout

log = logging.getLogger(__name__)

POOL_SIZE = 4  # warm children per worker process; the least recently used one goes first
IDLE_SECONDS = 600.0  # a warm child unused this long is stopped at the next invocation
KEY_GRACE = timedelta(seconds=60)  # the access key outlives the invocation's deadline by this
BASE_VARIABLES = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "TZ")

Outcome = tuple[dict[str, Any] | None, dict[str, Any] | None]

_pool: OrderedDict[tuple[Any, ...], RuntimeProcess] = OrderedDict()


def invocation_event(ticket: Ticket) -> dict[str, Any]:
    """The DurableExecutionInvocationInput Lambda sends, as JSON (the in-worker path's input, serialised)."""
    return {
        "DurableExecutionArn": ticket.arn,
        "CheckpointToken": ticket.token,
        "InitialExecutionState": {"Operations": ticket.operations, "NextMarker": ""},
    }


def call_out_of_process(ticket: Ticket) -> Outcome:
    """Run the invocation in the function's runtime process; return (output, None) or (None, error)."""
    context = {
        "awsRequestId": ticket.request_id,
        "functionName": ticket.function["name"],
        "deadlineMs": int(ticket.deadline.timestamp() * 1000),
        "tenantId": None,
    }
    request = {"event": invocation_event(ticket), "context": context}
    answer, error = _call(ticket.function, ticket.arn, ticket.deadline, request, _record)
    return (None, error) if answer is None else _outcome(answer)


def call_plain_out_of_process(
    fn: dict[str, Any], event: Any, request_id: str
) -> tuple[str | None, dict[str, Any] | None]:
    """A plain (non-durable) function's one call in its runtime process: any JSON value is its
    answer. Return (JSON result, None) or (None, error), as in the worker."""
    ends = utcnow() + timedelta(seconds=float(fn["timeout"] or 3))
    context = {"awsRequestId": request_id, "functionName": fn["name"], "deadlineMs": int(ends.timestamp() * 1000)}
    # Its key is bound to the function's own ARN: a plain call reaches no durable execution.
    answer, error = _call(fn, function_arn(fn["name"]), ends, {"event": event, "context": context})
    if answer is None:
        return None, error
    if "output" in answer:
        return json.dumps(answer["output"]), None
    return None, _error_of(answer)


def _call(
    fn: dict[str, Any], arn: str, ends: datetime, request: dict[str, Any], on_record: RecordSink | None = None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Send ``request`` to a runtime process of ``fn`` (its key bound to ``arn`` until shortly
    after ``ends``, the Timeout); return (its answer, None), or (None, the error the call ends
    with) if the process timed out, died, could not start, or was killed by an armed fault."""
    deadline = time.monotonic() + max(0.0, (ends - utcnow()).total_seconds())
    child: RuntimeProcess | None = None
    try:
        child = _acquire(fn, arn, ends + KEY_GRACE, deadline)
        return child.invoke(request, deadline, _log_line, on_record), None
    except FaultFired:
        _discard(child)  # killed where the fault was armed: in its step body, or before its result is sent
        return None, dict(LOST_ERRORS["killed"])  # as a worker process killed by a fault is recorded
    except Timeout:
        _discard(child)
        current = journal.current()
        if current is not None:
            current.write({"t": "timeout"})
        return None, {
            "ErrorType": "Sandbox.Timedout",
            "ErrorMessage": f"Task timed out after {fn['timeout']:.2f} seconds",
        }
    except RuntimeFailure as exc:
        _discard(child)
        log.error("function %s: %s: %s", fn["name"], exc.error["ErrorType"], exc.error["ErrorMessage"])
        return None, exc.error
    except RuntimeUnavailable as exc:
        return None, {"ErrorType": "Runtime.InvalidRuntime", "ErrorMessage": str(exc)}
    except Exception:
        _discard(child)
        raise


def _outcome(answer: dict[str, Any]) -> Outcome:
    if "output" in answer:
        output = answer["output"]
        if not isinstance(output, dict):
            text = json.dumps(output, default=str)[:200]
            return None, {
                "ErrorType": "InvalidHandlerOutput",
                "ErrorMessage": f"Handler returned {text}; is it wrapped with the durable execution SDK?",
            }
        return output, None
    return None, _error_of(answer)


def _error_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The error object of an answer without output, or InvalidResponse if it has neither."""
    error = answer.get("error")
    if isinstance(error, dict):
        return {
            "ErrorType": str(error.get("errorType") or "Runtime.Unknown"),
            "ErrorMessage": str(error.get("errorMessage") or ""),
            "StackTrace": [str(line) for line in error.get("stackTrace") or []][:50],
        }
    raise RuntimeFailure(
        "Runtime.InvalidResponse", f"Runtime answered neither output nor error: {json.dumps(answer)[:200]}"
    )


class FaultFired(Exception):
    """An armed fault is due where the runtime's step body is: the runtime process is killed."""


# A body the runtime saw end: it returned or raised (one that did not end is interrupted).
ENDED = frozenset({BodyRunOutcome.SUCCEEDED, BodyRunOutcome.FAILED})


def _record(record: dict[str, Any]) -> dict[str, Any] | None:
    """A step body's start or end in the runtime process, into the invocation's journal as the
    in-worker plugin writes it (engine.journal.JournalPlugin), or a side effect its handler
    counts (``engine.effects.record``). The runtime waits meanwhile: an armed fault due there
    kills it before the body runs, or before its result is checkpointed."""
    current = journal.current()
    kind, op_id, name = record.get("t"), record.get("op_id"), record.get("name")
    if current is None:
        return None
    if kind == "effect":
        return _effect(record)
    if not isinstance(op_id, str) or not (name is None or isinstance(name, str)):
        return None
    op_id, name = op_id[:64], name[:256] if name else None
    attempt, outcome = record.get("attempt"), record.get("outcome")
    if kind == "body_start" and isinstance(attempt, int) and not isinstance(attempt, bool) and attempt > 0:
        fault = current.body_started(op_id, name, attempt)
    elif kind == "body_end" and outcome in ENDED:
        fault = current.body_ended(op_id, name, str(outcome))
    else:
        return None
    if fault is not None:
        current.fire(fault)  # written to the journal; this worker process lives on
        raise FaultFired
    return None


def _effect(record: dict[str, Any]) -> dict[str, Any]:
    """``engine.effects.record`` for the runtime's handler; a bad argument is its error, not ours."""
    kind, key, idempotency_key = record.get("kind"), record.get("key"), record.get("idempotency_key")
    limits = [(kind, 64), (key, 256)] + ([] if idempotency_key is None else [(idempotency_key, 256)])
    if not all(isinstance(text, str) and 0 < len(text) <= most and "\x00" not in text for text, most in limits):
        return {
            "error": "kind (at most 64 characters), key and idempotency_key (256) must be non-empty text without NUL"
        }
    result = effects.record(str(kind), str(key), idempotency_key)
    return {"effect": dataclasses.asdict(result)}


def _log_line(stream: str, line: str) -> None:
    current = journal.current()
    if current is not None and line.strip():
        current.log("ERROR" if stream == "stderr" else "INFO", stream, line)


def _acquire(fn: dict[str, Any], arn: str, expires: datetime, deadline: float) -> RuntimeProcess:
    """A warm runtime process for ``fn`` (or a new one), its key bound to ``arn`` until ``expires``."""
    runtime = RUNTIMES.get(fn["runtime"] or "")
    if runtime is None:
        raise RuntimeUnavailable(f"Runtime {fn['runtime']!r} is not available here; use one of {sorted(RUNTIMES)}.")
    variables = dict(fn["environment"] or {})
    argv = runtime.command(variables)
    key = (fn["name"], fn["code_sha256"], fn["runtime"], tuple(argv), _fingerprint(variables))
    _stop_idle()
    child = _pool.pop(key, None)
    if child is not None and child.alive():
        _pool[key] = child
        if child.access_key_id and settings.credentials is not None:
            settings.credentials.rebind(child.access_key_id, arn, expires)
        return child
    if child is not None:
        child.kill()
    child = _start(fn, arn, argv, variables, expires, deadline)
    _pool[key] = child
    while len(_pool) > POOL_SIZE:
        _, oldest = _pool.popitem(last=False)
        oldest.stop()
    return child


def _start(
    fn: dict[str, Any], arn: str, argv: list[str], variables: dict[str, str], expires: datetime, deadline: float
) -> RuntimeProcess:
    try:
        directory = str(code.unpacked(fn["code_sha256"]))
    except (OSError, code.InvalidCode) as exc:
        raise RuntimeFailure("Runtime.InvalidEntrypoint", f"The function's code could not be unpacked: {exc}") from exc
    if settings.credentials is None:
        raise RuntimeFailure("Runtime.InvalidEntrypoint", "No credential issuer is configured for runtime processes.")
    key_id, secret = settings.credentials.issue(arn, expires)
    env = {name: os.environ[name] for name in BASE_VARIABLES if name in os.environ}
    env.update(variables)
    env.update(
        {
            "AWS_ENDPOINT_URL_LAMBDA": settings.wire_url(),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_LAMBDA_FUNCTION_NAME": fn["name"],
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn["timeout"]),
            "_HANDLER": fn["handler"],
            "LAMBDA_TASK_ROOT": directory,
        }
    )
    child = RuntimeProcess(argv, directory, env)
    try:
        child.wait_ready(deadline, _log_line)
    except BaseException:
        child.kill()
        raise
    return child


def _fingerprint(variables: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(variables, sort_keys=True).encode()).hexdigest()


def _discard(child: RuntimeProcess | None) -> None:
    if child is None:
        return
    for key, pooled in list(_pool.items()):
        if pooled is child:
            del _pool[key]
    child.kill()


def _stop_idle() -> None:
    now = time.monotonic()
    for key, child in list(_pool.items()):
        if now - child.last_used > IDLE_SECONDS or not child.alive():
            del _pool[key]
            child.stop()


def stop_all() -> None:
    """Stop every warm child of this process (a worker child that shuts down)."""
    while _pool:
        _, child = _pool.popitem()
        child.stop()
