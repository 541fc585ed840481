"""Durable functions: Lambda's configuration, validated, stored, and resolved to handlers."""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from engine import db, handler_paths, runtimes, validation
from engine.duties.tokens import function_arn, function_name_of
from engine.duties.unit import utcnow
from engine.errors import InvalidParameterValueException, ResourceConflictException, ResourceNotFoundException
from engine.runtimes import code as function_code
from engine.store import store

# Patterns are used with fullmatch: "$" would let a trailing newline through.
NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
HANDLER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
ENV_KEY_RE = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")
ENVIRONMENT_LIMIT = 4096  # bytes of all names and values together, as AWS Lambda allows
DEFAULT_TIMEOUT = 3
DEFAULT_EXECUTION_TIMEOUT = 86400
DEFAULT_RETENTION_DAYS = 14
MAX_EXECUTION_TIMEOUT = 31_622_400
RESERVED_ENV = {"AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_TIMEOUT", "_HANDLER"}
# (bounds, integer only) of each InvocationRetryPolicy field: finite and small enough that
# InitialDelaySeconds * BackoffRate ** n stays a sane delay (the cap is MaxDelaySeconds).
INVOCATION_RETRY_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "ImmediateRetries": (0, 10, True),
    "InitialDelaySeconds": (0, 3600, False),
    "BackoffRate": (1, 10, False),
    "MaxDelaySeconds": (0, 86400, False),
    "MaximumAttempts": (0, 1000, True),
}


