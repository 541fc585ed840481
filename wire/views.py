"""The wire API's views: one route per AWS URI, each method named by its botocore operation.

Every request goes through ``api_operation``: authorise (``wire.auth``), parse with botocore's
model (``wire.model``), call the ``engine.client()`` method of the same name, answer in
rest-json (``wire.http``). Refusals are AWS-shaped 4xx and happen before the engine changes
anything; the engine's own checks are the only checks of what a value means.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from botocore import xform_name
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from kombu.exceptions import OperationalError as BrokerUnreachable

import engine
from durable_site.middleware import RETRY_AFTER_SECONDS, is_overload
from engine.errors import EngineError, InvalidParameterValueException, ServiceError
from wire import audit, auth
from wire.http import error_response, read_body, render, request_parts
from wire.model import operation, parse_request

log = logging.getLogger(__name__)

# Wire-only parameters: AWS options the engine's method has no argument for, applied here.
EXECUTION_DATA = ("InputPayload", "Result", "Error")
# Web server threads a waiting RequestResponse invoke may never take (see sync_invoke_slot).
THREADS_KEPT_FREE = 2

View = Callable[..., HttpResponse]


def api_operation(methods: Mapping[str, str]) -> View:
    """The view of one AWS URI: ``methods`` maps each HTTP method to its botocore operation."""

    @csrf_exempt
    def view(request: HttpRequest, **uri: str) -> HttpResponse:
        name = methods.get(request.method or "")
        if name is None:
            allowed = ", ".join(sorted(methods))
            return error_response(
                "UnknownOperationException",
                f"{request.method} is not an operation on this resource (allowed: {allowed}).",
                405,
                {"Allow": allowed},
            )
        return serve(request, name, uri)

    view.operations = dict(methods)  # type: ignore[attr-defined]  # read by the tests' permission map
    return view


def serve(request: HttpRequest, name: str, uri: Mapping[str, str]) -> HttpResponse:
    """Answer one request; a state-changing one leaves an audit entry however it ended (``wire.audit``)."""
    attempt = audit.Attempt(name, uri)
    response = respond(request, attempt)
    audit.record(request, attempt, response)
    return response


def respond(request: HttpRequest, attempt: audit.Attempt) -> HttpResponse:
    name = attempt.operation
    try:
        body = read_body(request)
        attempt.user = auth.authorize(request, name, attempt.uri, on_user=attempt)
        op = operation(name)
        params = parse_request(op, request_parts(request, attempt.uri, body))
        if attempt.audited:
            attempt.note_target(params)
        attempt.result = call_engine(name, params)
        return render(op, attempt.result)
    except auth.AuthError as exc:
        return error_response(exc.code, exc.message, exc.status)
    except ServiceError as exc:
        return error_response(exc.code, exc.message, exc.status_code)
    except EngineError as exc:  # a checkpoint token or batch the engine refused
        return error_response(InvalidParameterValueException.code, str(exc), 400)
    except Exception as exc:
        if isinstance(exc, BrokerUnreachable):
            # What the engine stored stays (the scheduler re-sends its message): a 503, which says
            # so, rather than the 429 that promises a retry is safe.
            log.warning("wire %s: broker unreachable: %s", name, exc)
            return error_response(
                "ServiceException",
                "The message broker is unreachable; the request may already be recorded and will then run "
                "when the broker is back. Retry with the same DurableExecutionName to be safe.",
                503,
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if is_overload(exc):
            log.warning("wire %s: database unavailable: %s", name, exc)
            return error_response(
                "TooManyRequestsException",
                "Durable Lab is busy or restarting; retry in a few seconds.",
                429,
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        # A bug, not a bad request: logged with its traceback, answered as AWS's ServiceException
        # (so boto3 reports it, rather than failing to parse Django's HTML error page).
        log.exception("wire %s failed", name)
        return error_response("ServiceException", f"{name} failed inside Durable Lab; see the server log.", 500)


def call_engine(name: str, params: dict[str, Any]) -> Mapping[str, Any]:
    """Call the ``engine.client()`` method named as boto3 names ``name``, with the parameters it takes."""
    if name == "Invoke" and params.get("InvocationType", "RequestResponse") == "RequestResponse":
        with sync_invoke_slot():
            return _call_engine(name, params)
    return _call_engine(name, params)


def _call_engine(name: str, params: dict[str, Any]) -> Mapping[str, Any]:
    method = getattr(engine.client(), xform_name(name), None)
    if method is None:
        raise NotAvailable(f"{name} is not available in this build of Durable Lab.")
    include_data = params.pop("IncludeExecutionData", True) if name == "GetDurableExecution" else None
    result = method(**_accepted(method, name, params))
    if include_data is not None:
        result = _execution_data(result, include_data)
    return result


class SyncInvokesBusy(ServiceError):
    code = "TooManyRequestsException"
    status_code = 429


_sync_slots: threading.BoundedSemaphore | None = None


@contextmanager
def sync_invoke_slot() -> Iterator[None]:
    """Hold one of the slots of the RequestResponse invokes waiting at once, or refuse the invoke.

    A RequestResponse invoke of a durable function waits for the execution to end, as on AWS
    (up to its ExecutionTimeout, at most 15 minutes), and holds one of the web server's threads
    all that time. Were every thread so held, the callbacks, checkpoints and reads that let the
    executions end would wait behind them until they timed out; so two threads always stay free
    for those, and one invoke more is refused (429, before anything is started) rather than queued.
    """
    global _sync_slots
    if _sync_slots is None:
        from durable_site.management.commands.durable_up import WEB_THREADS

        _sync_slots = threading.BoundedSemaphore(max(1, WEB_THREADS - THREADS_KEPT_FREE))
    if not _sync_slots.acquire(blocking=False):
        raise SyncInvokesBusy(
            "Too many synchronous (RequestResponse) invocations are waiting for their executions to end; "
            "retry later, or invoke with InvocationType Event and poll GetDurableExecution."
        )
    try:
        yield
    finally:
        _sync_slots.release()


class NotAvailable(ServiceError):
    code = "ServiceException"
    status_code = 501


def _accepted(method: Callable[..., Any], name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters, once every one is known to the engine's method; refuse the ones it lacks."""
    signature = inspect.signature(method).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values()):
        return params  # the method checks its own field names
    unsupported = sorted(set(params) - set(signature))
    if unsupported:
        raise InvalidParameterValueException(
            f"{name}: Durable Lab does not support {', '.join(unsupported)}; leave it out."
        )
    return params


def _execution_data(result: Mapping[str, Any], include: bool) -> dict[str, Any]:
    if include:
        return {**result, "ExecutionDataIncluded": True}
    kept = {key: value for key, value in result.items() if key not in EXECUTION_DATA}
    return {**kept, "ExecutionDataIncluded": False}


@csrf_exempt
def unknown_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under the API's prefixes: AWS's "no such operation", never the dashboard's 404 page."""
    return error_response("UnknownOperationException", f"No operation at {request.path[:200]!r}.", 404)
