"""``engine.client()``: the durable subset of boto3's ``lambda`` client, served by the engine.

Method names, parameters, response shapes and error codes follow boto3, so code written for
``boto3.client("lambda")`` runs against Durable Lab. No transport lives here: the same object
can be served over HTTP.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine import db, registry, validation
from engine.duties import loops
from engine.duties.callbacks import complete_callback, heartbeat_callback
from engine.duties.checkpoint import checkpoint, get_state
from engine.duties.pause import delete_execution, pause_execution, resume_execution
from engine.duties.start import StartRequest, start_execution
from engine.duties.stop import stop_execution
from engine.duties.tokens import function_arn
from engine.errors import (
    ALL_SERVICE_ERRORS,
    InvalidCheckpointError,
    InvalidCheckpointTokenError,
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestTooLargeException,
    ResourceNotFoundException,
)
from engine.rows import EXECUTION_ENDED, Execution, ExecutionStatus
from engine.store import ms_to_datetime, store

EXECUTION_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
CALLBACK_ID_RE = re.compile(r"[A-Za-z0-9+/=]{1,1024}")
ARN_RE = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[a-zA-Z0-9_-]+(:[^/]+)?/durable-execution/")
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
CALLBACK_RESULT_LIMIT = 256 * 1024
ERROR_LIMIT = 32 * 1024
MAX_SYNC_EXECUTION_TIMEOUT = 900
MAX_STRING = 1024  # ARNs, tokens, markers, qualifiers: AWS caps each of these at 1024 characters or less
MARKER_LIMIT = 4096
# botocore's ExecutionStatus, as plain text for the error messages that list them.
STATUSES = {status.value for status in ExecutionStatus}
CLIENT_TOKEN_RE = re.compile(r"[\x21-\x7E]{1,64}")
REASON_LIMIT = 1024


class _Exceptions:
    """``client.exceptions.ResourceNotFoundException`` and friends, as on a boto3 client."""

    def __init__(self) -> None:
        for error in ALL_SERVICE_ERRORS:
            setattr(self, error.code, error)
        self.ClientError = ALL_SERVICE_ERRORS[-1]


def _invalid(message: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(message)


def _require_str(value: Any, field: str, max_length: int = MAX_STRING) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"{field} is required and must be a non-empty string.")
    return _text(value, field, max_length)


def _text(value: Any, field: str, max_length: int = MAX_STRING) -> str:
    """Return a string parameter PostgreSQL can store (no NUL, no lone surrogate), else refuse it."""
    try:
        return validation.check_text(value, field, max_length=max_length)
    except validation.InvalidInput as exc:
        raise _invalid(str(exc)) from exc


def _optional_text(value: Any, field: str) -> str | None:
    return None if value is None else _text(value, field)


def _payload_text(payload: Any, limit: int) -> str | None:
    """Return the invoke payload as JSON text (None when absent), or raise a clear error."""
    if payload is None or (isinstance(payload, str | bytes) and not payload):
        return None
    if hasattr(payload, "read"):
        payload = payload.read()
    if not isinstance(payload, str | bytes | bytearray):
        raise _invalid("Payload must be bytes or a string of JSON.")
    size = len(payload) if isinstance(payload, bytes | bytearray) else len(payload.encode(errors="replace"))
    if size > limit:
        raise RequestTooLargeException(
            f"Request must be smaller than {limit} bytes for the invoke operation (got {size})."
        )
    try:
        return validation.check_json_text(payload, "Payload", max_bytes=limit)
    except validation.InvalidInput as exc:
        raise InvalidRequestContentException(f"Could not parse request body into json: {exc}") from exc


def _validate_arn(value: Any) -> str:
    arn = _require_str(value, "DurableExecutionArn")
    if not ARN_RE.match(arn):
        raise _invalid(f"DurableExecutionArn {arn!r} is not a durable execution ARN.")
    return arn


def _validate_callback_id(value: Any) -> str:
    callback_id = _require_str(value, "CallbackId")
    if not CALLBACK_ID_RE.fullmatch(callback_id):
        raise _invalid("CallbackId must be 1-1024 characters of the base64 alphabet.")
    return callback_id


def _validate_error(error: Any) -> dict[str, Any] | None:
    if error is None:
        return None
    allowed = {"ErrorMessage", "ErrorType", "ErrorData", "StackTrace"}
    if not isinstance(error, Mapping) or set(error) - allowed:
        raise _invalid(f"Error must be an object with only {sorted(allowed)}.")
    # Each field's own bound is loose: the whole object's size, checked last, is AWS's limit.
    for key in ("ErrorMessage", "ErrorType", "ErrorData"):
        if key in error:
            _text(error[key], f"Error.{key}", SYNC_PAYLOAD_LIMIT)
    if "StackTrace" in error:
        if not isinstance(error["StackTrace"], list):
            raise _invalid("Error.StackTrace must be a list of strings.")
        for index, line in enumerate(error["StackTrace"]):
            _text(line, f"Error.StackTrace[{index}]", SYNC_PAYLOAD_LIMIT)
    if len(json.dumps(error).encode()) > ERROR_LIMIT:
        raise RequestTooLargeException("Error objects are limited to 32 KiB.")
    return dict(error)


def _max_items(value: Any, default: int, high: int = 1000) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise _invalid(f"MaxItems must be an integer between 1 and {high}.")
    max_items: int = value
    return max_items


def _encode_marker(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _decode_marker(marker: Any) -> Any:
    token = _require_str(marker, "Marker", MARKER_LIMIT)
    try:
        # Markers are made by _encode_marker, so a deep or non-JSON one is forged: parse it strictly.
        return validation.parse_json_text(base64.urlsafe_b64decode(token.encode()), "Marker", max_bytes=MARKER_LIMIT)
    except ValueError as exc:  # binascii.Error and validation.InvalidInput are ValueErrors
        raise _invalid("Marker is invalid: pass the NextMarker of a previous response.") from exc


def _given(marker: Any) -> bool:
    """An empty Marker means "from the start", as it always has for the CLI's ``--starting-token ''``."""
    return marker is not None and not (isinstance(marker, str) and marker == "")


