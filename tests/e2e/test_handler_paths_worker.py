"""Issue #17 point 3, in the real worker: a handler in a handler directory runs end to end, and a
stored handler that resolves outside the function's code (a row written before the rule) gets a
failed invocation that says so: the callable is never called, its module never imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine import db, registry
from engine.store import store
from tests.conftest import HANDLER_DIR, TEMP_DIR, Stack

DURABLE = {"Timeout": 10, "DurableConfig": {"ExecutionTimeout": 60, "RetentionPeriodInDays": 1}}
LEGIT = """
from aws_durable_execution_sdk_python import durable_execution


@durable_execution
def handler(event, context):
    total = context.step(lambda _: event["a"] + event["b"], name="add")
    return {"total": total}
"""


def _stored_without_checks(name: str, handler: str) -> None:
    """A function row as one written before handlers were checked."""
    built = registry._build({"Handler": "demos.hello.handler", **DURABLE}, None)
    with db.transaction() as conn:
        store.upsert_function(conn, {**built, "name": name, "handler": handler})


def _invoke(lam: Any, name: str, payload: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, InvocationType="RequestResponse", Payload=json.dumps(payload))
    return response, json.loads(response["Payload"].read())


def test_a_handler_in_a_handler_directory_runs_end_to_end(lam: Any, stack: Stack, unique: str) -> None:
    module = f"orders_{unique}"
    (HANDLER_DIR / f"{module}.py").write_text(LEGIT)
    lam.create_function(FunctionName=f"orders-{unique}", Handler=f"{module}.handler", **DURABLE)
    response, result = _invoke(lam, f"orders-{unique}", {"a": 2, "b": 3})
    assert "FunctionError" not in response, result
    assert result == {"total": 5}


def test_a_stored_handler_outside_the_code_fails_its_invocation_and_is_never_called(
    lam: Any, stack: Stack, unique: str
) -> None:
    name = f"os-system-{unique}"
    _stored_without_checks(name, "os.system")
    response, error = _invoke(lam, name, {"cmd": "true"})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"].startswith("Handler 'os.system' is outside the function's code: 'os' is not")
    assert str(HANDLER_DIR) in error["errorMessage"]
    arn = lam.list_durable_executions_by_function(FunctionName=name)["DurableExecutions"][0]["DurableExecutionArn"]
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "FAILED"


def test_a_symlink_out_of_the_handler_directory_is_not_even_imported(lam: Any, stack: Stack, unique: str) -> None:
    marker = TEMP_DIR / f"imported-{unique}"
    outside = TEMP_DIR / f"outside_{unique}.py"
    outside.write_text(f"open({str(marker)!r}, 'w').close()\n\ndef handler(event, context):\n    return {{}}\n")
    (HANDLER_DIR / f"escape_{unique}.py").symlink_to(outside)
    name = f"escape-{unique}"
    _stored_without_checks(name, f"escape_{unique}.handler")
    response, error = _invoke(lam, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert f"'escape_{unique}' is {Path(outside).resolve()}" in error["errorMessage"]
    assert not marker.exists()