def _invalid(message: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(message)


def validate_function_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise _invalid(f"FunctionName {name!r} is invalid: use 1-64 letters, digits, hyphens or underscores.")
    return name


def _validate_handler(handler: Any) -> str:
    if not isinstance(handler, str) or len(handler) > 128 or not HANDLER_RE.fullmatch(handler):
        raise _invalid(f"Handler {handler!r} is invalid: expected 'module.attribute', e.g. 'orders.handler'.")
    try:
        # A module found nowhere is accepted, as Lambda accepts it before the code exists: the
        # worker checks again when it loads the handler, and reports what it finds.
        handler_paths.check(handler)
    except handler_paths.HandlerOutsideCode as exc:
        raise _invalid(str(exc)) from exc
    return handler


def _validate_int(value: Any, field: str, low: int, high: int) -> int:
    return int(_validate_number(value, field, low, high, integer=True))


def _validate_number(value: Any, field: str, low: float, high: float, *, integer: bool = False) -> int | float:
    try:
        return validation.check_number(value, field, low=low, high=high, integer=integer)
    except validation.InvalidInput as exc:
        raise _invalid(str(exc)) from exc


def _validate_durable_config(config: Any) -> dict[str, int] | None:
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise _invalid("DurableConfig must be an object with ExecutionTimeout and RetentionPeriodInDays.")
    unknown = set(config) - {"ExecutionTimeout", "RetentionPeriodInDays"}
    if unknown:
        raise _invalid(f"DurableConfig has unknown keys: {sorted(unknown)}.")
    timeout = config.get("ExecutionTimeout", DEFAULT_EXECUTION_TIMEOUT)
    retention = config.get("RetentionPeriodInDays", DEFAULT_RETENTION_DAYS)
    return {
        "ExecutionTimeout": _validate_int(timeout, "DurableConfig.ExecutionTimeout", 1, MAX_EXECUTION_TIMEOUT),
        "RetentionPeriodInDays": _validate_int(retention, "DurableConfig.RetentionPeriodInDays", 1, 90),
    }


def _validate_environment(environment: Any) -> dict[str, str]:
    if environment is None:
        return {}
    variables = environment.get("Variables", {}) if isinstance(environment, Mapping) else None
    if not isinstance(variables, Mapping):
        raise _invalid("Environment must be an object of the form {'Variables': {'KEY': 'value'}}.")
    for key, value in variables.items():
        if not isinstance(key, str) or not ENV_KEY_RE.fullmatch(key) or key in RESERVED_ENV:
            raise _invalid(f"Environment variable name {key!r} is invalid or reserved.")
        _validate_text(value, f"Environment variable {key}", ENVIRONMENT_LIMIT)
    size = sum(len(key.encode()) + len(value.encode()) for key, value in variables.items())
    if size > ENVIRONMENT_LIMIT:
        raise _invalid(f"Environment variables take {size} bytes; at most {ENVIRONMENT_LIMIT} are allowed.")
    return dict(variables)


def _validate_text(value: Any, field: str, max_length: int) -> str:
    try:
        return validation.check_text(value, field, max_length=max_length)
    except validation.InvalidInput as exc:
        raise _invalid(str(exc)) from exc


def _validate_invocation_retry(policy: Any) -> dict[str, Any]:
    if policy is None:
        return {}
    allowed = set(INVOCATION_RETRY_BOUNDS)
    if not isinstance(policy, Mapping) or set(policy) - allowed:
        raise _invalid(f"InvocationRetryPolicy accepts only {sorted(allowed)}.")
    checked = {}
    for key, value in policy.items():
        low, high, integer = INVOCATION_RETRY_BOUNDS[key]
        checked[key] = _validate_number(value, f"InvocationRetryPolicy.{key}", low, high, integer=integer)
    return checked


def _validate_runtime(runtime: Any) -> str | None:
    if runtime is None:
        return None
    if not isinstance(runtime, str) or runtime not in runtimes.RUNTIMES:
        names = ", ".join(runtimes.runtime_names())
        raise _invalid(f"Value {str(runtime)[:64]!r} at 'runtime' failed to satisfy constraint: use one of {names}.")
    return runtime


def _build(fields: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(current or {})
    if "Handler" in fields:
        merged["handler"] = _validate_handler(fields["Handler"])
    if "Description" in fields:
        merged["description"] = _validate_text(fields["Description"], "Description", 256)
    if "Timeout" in fields:
        merged["timeout"] = _validate_int(fields["Timeout"], "Timeout", 1, 900)
    if "DurableConfig" in fields:
        merged["durable_config"] = _validate_durable_config(fields["DurableConfig"])
    if "Environment" in fields:
        merged["environment"] = _validate_environment(fields["Environment"])
    if "MaximumRetryAttempts" in fields:
        merged["maximum_retry_attempts"] = _validate_int(fields["MaximumRetryAttempts"], "MaximumRetryAttempts", 0, 2)
    if "InvocationRetryPolicy" in fields:
        merged["invocation_retry"] = _validate_invocation_retry(fields["InvocationRetryPolicy"])
    if "Runtime" in fields:
        merged["runtime"] = _validate_runtime(fields["Runtime"])
    checked = function_code.checked_code(fields["Code"]) if "Code" in fields else None
    if checked is not None:
        merged["code_sha256"], merged["code_zip"] = checked
        merged["code_size"] = len(checked[1])
    merged.setdefault("runtime", None)
    merged.setdefault("code_sha256", None)
    merged.setdefault("code_size", None)
    if merged["code_sha256"] and not merged["runtime"]:
        raise _invalid("Runtime is required for a function with code (Code.ZipFile).")
    merged.setdefault("description", "")
    merged.setdefault("timeout", DEFAULT_TIMEOUT)
    merged.setdefault("durable_config", None)
    merged.setdefault("environment", {})
    merged.setdefault("maximum_retry_attempts", 2)
    merged.setdefault("invocation_retry", {})
    merged["revision_id"] = str(uuid.uuid4())
    merged["now"] = utcnow()
    return merged


def create_function(name: str, fields: Mapping[str, Any], *, replace: bool = False) -> dict[str, Any]:
    """Register a function; with ``replace`` an existing one is overwritten (used for demos)."""
    validate_function_name(name)
    if "Handler" not in fields:
        raise _invalid("Handler is required.")
    built = _build(fields, None)  # a bad field is the error to report, whether or not the name is taken
    with db.transaction() as conn:
        if not replace and store.get_function(conn, name) is not None:
            raise ResourceConflictException(f"Function already exist: {name}")
        _store_code(conn, built)
        row = store.upsert_function(conn, {"name": name, **built})
    return configuration(row)


def update_function(name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    validate_function_name(name)
    with db.transaction() as conn:
        current = store.get_function(conn, name)
        if current is None:
            raise ResourceNotFoundException(f"Function not found: {function_arn(name)}")
        if "RevisionId" in fields and _validate_text(fields["RevisionId"], "RevisionId", 64) != current["revision_id"]:
            raise ResourceConflictException("The RevisionId provided does not match the latest RevisionId.")
        built = _build(fields, current)
        _store_code(conn, built)
        row = store.upsert_function(conn, {**built, "name": name})
    return configuration(row)


def _store_code(conn: Any, built: dict[str, Any]) -> None:
    """A new zip is stored with the function's row, in its transaction: a refused change stores nothing."""
    data = built.pop("code_zip", None)
    if data is not None:
        function_code.save_code(conn, built["code_sha256"], data)


def get_function_row(name_or_arn: str) -> dict[str, Any]:
    name = function_name_of(name_or_arn)
    validate_function_name(name)
    with db.connection() as conn:  # one read: no transaction block (two round trips fewer per start)
        row = store.get_function(conn, name)
    if row is None:
        raise ResourceNotFoundException(f"Function not found: {function_arn(name)}")
    return row


def list_function_rows(after: str, limit: int) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return store.list_functions(conn, after=after, limit=limit)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def configuration(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return the function in Lambda's ``FunctionConfiguration`` shape."""
    config: dict[str, Any] = {
        "FunctionName": row["name"],
        "FunctionArn": function_arn(row["name"]),
        "Runtime": row.get("runtime") or "python3.11",
        "Handler": row["handler"],
        "Description": row["description"],
        "Timeout": row["timeout"],
        "MemorySize": 128,
        "LastModified": _iso(row["last_modified"]),
        "Version": "$LATEST",
        "RevisionId": row["revision_id"],
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Environment": {"Variables": dict(row["environment"] or {})},
    }
    if row.get("code_sha256"):
        config["CodeSha256"] = function_code.code_sha256_base64(row["code_sha256"])
        config["CodeSize"] = row["code_size"]
    if row["durable_config"] is not None:
        config["DurableConfig"] = dict(row["durable_config"])
    if row.get("invocation_retry"):
        config["InvocationRetryPolicy"] = dict(row["invocation_retry"])
    return config


def load_handler(handler: str) -> Callable[..., Any]:
    """Import ``module.attr`` from the function's code and return the callable.

    Raises ``handler_paths.HandlerOutsideCode`` for a module outside the allowed locations
    (checked before the import, and the imported module again after it), ImportError or
    AttributeError for a missing one.
    """
    module_name, _, attr = handler.rpartition(".")
    handler_paths.check(handler)
    module = importlib.import_module(module_name)
    handler_paths.check_imported(handler, module)
    target = getattr(module, attr)
    if not callable(target):
        raise TypeError(f"Handler {handler!r} is not callable")
    return target  # type: ignore[no-any-return]