def _name_marker(marker: Any) -> str:
    value = _decode_marker(marker)
    if not isinstance(value, str):
        raise _invalid("Marker is invalid: pass the NextMarker of a previous response.")
    return _text(value, "Marker")


def _int_marker(marker: Any) -> int:
    value = _decode_marker(marker)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise _invalid("Marker is invalid: pass the NextMarker of a previous response.")
    position: int = value
    return position


def _position_marker(marker: Any) -> tuple[datetime, int]:
    """Return the (started_at, id) a listing marker points after; a forged marker is refused."""
    value = _decode_marker(marker)
    try:
        started, ident = value
        if isinstance(ident, bool) or not isinstance(ident, int) or abs(ident) >= 2**63:
            raise TypeError(ident)
        return validation.check_aware_datetime(datetime.fromisoformat(started), "Marker"), ident
    except (TypeError, ValueError) as exc:
        raise _invalid("Marker is invalid: pass the NextMarker of a previous response.") from exc


class LambdaClient:
    """The durable subset of boto3's Lambda client. Keyword arguments only, as in boto3."""

    exceptions = _Exceptions()

    # --- functions ----------------------------------------------------------------------------

    def create_function(self, *, FunctionName: str, Handler: str, **fields: Any) -> dict[str, Any]:
        """Register a function; ``DurableConfig`` makes it durable. With ``Code={"ZipFile": …}`` and a
        ``Runtime`` it runs in its own runtime process; without code, ``Handler`` is an import path
        run in the worker. Role, MemorySize and Publish are accepted and ignored."""
        _reject_unknown(
            fields,
            {
                "Timeout",
                "DurableConfig",
                "Environment",
                "Description",
                "MaximumRetryAttempts",
                "InvocationRetryPolicy",
                "Runtime",
                "Role",
                "Code",
                "MemorySize",
                "Publish",
            },
        )
        known = {k: v for k, v in fields.items() if k not in {"Role", "MemorySize", "Publish"}}
        return registry.create_function(FunctionName, {"Handler": Handler, **known})

    def update_function_code(
        self,
        *,
        FunctionName: str,
        ZipFile: bytes | None = None,
        Publish: bool | None = None,
        RevisionId: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Replace a function's code with a new zip; its next runtime process starts from it."""
        _reject_unknown(fields, {"DryRun", "Architectures"})
        if ZipFile is None:
            raise InvalidParameterValueException("ZipFile is required: S3 locations and images are not supported.")
        changes: dict[str, Any] = {"Code": {"ZipFile": ZipFile}}
        if RevisionId is not None:
            changes["RevisionId"] = RevisionId
        return registry.update_function(_require_str(FunctionName, "FunctionName"), changes)

    def update_function_configuration(self, *, FunctionName: str, **fields: Any) -> dict[str, Any]:
        """Change a function's configuration; omitted fields keep their value."""
        _reject_unknown(
            fields,
            {
                "Handler",
                "Timeout",
                "DurableConfig",
                "Environment",
                "Description",
                "MaximumRetryAttempts",
                "InvocationRetryPolicy",
                "RevisionId",
                "Runtime",
                "Role",
                "MemorySize",
            },
        )
        known = {k: v for k, v in fields.items() if k not in {"Role", "MemorySize"}}
        return registry.update_function(FunctionName, known)

    def get_function(self, *, FunctionName: str, Qualifier: str | None = None) -> dict[str, Any]:
        """Return ``{"Configuration": …, "Code": …}`` for one function."""
        _optional_text(Qualifier, "Qualifier")
        row = registry.get_function_row(_require_str(FunctionName, "FunctionName"))
        return {
            "Configuration": registry.configuration(row),
            "Code": {"RepositoryType": "DurableLab" if row.get("code_sha256") else "Local", "Location": row["handler"]},
        }

    def list_functions(self, *, Marker: str | None = None, MaxItems: int | None = None, **_: Any) -> dict[str, Any]:
        """Return registered functions by name, 50 a page unless ``MaxItems`` says otherwise."""
        limit = _max_items(MaxItems, 50, 10000)
        after = _name_marker(Marker) if _given(Marker) else ""
        rows = registry.list_function_rows(after, limit + 1)
        response: dict[str, Any] = {"Functions": [registry.configuration(r) for r in rows[:limit]]}
        if len(rows) > limit:
            response["NextMarker"] = _encode_marker(rows[limit - 1]["name"])
        return response

    # --- invoke -------------------------------------------------------------------------------

    def invoke(
        self,
        *,
        FunctionName: str,
        InvocationType: str = "RequestResponse",
        Payload: Any = None,
        DurableExecutionName: str | None = None,
        Qualifier: str | None = None,
        LogType: str | None = None,
        ClientContext: str | None = None,
        TimeScale: float | None = None,
    ) -> dict[str, Any]:
        """Start (or re-attach to) a durable execution, or call a plain function.

        ``Event`` returns 202 at once; ``RequestResponse`` waits until the execution is terminal.
        ``TimeScale`` (Durable Lab only) speeds up waits, retries and timeouts for demos.
        """
        if not isinstance(InvocationType, str) or InvocationType not in {"Event", "RequestResponse", "DryRun"}:
            raise _invalid(f"InvocationType must be Event, RequestResponse or DryRun, got {InvocationType!r}.")
        _execution_name(DurableExecutionName)
        for field, value in (("Qualifier", Qualifier), ("LogType", LogType), ("ClientContext", ClientContext)):
            _optional_text(value, field)
        time_scale = _time_scale(TimeScale)
        limit = ASYNC_PAYLOAD_LIMIT if InvocationType == "Event" else SYNC_PAYLOAD_LIMIT
        payload = _payload_text(Payload, limit)
        fn = registry.get_function_row(_require_str(FunctionName, "FunctionName"))
        if InvocationType == "DryRun":
            return {"StatusCode": 204, "Payload": io.BytesIO(b"")}
        if fn["durable_config"] is None:
            return _invoke_plain(fn, InvocationType, payload, time_scale)
        if (
            InvocationType == "RequestResponse"
            and fn["durable_config"]["ExecutionTimeout"] > MAX_SYNC_EXECUTION_TIMEOUT
        ):
            raise _invalid(
                "You cannot synchronously invoke a durable function with an executionTimeout greater than 15 minutes."
            )
        request = StartRequest(fn, DurableExecutionName, payload, InvocationType, time_scale)
        execution, _created = start_execution(request)
        if InvocationType == "Event":
            return {"StatusCode": 202, "DurableExecutionArn": execution["arn"], "Payload": io.BytesIO(b"")}
        deadline = fn["durable_config"]["ExecutionTimeout"] * time_scale + 30
        final = wait_for_execution(execution["arn"], timeout=deadline)
        return _sync_response(final)

    # --- executions ---------------------------------------------------------------------------

    def get_durable_execution(self, *, DurableExecutionArn: str) -> dict[str, Any]:
        """Return one execution's status, input, result or error and timestamps."""
        return execution_description(_execution(_validate_arn(DurableExecutionArn)))

    def get_durable_execution_history(
        self,
        *,
        DurableExecutionArn: str,
        IncludeExecutionData: bool = False,
        MaxItems: int | None = None,
        Marker: str | None = None,
        ReverseOrder: bool = False,
    ) -> dict[str, Any]:
        """Return history events in EventId order (or reversed), paged by ``Marker``."""
        execution = _execution(_validate_arn(DurableExecutionArn))
        limit = _max_items(MaxItems, 1000)
        start = _int_marker(Marker) if _given(Marker) else (execution.event_seq + 1 if ReverseOrder else 0)
        with db.transaction() as conn:
            rows = store.read_events(conn, execution.id, after=start, limit=limit + 1, reverse=bool(ReverseOrder))
        events = [history_event(row, bool(IncludeExecutionData)) for row in rows[:limit]]
        response: dict[str, Any] = {"Events": events}
        if len(rows) > limit:
            response["NextMarker"] = _encode_marker(rows[limit - 1]["event_id"])
        return response

    def get_durable_execution_state(
        self, *, DurableExecutionArn: str, CheckpointToken: str, Marker: str | None = None, MaxItems: int | None = None
    ) -> dict[str, Any]:
        """Return the execution's operations, as the SDK reads them (needs the current token)."""
        arn = _validate_arn(DurableExecutionArn)
        token = _require_str(CheckpointToken, "CheckpointToken")
        limit = _max_items(MaxItems, 1000)
        start = _int_marker(Marker) if _given(Marker) else 0
        try:
            ops = get_state(arn, token)
        except Exception as exc:
            if type(exc).__name__ == "InvalidCheckpointTokenError":
                raise _invalid("Invalid checkpoint token") from exc
            raise
        page = ops[start : start + limit]
        response: dict[str, Any] = {"Operations": [operation_view(op) for op in page]}
        if start + limit < len(ops):
            response["NextMarker"] = _encode_marker(start + limit)
        return response

    def checkpoint_durable_execution(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Updates: list[Mapping[str, Any]] | None = None,
        ClientToken: str | None = None,
    ) -> dict[str, Any]:
        """Apply one batch of operation updates from a handler running outside the worker.

        The same checkpoint duty the worker's SDK client calls; without the worker's cache, so
        the execution is read first. No ``CheckpointToken`` in the answer tells the SDK to stop.
        """
        arn = _validate_arn(DurableExecutionArn)
        token = _require_str(CheckpointToken, "CheckpointToken")
        _optional_text(ClientToken, "ClientToken")
        try:
            new_token, ops = checkpoint(arn, token, _updates(Updates))
        except InvalidCheckpointTokenError as exc:
            # The SDK retries (a fresh invocation) on exactly this message; other 4xx fail the execution.
            raise _invalid("Invalid checkpoint token") from exc
        except InvalidCheckpointError as exc:
            raise _invalid(str(exc)) from exc
        response: dict[str, Any] = {"NewExecutionState": {"Operations": [operation_view(op) for op in ops]}}
        if new_token is not None:
            response["CheckpointToken"] = new_token
        return response

    def list_durable_executions_by_function(
        self,
        *,
        FunctionName: str,
        Qualifier: str | None = None,
        DurableExecutionName: str | None = None,
        Statuses: list[str] | None = None,
        StartedAfter: datetime | None = None,
        StartedBefore: datetime | None = None,
        ReverseOrder: bool = False,
        Marker: str | None = None,
        MaxItems: int | None = None,
    ) -> dict[str, Any]:
        """List a function's executions, newest first, with filters and paging."""
        _optional_text(Qualifier, "Qualifier")
        _execution_name(DurableExecutionName)
        limit = _max_items(MaxItems, 50)
        filters = _execution_filters(DurableExecutionName, Statuses, StartedAfter, StartedBefore)
        fn = registry.get_function_row(_require_str(FunctionName, "FunctionName"))
        params = _listing_params(fn["name"], *filters)
        params["m_started"], params["m_id"] = _position_marker(Marker) if _given(Marker) else (None, None)
        with db.transaction() as conn:
            rows = store.list_function_executions(conn, params, oldest_first=bool(ReverseOrder), limit=limit + 1)
        response: dict[str, Any] = {"DurableExecutions": [execution_summary(r) for r in rows[:limit]]}
        if len(rows) > limit:
            last = rows[limit - 1]
            response["NextMarker"] = _encode_marker([last.started_at.isoformat(), last.id])
        return response

    def stop_durable_execution(
        self, *, DurableExecutionArn: str, Error: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Stop a running execution; its running invocation gets no token at its next checkpoint."""
        stopped_at = stop_execution(_validate_arn(DurableExecutionArn), _validate_error(Error))
        return {"StopTimestamp": stopped_at}

    def pause_durable_execution(
        self,
        *,
        DurableExecutionArn: str,
        ClientToken: str | None = None,
        Reason: str | None = None,
        ExecutionTimeoutPaused: bool | None = None,
    ) -> dict[str, Any]:
        """Pause a running execution: no invocation until it is resumed (AWS answers 202, no body).

        With an invocation at work the status is PAUSING until its next checkpoint, which is
        kept but answered without a token; then PAUSED. Waits and callbacks go on completing.
        ``ExecutionTimeoutPaused`` (default true) stops the execution timeout's clock meanwhile.
        """
        arn = _validate_arn(DurableExecutionArn)
        if ExecutionTimeoutPaused is not None and not isinstance(ExecutionTimeoutPaused, bool):
            raise _invalid("ExecutionTimeoutPaused must be a boolean.")
        pause_execution(
            arn,
            reason=_reason(Reason),
            timeout_paused=ExecutionTimeoutPaused is not False,
            client_token=_client_token(ClientToken),
        )
        return {}

    def resume_durable_execution(
        self, *, DurableExecutionArn: str, ClientToken: str | None = None, Reason: str | None = None
    ) -> dict[str, Any]:
        """Resume a paused execution; it is invoked if the pause interrupted an invocation or
        something completed meanwhile (AWS answers 202, no body)."""
        arn = _validate_arn(DurableExecutionArn)
        resume_execution(arn, reason=_reason(Reason), client_token=_client_token(ClientToken))
        return {}

    def delete_durable_execution(self, *, DurableExecutionArn: str) -> dict[str, Any]:
        """Delete a SUCCEEDED, FAILED, STOPPED or TIMED_OUT execution and all its data (AWS
        answers 202); a running or paused one is refused with ResourceConflictException."""
        return {"DeletionRequestTimestamp": delete_execution(_validate_arn(DurableExecutionArn))}

    # --- callbacks ----------------------------------------------------------------------------

    def send_durable_execution_callback_success(self, *, CallbackId: str, Result: Any = None) -> dict[str, Any]:
        """Complete a pending callback with a result (bytes or str, at most 256 KiB)."""
        callback_id = _validate_callback_id(CallbackId)
        result = _callback_result(Result)
        complete_callback(callback_id, result=result, success=True)
        return {}

    def send_durable_execution_callback_failure(
        self, *, CallbackId: str, Error: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Fail a pending callback with an error object."""
        callback_id = _validate_callback_id(CallbackId)
        complete_callback(callback_id, error=_validate_error(Error) or {}, success=False)
        return {}

    def send_durable_execution_callback_heartbeat(self, *, CallbackId: str) -> dict[str, Any]:
        """Tell a pending callback its worker is alive (re-arms its heartbeat timeout)."""
        heartbeat_callback(_validate_callback_id(CallbackId))
        return {}

    # --- Durable Lab's own operations (no AWS counterpart; same conventions) ------------------

    def release_durable_execution_quarantine(self, *, DurableExecutionArn: str) -> dict[str, Any]:
        """Let the background loops take a quarantined execution again; nothing else changes.

        Return the quarantine it had (``QuarantinedAt``, ``Quarantine``). An execution that is not
        quarantined is refused with ``InvalidParameterValueException``.
        """
        return loops.release_quarantine(_validate_arn(DurableExecutionArn))

    def redrive_async_invocation(self, *, InvocationId: int) -> dict[str, Any]:
        """Send a dead-lettered ``Event`` invocation to its function again, as a new invocation.

        Return the new invocation's row. Redriving the same one twice returns the first redrive,
        so a double click sends the event once; only dead-lettered invocations can be redriven.
        """
        from engine import async_invoke  # imported late: async_invoke loads the handler machinery

        return async_invoke.redrive(_invocation_id(InvocationId))


def _updates(updates: Any) -> list[dict[str, Any]]:
    """The batch as the checkpoint duty takes it: a list of update objects whose text PostgreSQL can store.

    What each update means (ids, types, actions, payload sizes) is the duty's to judge.
    """
    if updates is None:
        return []
    if not isinstance(updates, list | tuple) or not all(isinstance(u, Mapping) for u in updates):
        raise _invalid("Updates must be a list of operation update objects.")
    try:
        text = validation.check_json_text(json.dumps(list(updates)), "Updates", max_bytes=SYNC_PAYLOAD_LIMIT)
        batch: list[dict[str, Any]] = json.loads(text)  # a list of objects, checked above
        _check_storable_strings(batch, "Updates")
    except (TypeError, ValueError, RecursionError) as exc:  # validation.InvalidInput is a ValueError
        raise _invalid(f"Updates are not storable JSON: {exc}") from exc
    return batch


def _check_storable_strings(value: Any, field: str) -> None:
    """Refuse a NUL or lone surrogate anywhere in a JSON document (JSON escapes hide them from a text check)."""
    if isinstance(value, str):
        validation.check_storable(value, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            validation.check_storable(key, field)
            _check_storable_strings(item, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable_strings(item, f"{field}[{index}]")


def _invocation_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise _invalid("InvocationId must be a positive integer.")
    invocation_id: int = value
    return invocation_id


def _reject_unknown(fields: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise _invalid(f"Unknown parameter(s): {', '.join(sorted(unknown))}.")


def _time_scale(value: Any) -> float:
    if value is None:
        return 1.0
    try:
        return float(validation.check_number(value, "TimeScale", low=0.0001, high=1))
    except validation.InvalidInput as exc:
        raise _invalid(f"{exc} (1 = real time)") from exc


def _reason(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _invalid("Reason must be a string.")
    return None if value is None else _text(value, "Reason", REASON_LIMIT)


def _client_token(value: Any) -> str | None:
    if value is not None and not (isinstance(value, str) and CLIENT_TOKEN_RE.fullmatch(value)):
        raise _invalid("ClientToken must be 1-64 printable ASCII characters without spaces.")
    return value


def _execution_name(name: Any) -> str | None:
    if name is not None and not (isinstance(name, str) and EXECUTION_NAME_RE.fullmatch(name)):
        raise _invalid(f"DurableExecutionName must be 1-64 letters, digits, hyphens or underscores, got {name!r}.")
    return name


def _callback_result(result: Any) -> str | None:
    if result is None:
        return None
    if hasattr(result, "read"):
        result = result.read()
    if isinstance(result, str):
        result = result.encode(errors="surrogatepass")  # a lone surrogate is refused below, by name
    if not isinstance(result, bytes | bytearray):
        raise _invalid("Result must be bytes or a string.")
    if len(result) > CALLBACK_RESULT_LIMIT:
        raise RequestTooLargeException(f"Callback Result must be at most 256 KiB (got {len(result)} bytes).")
    try:
        text = bytes(result).decode()
    except UnicodeDecodeError as exc:
        raise _invalid("Result must be UTF-8 text (no lone surrogates).") from exc
    return _text(text, "Result", CALLBACK_RESULT_LIMIT)


def _execution(arn: str) -> Execution:
    with db.transaction() as conn:
        row = store.execution_at(conn, arn)
    if row is None:
        raise ResourceNotFoundException(f"Durable execution not found: {arn}")
    return row


ExecutionFilters = tuple[str | None, list[str] | None, datetime | None, datetime | None]


def _execution_filters(name: Any, statuses: Any, after: Any, before: Any) -> ExecutionFilters:
    """Return the listing's filters, checked before any SQL sees them."""
    if statuses is not None:
        if not isinstance(statuses, list | tuple) or not all(isinstance(s, str) for s in statuses):
            raise _invalid(f"Statuses must be a list of strings among {sorted(STATUSES)}.")
        bad = set(statuses) - STATUSES
        if bad:
            raise _invalid(f"Statuses must be among {sorted(STATUSES)}; got {sorted(bad)}.")
    return name, list(statuses) if statuses else None, _moment(after, "StartedAfter"), _moment(before, "StartedBefore")


def _moment(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return validation.check_aware_datetime(value, field)
    except validation.InvalidInput as exc:
        raise _invalid(str(exc)) from exc


def _listing_params(
    function_name: str, name: str | None, statuses: list[str] | None, after: datetime | None, before: datetime | None
) -> dict[str, Any]:
    """The listing's filters as parameters: None for a filter not given (the query skips it)."""
    return {"function": function_name, "name": name, "statuses": statuses, "after": after, "before": before}


def wait_for_execution(arn: str, timeout: float) -> Execution:
    """Block until the execution is terminal (or ``timeout`` seconds pass); return its row."""
    give_up = time.monotonic() + timeout
    delay = 0.005
    while True:
        row = _execution(arn)
        if row.status in EXECUTION_ENDED or time.monotonic() >= give_up:
            return row
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def _sync_response(execution: Execution) -> dict[str, Any]:
    response: dict[str, Any] = {
        "StatusCode": 200,
        "ExecutedVersion": "$LATEST",
        "DurableExecutionArn": execution.arn,
    }
    if execution.status == ExecutionStatus.SUCCEEDED:
        response["Payload"] = io.BytesIO((execution.result or "null").encode())
    else:
        response["FunctionError"] = "Unhandled"
        error = execution.error or {"ErrorMessage": f"Execution {execution.status}"}
        body = {"errorMessage": error.get("ErrorMessage", ""), "errorType": error.get("ErrorType", execution.status)}
        response["Payload"] = io.BytesIO(json.dumps(body).encode())
    return response


def _invoke_plain(
    fn: dict[str, Any], invocation_type: str, payload: str | None, time_scale: float = 1.0
) -> dict[str, Any]:
    from engine import async_invoke

    if invocation_type == "Event":
        # Queued, then retried and dead-lettered as Lambda does with asynchronous events.
        row = async_invoke.enqueue(fn, payload, time_scale)
        return {"StatusCode": 202, "Payload": io.BytesIO(b""), "ResponseMetadata": {"RequestId": row["request_id"]}}
    result, error = async_invoke.call_sync(fn, payload)
    if error is not None:
        body = {"errorMessage": error["ErrorMessage"], "errorType": error["ErrorType"]}
        return {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "ExecutedVersion": "$LATEST",
            "Payload": io.BytesIO(json.dumps(body).encode()),
        }
    return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": io.BytesIO((result or "null").encode())}


# --- response shapes --------------------------------------------------------------------------


def execution_summary(row: Execution) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "DurableExecutionArn": row.arn,
        "DurableExecutionName": row.name,
        "FunctionArn": function_arn(row.function_name),
        "Status": row.reported_status,
        "StartTimestamp": row.started_at,
    }
    if row.ended_at is not None:
        summary["EndTimestamp"] = row.ended_at
    return summary


def execution_description(row: Execution) -> dict[str, Any]:
    description = {**execution_summary(row), "Version": "$LATEST"}
    if row.input is not None:
        description["InputPayload"] = row.input
    if row.status == ExecutionStatus.SUCCEEDED and row.result is not None:
        description["Result"] = row.result
    if row.error:
        description["Error"] = dict(row.error)
    return description


TIMESTAMP_KEYS = (
    "ScheduledEndTimestamp",
    "StartTimestamp",
    "EndTimestamp",
    "PauseRequestTimestamp",
    "ResumeRequestTimestamp",
)


def history_event(row: Mapping[str, Any], include_data: bool) -> dict[str, Any]:
    """Return one stored event in ``GetDurableExecutionHistory`` shape."""
    event: dict[str, Any] = json.loads(json.dumps(row["doc"]))
    event["EventId"] = row["event_id"]
    event["EventTimestamp"] = row["timestamp"]
    details = event.get(f"{event['EventType']}Details", {})
    for key in TIMESTAMP_KEYS:
        if isinstance(details.get(key), str):
            details[key] = datetime.fromisoformat(details[key])
    if not include_data:
        for value in details.values():
            if isinstance(value, dict) and "Payload" in value and "Truncated" in value:
                value.pop("Payload")
                value["Truncated"] = True
    return event


def operation_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return an operation document with datetimes, as boto3 shows ``Operation``."""
    op: dict[str, Any] = json.loads(json.dumps(doc))
    for key in ("StartTimestamp", "EndTimestamp"):
        if op.get(key) is not None:
            op[key] = ms_to_datetime(op[key])
    for details, key in (("StepDetails", "NextAttemptTimestamp"), ("WaitDetails", "ScheduledEndTimestamp")):
        if op.get(details, {}).get(key) is not None:
            op[details][key] = ms_to_datetime(op[details][key])
    return op


def client() -> LambdaClient:
    """Return the engine's Lambda client (boto3 ``lambda`` names, shapes and error codes)."""
    return LambdaClient()
