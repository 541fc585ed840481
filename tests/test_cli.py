"""``manage.py durable …`` run as a real subprocess against the test database and the real worker."""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine.contrib.django.management.commands.durable import Command as DurableCommand
from engine.runtimes.code import zip_directory
from tests.conftest import ROOT, wait_until

HELLO_EVENTS = [
    "ExecutionStarted",
    "StepStarted",
    "StepSucceeded",
    "WaitStarted",
    "InvocationCompleted",
    "WaitSucceeded",
    "StepStarted",
    "StepSucceeded",
    "InvocationCompleted",
    "ExecutionSucceeded",
]


def _command(*args: str) -> list[str]:
    return [sys.executable, "manage.py", "durable", *args]


def _env() -> dict[str, str]:
    # conftest has already pointed DATABASE_URL (and the broker settings) at this session's stack.
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def durable(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python manage.py durable <args>`` and return the finished process."""
    return subprocess.run(_command(*args), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


def ok(*args: str) -> Any:
    """Run a subcommand that must succeed and return its parsed JSON output (None when it prints nothing)."""
    done = durable(*args)
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    if not done.stdout.strip():
        return None
    assert done.stdout.startswith('{\n    "'), done.stdout  # the AWS CLI's JSON: indent 4
    return json.loads(done.stdout)


def _wait_terminal(lam: Any, arn: str) -> dict[str, Any]:
    """Poll in-process (a CLI start-up per poll is slow), then read the result through the CLI."""
    wait_until(
        lambda: lam.get_durable_execution(DurableExecutionArn=arn)["Status"] != "RUNNING",
        timeout=90,
        message=f"{arn} to finish",
    )
    return ok("get-durable-execution", "--durable-execution-arn", arn)


def _start_approval(lam: Any, unique: str, suffix: str) -> tuple[str, str]:
    started = ok(
        "invoke",
        "--function-name",
        "human-approval",
        "--invocation-type",
        "Event",
        "--payload",
        '{"amount": 7}',
        "--durable-execution-name",
        f"cli-{suffix}-{unique}",
    )
    arn = started["DurableExecutionArn"]

    def callback_id() -> str | None:
        events = lam.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
        return next(
            (e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"), None
        )

    return arn, wait_until(callback_id, timeout=60, message="CallbackStarted")


# --- help ---------------------------------------------------------------------------------------

SUBCOMMAND_OPTIONS = {
    "create-function": [
        "--function-name",
        "--handler",
        "--timeout",
        "--description",
        "--durable-config",
        "--environment",
        "--runtime",
        "--role",
        "--zip-file",
    ],
    "update-function-configuration": ["--function-name", "--handler", "--durable-config", "--environment"],
    "update-function-code": ["--function-name", "--zip-file", "--revision-id"],
    "get-function": ["--function-name"],
    "list-functions": ["--max-items", "--starting-token", "--page-size"],
    "invoke": [
        "--function-name",
        "--payload",
        "--invocation-type",
        "--durable-execution-name",
        "--cli-binary-format",
        "outfile",
    ],
    "get-durable-execution": ["--durable-execution-arn"],
    "get-durable-execution-history": [
        "--durable-execution-arn",
        "--include-execution-data",
        "--no-include-execution-data",
        "--max-items",
        "--reverse-order",
        "--starting-token",
        "--marker",
    ],
    "get-durable-execution-state": ["--durable-execution-arn", "--checkpoint-token", "--max-items"],
    "list-durable-executions-by-function": [
        "--function-name",
        "--statuses",
        "--durable-execution-name",
        "--started-after",
        "--started-before",
        "--reverse-order",
        "--max-items",
    ],
    "stop-durable-execution": ["--durable-execution-arn", "--error"],
    "pause-durable-execution": [
        "--durable-execution-arn",
        "--client-token",
        "--reason",
        "--execution-timeout-paused",
        "--no-execution-timeout-paused",
    ],
    "resume-durable-execution": ["--durable-execution-arn", "--client-token", "--reason"],
    "delete-durable-execution": ["--durable-execution-arn"],
    "send-durable-execution-callback-success": ["--callback-id", "--result"],
    "send-durable-execution-callback-failure": ["--callback-id", "--error"],
    "send-durable-execution-callback-heartbeat": ["--callback-id"],
    "release-quarantine": ["--durable-execution-arn"],
    "create-access-key": ["--user-name"],
    "list-access-keys": ["--user-name"],
    "delete-access-key": ["--access-key-id", "--user-name"],
}


def test_help_lists_every_subcommand_and_its_options():
    top = durable("--help")
    assert top.returncode == 0, top
    invoke = durable("invoke", "--help")
    assert invoke.returncode == 0, invoke
    for option in SUBCOMMAND_OPTIONS["invoke"]:
        assert option in invoke.stdout, option
    # Every other subcommand's help comes from the same parser; read it in-process to spare start-ups.
    parser = DurableCommand().create_parser("manage.py", "durable")
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(subparsers) == set(SUBCOMMAND_OPTIONS)
    for name, options in SUBCOMMAND_OPTIONS.items():
        assert name in top.stdout
        text = subparsers[name].format_help()
        for option in options:
            assert option in text, (name, option, text)


# --- functions and invoke -----------------------------------------------------------------------


def test_create_function_with_shorthand_then_update_get_and_invoke(stack, unique, tmp_path: Path):
    name = f"cli-{unique}"
    created = ok(
        "create-function",
        "--function-name",
        name,
        "--handler",
        "demos.hello.handler",
        "--timeout",
        "30",
        "--description",
        "from the CLI",
        "--durable-config",
        "ExecutionTimeout=60,RetentionPeriodInDays=1",
        "--environment",
        "Variables={GREETING=hi,MODE='a,b'}",
        "--runtime",
        "python3.13",
        "--role",
        "arn:aws:iam::123456789012:role/x",
    )
    assert created["FunctionName"] == name
    assert created["DurableConfig"] == {"ExecutionTimeout": 60, "RetentionPeriodInDays": 1}
    assert created["Environment"] == {"Variables": {"GREETING": "hi", "MODE": "a,b"}}
    assert (created["Timeout"], created["Description"]) == (30, "from the CLI")

    updated = ok(
        "update-function-configuration",
        "--function-name",
        name,
        "--durable-config",
        '{"ExecutionTimeout": 120, "RetentionPeriodInDays": 2}',
        "--environment",
        '{"Variables": {"GREETING": "hello"}}',
    )
    assert updated["DurableConfig"] == {"ExecutionTimeout": 120, "RetentionPeriodInDays": 2}
    assert updated["Environment"]["Variables"] == {"GREETING": "hello"}
    assert updated["Timeout"] == 30  # omitted options keep their value
    fetched = ok("get-function", "--function-name", name)
    assert fetched["Configuration"]["RevisionId"] == updated["RevisionId"]

    outfile = tmp_path / "out.json"
    response = ok(
        "invoke",
        "--function-name",
        name,
        "--cli-binary-format",
        "raw-in-base64-out",
        "--payload",
        json.dumps({"name": "file", "wait_seconds": 1}),
        str(outfile),
    )
    assert response["StatusCode"] == 200 and "Payload" not in response, response
    assert json.loads(outfile.read_text()) == {"greeting": "Hello, file!", "loud": "HELLO, FILE!"}


def test_a_local_folder_is_the_functions_code_and_an_edit_is_a_new_version(stack, unique, tmp_path: Path):
    """``--code-dir`` zips the folder (its sub-folders, not its caches) as the function's code."""
    folder = tmp_path / "orders"
    (folder / "lib").mkdir(parents=True)
    (folder / "__pycache__").mkdir()
    (folder / "app.py").write_text("from lib.answer import ANSWER\n\ndef handler(event, context):\n    return ANSWER\n")
    (folder / "lib" / "answer.py").write_text("ANSWER = 'first'\n")
    (folder / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"not code")
    name = f"cli-dir-{unique}"
    args = ["--function-name", name, "--runtime", "python3.11", "--handler", "app.handler", "--code-dir", str(folder)]
    created = ok("create-function", *args)
    with zipfile.ZipFile(io.BytesIO(zip_directory(folder))) as archive:
        assert archive.namelist() == ["app.py", "lib/answer.py"]
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_directory(folder)).digest()).decode()
    assert ok("invoke", "--function-name", name, "--payload", "{}", str(tmp_path / "1.json"))["StatusCode"] == 200
    assert json.loads((tmp_path / "1.json").read_text()) == "first"

    assert (
        ok("update-function-code", "--function-name", name, "--code-dir", str(folder))["CodeSha256"]
        == created["CodeSha256"]
    )  # the same files: the same version
    (folder / "lib" / "answer.py").write_text("ANSWER = 'edited'\n")
    updated = ok("update-function-code", "--function-name", name, "--code-dir", str(folder))
    assert updated["CodeSha256"] != created["CodeSha256"]
    assert ok("invoke", "--function-name", name, "--payload", "{}", str(tmp_path / "2.json"))["StatusCode"] == 200
    assert json.loads((tmp_path / "2.json").read_text()) == "edited"


def test_invoke_request_response_prints_metadata_and_payload(stack, unique):
    response = ok(
        "invoke",
        "--function-name",
        "hello-steps",
        "--payload",
        '{"name":"x","wait_seconds":1}',
        "--durable-execution-name",
        f"cli-sync-{unique}",
    )
    assert list(response) == ["StatusCode", "ExecutedVersion", "DurableExecutionArn", "Payload"], response
    assert response["StatusCode"] == 200 and response["ExecutedVersion"] == "$LATEST"
    assert f"/durable-execution/cli-sync-{unique}/" in response["DurableExecutionArn"]
    assert json.loads(response["Payload"]) == {"greeting": "Hello, x!", "loud": "HELLO, X!"}


def test_event_invoke_then_get_execution_and_history_pages(lam, unique):
    started = ok(
        "invoke",
        "--function-name",
        "hello-steps",
        "--invocation-type",
        "Event",
        "--payload",
        '{"name":"ev","wait_seconds":1}',
        "--durable-execution-name",
        f"cli-ev-{unique}",
    )
    assert started["StatusCode"] == 202 and started["Payload"] == "", started
    arn = started["DurableExecutionArn"]

    execution = _wait_terminal(lam, arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"]) == {"greeting": "Hello, ev!", "loud": "HELLO, EV!"}
    assert json.loads(execution["InputPayload"]) == {"name": "ev", "wait_seconds": 1}
    assert datetime.fromisoformat(execution["EndTimestamp"]) >= datetime.fromisoformat(execution["StartTimestamp"])

    events = ok("get-durable-execution-history", "--durable-execution-arn", arn)
    assert [e["EventType"] for e in events["Events"]] == HELLO_EVENTS and "NextToken" not in events
    datetime.fromisoformat(events["Events"][0]["EventTimestamp"])
    succeeded = events["Events"][2]["StepSucceededDetails"]["Result"]
    assert succeeded.get("Truncated") is True and "Payload" not in succeeded
    with_data = ok("get-durable-execution-history", "--durable-execution-arn", arn, "--include-execution-data")
    assert json.loads(with_data["Events"][2]["StepSucceededDetails"]["Result"]["Payload"]) == "Hello, ev!"

    first = ok("get-durable-execution-history", "--durable-execution-arn", arn, "--max-items", "3")
    assert [e["EventType"] for e in first["Events"]] == HELLO_EVENTS[:3] and first["NextToken"]
    rest = ok(
        "get-durable-execution-history",
        "--durable-execution-arn",
        arn,
        "--starting-token",
        first["NextToken"],
        "--page-size",
        "2",
    )
    assert [e["EventType"] for e in rest["Events"]] == HELLO_EVENTS[3:] and "NextToken" not in rest
    newest = ok("get-durable-execution-history", "--durable-execution-arn", arn, "--reverse-order", "--max-items", "2")
    assert [e["EventType"] for e in newest["Events"]] == ["ExecutionSucceeded", "InvocationCompleted"]


def test_list_functions_and_executions_with_filters_and_paging(lam, unique):
    everything = ok("list-functions")["Functions"]
    names = [f["FunctionName"] for f in everything]
    assert {"hello-steps", "human-approval"} <= set(names) and "NextToken" not in ok("list-functions")
    first = ok("list-functions", "--max-items", "1")
    assert len(first["Functions"]) == 1 and first["NextToken"]
    rest = ok("list-functions", "--starting-token", first["NextToken"], "--page-size", "1")
    assert [f["FunctionName"] for f in first["Functions"] + rest["Functions"]] == names

    arns = [
        ok(
            "invoke",
            "--function-name",
            "hello-steps",
            "--invocation-type",
            "Event",
            "--payload",
            '{"wait_seconds": 1}',
            "--durable-execution-name",
            f"cli-ls{i}-{unique}",
        )["DurableExecutionArn"]
        for i in range(2)
    ]
    for arn in arns:
        _wait_terminal(lam, arn)
    mine = ok(
        "list-durable-executions-by-function",
        "--function-name",
        "hello-steps",
        "--durable-execution-name",
        f"cli-ls0-{unique}",
        "--statuses",
        "SUCCEEDED",
        "FAILED",
    )
    assert [e["DurableExecutionArn"] for e in mine["DurableExecutions"]] == arns[:1]
    assert mine["DurableExecutions"][0]["Status"] == "SUCCEEDED"
    assert ok(
        "list-durable-executions-by-function",
        "--function-name",
        "hello-steps",
        "--durable-execution-name",
        f"cli-ls0-{unique}",
        "--statuses",
        "RUNNING",
    ) == {"DurableExecutions": []}

    since = ok("get-durable-execution", "--durable-execution-arn", arns[0])["StartTimestamp"]
    newest = ok("list-durable-executions-by-function", "--function-name", "hello-steps", "--started-after", since)
    assert [e["DurableExecutionArn"] for e in newest["DurableExecutions"]] == arns[::-1]
    oldest_first = ok(
        "list-durable-executions-by-function",
        "--function-name",
        "hello-steps",
        "--started-after",
        since,
        "--reverse-order",
        "--max-items",
        "1",
    )
    assert [e["DurableExecutionArn"] for e in oldest_first["DurableExecutions"]] == arns[:1]
    assert oldest_first["NextToken"]
    assert ok(
        "list-durable-executions-by-function",
        "--function-name",
        "hello-steps",
        "--started-before",
        "2000-01-01T00:00:00Z",
    ) == {"DurableExecutions": []}


# --- callbacks and stop -------------------------------------------------------------------------


def test_callback_heartbeat_and_success_resume_human_approval(lam, unique):
    arn, callback_id = _start_approval(lam, unique, "ok")
    assert ok("send-durable-execution-callback-heartbeat", "--callback-id", callback_id) is None
    assert (
        ok("send-durable-execution-callback-success", "--callback-id", callback_id, "--result", '{"approved": true}')
        is None
    )  # the AWS CLI prints nothing for an empty response
    execution = _wait_terminal(lam, arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"]) == {"request": {"amount": 7}, "decision": '{"approved": true}'}

    again = durable("send-durable-execution-callback-success", "--callback-id", callback_id, "--result", "{}")
    assert again.returncode == 254, again
    assert (
        "An error occurred (InvalidParameterValueException) when calling the "
        "SendDurableExecutionCallbackSuccess operation: " in again.stderr
    )


def test_callback_failure_fails_the_execution(lam, unique):
    arn, callback_id = _start_approval(lam, unique, "no")
    assert (
        ok(
            "send-durable-execution-callback-failure",
            "--callback-id",
            callback_id,
            "--error",
            "ErrorMessage=rejected by manager,ErrorType=Rejected",
        )
        is None
    )
    execution = _wait_terminal(lam, arn)
    assert execution["Status"] == "FAILED", execution
    assert "rejected by manager" in json.dumps(execution["Error"])


def test_stop_durable_execution_with_json_error(lam, unique):
    arn, _ = _start_approval(lam, unique, "stop")
    stopped = ok(
        "stop-durable-execution",
        "--durable-execution-arn",
        arn,
        "--error",
        '{"ErrorMessage": "no longer needed", "ErrorType": "Cancelled"}',
    )
    datetime.fromisoformat(stopped["StopTimestamp"])
    execution = ok("get-durable-execution", "--durable-execution-arn", arn)
    assert execution["Status"] == "STOPPED"
    assert execution["Error"]["ErrorMessage"] == "no longer needed"


def test_pause_resume_stop_and_delete_an_execution(lam, unique):
    arn, _ = _start_approval(lam, unique, "pause")
    assert (
        ok("pause-durable-execution", "--durable-execution-arn", arn, "--reason", "audit", "--client-token", "t1")
        is None
    )
    # PAUSING if the invocation that started the callback had not ended yet; PAUSED once it has.
    wait_until(lambda: lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "PAUSED", message="PAUSED")
    assert ok("get-durable-execution", "--durable-execution-arn", arn)["Status"] == "PAUSED"
    listed = ok("list-durable-executions-by-function", "--function-name", "human-approval", "--statuses", "PAUSED")
    assert arn in [e["DurableExecutionArn"] for e in listed["DurableExecutions"]]
    again = durable("pause-durable-execution", "--durable-execution-arn", arn)
    assert again.returncode == 254
    assert "(ResourceConflictException) when calling the PauseDurableExecution operation" in again.stderr
    assert ok("resume-durable-execution", "--durable-execution-arn", arn, "--reason", "checked") is None
    history = ok("get-durable-execution-history", "--durable-execution-arn", arn, "--include-execution-data")
    resumed = next(e for e in history["Events"] if e["EventType"] == "ExecutionResumed")
    assert resumed["ExecutionResumedDetails"]["Reason"]["Payload"] == "checked"
    datetime.fromisoformat(resumed["ExecutionResumedDetails"]["ResumeRequestTimestamp"])
    refused = durable("delete-durable-execution", "--durable-execution-arn", arn)
    assert refused.returncode == 254
    assert "(ResourceConflictException) when calling the DeleteDurableExecution operation" in refused.stderr
    ok("pause-durable-execution", "--durable-execution-arn", arn, "--no-execution-timeout-paused")
    ok("stop-durable-execution", "--durable-execution-arn", arn)
    deleted = ok("delete-durable-execution", "--durable-execution-arn", arn)
    datetime.fromisoformat(deleted["DeletionRequestTimestamp"])
    gone = durable("get-durable-execution", "--durable-execution-arn", arn)
    assert gone.returncode == 254 and "ResourceNotFoundException" in gone.stderr


# --- errors -------------------------------------------------------------------------------------

UNKNOWN_ARN = "arn:aws:lambda:us-east-1:123456789012:function:hello-steps/durable-execution/nope/0000"

SERVICE_ERRORS = [
    (["get-function", "--function-name", "no-such-fn"], "ResourceNotFoundException", "GetFunction"),
    (["invoke", "--function-name", "no-such-fn", "--payload", "{}"], "ResourceNotFoundException", "Invoke"),
    (
        ["list-durable-executions-by-function", "--function-name", "no-such-fn"],
        "ResourceNotFoundException",
        "ListDurableExecutionsByFunction",
    ),
    (
        ["update-function-configuration", "--function-name", "no-such-fn", "--timeout", "5"],
        "ResourceNotFoundException",
        "UpdateFunctionConfiguration",
    ),
    (
        ["create-function", "--function-name", "hello-steps", "--handler", "demos.hello.handler"],
        "ResourceConflictException",
        "CreateFunction",
    ),
    (
        ["create-function", "--function-name", "bad name!", "--handler", "demos.hello.handler"],
        "InvalidParameterValueException",
        "CreateFunction",
    ),
    (
        ["get-durable-execution", "--durable-execution-arn", "not-an-arn"],
        "InvalidParameterValueException",
        "GetDurableExecution",
    ),
    (
        ["get-durable-execution", "--durable-execution-arn", UNKNOWN_ARN],
        "ResourceNotFoundException",
        "GetDurableExecution",
    ),
    (
        ["get-durable-execution-history", "--durable-execution-arn", UNKNOWN_ARN],
        "ResourceNotFoundException",
        "GetDurableExecutionHistory",
    ),
    (
        ["get-durable-execution-state", "--durable-execution-arn", UNKNOWN_ARN, "--checkpoint-token", "bad"],
        "InvalidParameterValueException",
        "GetDurableExecutionState",
    ),
    (
        ["stop-durable-execution", "--durable-execution-arn", UNKNOWN_ARN],
        "ResourceNotFoundException",
        "StopDurableExecution",
    ),
    (
        ["send-durable-execution-callback-success", "--callback-id", "Tm9wZQ=="],
        "ResourceNotFoundException",
        "SendDurableExecutionCallbackSuccess",
    ),
    (
        ["send-durable-execution-callback-heartbeat", "--callback-id", "Tm9wZQ=="],
        "ResourceNotFoundException",
        "SendDurableExecutionCallbackHeartbeat",
    ),
    (
        ["list-durable-executions-by-function", "--function-name", "hello-steps", "--statuses", "DONE"],
        "InvalidParameterValueException",
        "ListDurableExecutionsByFunction",
    ),
]


SERVICE_ERRORS += [
    (
        ["create-function", "--function-name", "x1", "--handler", "m.h", "--timeout", "99999999999999999999"],
        "InvalidParameterValueException",
        "CreateFunction",
    ),
    (
        ["update-function-configuration", "--function-name", "hello-steps", "--description", "x" * 300],
        "InvalidParameterValueException",
        "UpdateFunctionConfiguration",
    ),
    # Issue #17 point 3: a handler outside the function's code (engine/handler_paths.py).
    (
        ["create-function", "--function-name", "shell", "--handler", "os.system"],
        "InvalidParameterValueException",
        "CreateFunction",
    ),
    (
        ["update-function-configuration", "--function-name", "hello-steps", "--handler", "subprocess.run"],
        "InvalidParameterValueException",
        "UpdateFunctionConfiguration",
    ),
]

USAGE_ERRORS = [
    (
        ["create-function", "--function-name", "x", "--handler", "app.handler", "--code-dir", "/no/such/folder"],
        "Error parsing parameter '--code-dir': /no/such/folder is not a directory.",
    ),
    (
        ["update-function-code", "--function-name", "x", "--code-dir", "/tmp", "--zip-file", "fileb:///x.zip"],
        "argument --zip-file: not allowed with argument --code-dir",
    ),
    (
        ["invoke", "--function-name", "hello-steps", "--payload", '{"name": '],
        "Error parsing parameter '--payload': Invalid JSON",
    ),
    (
        ["invoke", "--function-name", "hello-steps", "--payload", "{}", "--cli-binary-format", "base64"],
        "Error parsing parameter '--payload': Invalid base64",
    ),
    (
        ["invoke", "--function-name", "hello-steps", "--payload", "file:///no/such/payload.json"],
        "Unable to load paramfile file:///no/such/payload.json",
    ),
    (
        ["create-function", "--function-name", "x1", "--handler", "m.h", "--durable-config", "ExecutionTimeout"],
        "Error parsing parameter '--durable-config': Expected: '='",
    ),
    (
        ["create-function", "--function-name", "x1", "--handler", "m.h", "--durable-config", "ExecutionTimeout=soon"],
        "Invalid type for parameter DurableConfig.ExecutionTimeout",
    ),
    (
        ["create-function", "--function-name", "x1", "--handler", "m.h", "--durable-config", "Timeout=5"],
        'Unknown parameter in DurableConfig: "Timeout"',
    ),
    (
        ["create-function", "--function-name", "x1", "--handler", "m.h", "--environment", "Variables={A1=1"],
        "Error parsing parameter '--environment': Expected: '}'",
    ),
    (
        [
            "create-function",
            "--function-name",
            "x1",
            "--handler",
            "m.h",
            "--durable-config",
            '{"ExecutionTimeout": "60"}',
        ],
        "Invalid type for parameter DurableConfig.ExecutionTimeout",
    ),
    (
        ["stop-durable-execution", "--durable-execution-arn", UNKNOWN_ARN, "--error", "{oops"],
        "Error parsing parameter '--error': Invalid JSON",
    ),
    (
        ["send-durable-execution-callback-failure", "--callback-id", "abc", "--error", "Message=x"],
        'Unknown parameter in Error: "Message"',
    ),
    (
        ["create-function", "--function-name", "x1", "--handler", "m.h", "--timeout", "soon"],
        "argument --timeout: invalid int value",
    ),
    (["list-functions", "--max-items", "0"], "argument --max-items: must be a positive integer"),
    (
        ["list-durable-executions-by-function", "--function-name", "f", "--started-after", "yesterday"],
        "invalid timestamp",
    ),
    (
        ["list-durable-executions-by-function", "--function-name", "f", "--started-after", "1e20"],
        "invalid timestamp '1e20': must be between 0 and 253402300799 epoch seconds",
    ),
    (
        ["list-durable-executions-by-function", "--function-name", "f", "--started-before", "inf"],
        "invalid timestamp 'inf'",
    ),
    (
        ["list-durable-executions-by-function", "--function-name", "f", "--started-after", "2020-01-01T00:00+23:59"],
        "offsets are at most ±14:00",
    ),
    (["invoke", "--function-name", "hello-steps", "--payload", "NaN"], "NaN is not a JSON number"),
    (["invoke", "--function-name", "hello-steps", "--payload", "[" * 100_000], "nested deeper than 64 levels"),
    (["invoke", "--function-name", "hello-steps", "--payload", b"\xff\xfe"], "not valid UTF-8 text"),
    (
        ["create-function", "--function-name", "x1", "--handler", "m.h", "--environment", "Variables={" * 100],
        "nested deeper than 64 levels",
    ),
    (
        ["invoke", "--function-name", "hello-steps", "/nonexistent/dir/out.json"],
        "Error parsing parameter 'outfile': cannot write '/nonexistent/dir/out.json'",
    ),
    (["get-durable-execution"], "the following arguments are required: --durable-execution-arn"),
    (["get-function", "--function-name", "f", "--bogus"], "unrecognized arguments: --bogus"),
    (["delete-everything"], "invalid choice: 'delete-everything'"),
    ([], "the following arguments are required: <subcommand>"),
]


@pytest.fixture(scope="module")
def error_runs() -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    """Run every error case once, a few processes at a time: each is a full Django start-up."""
    cases = [tuple(args) for args, *_ in SERVICE_ERRORS + USAGE_ERRORS]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return dict(zip(cases, pool.map(lambda args: durable(*args), cases), strict=True))


def test_unwritable_outfile_is_refused_before_the_execution_starts(lam, unique):
    name = f"cli-outfile-{unique}"
    args = ["--function-name", "hello-steps", "--invocation-type", "Event", "--durable-execution-name", name]
    done = durable("invoke", *args, "--payload", "{}", "/nonexistent/dir/out.json")
    assert done.returncode == 252, done
    assert "Error parsing parameter 'outfile'" in done.stderr and "Traceback" not in done.stderr
    listed = lam.list_durable_executions_by_function(FunctionName="hello-steps", DurableExecutionName=name)
    assert listed["DurableExecutions"] == []


@pytest.mark.parametrize(
    ("args", "code", "operation"), SERVICE_ERRORS, ids=[f"{args[0]}-{code}" for args, code, _ in SERVICE_ERRORS]
)
def test_service_errors_exit_254_with_the_aws_message(error_runs, args: list[str], code: str, operation: str):
    done = error_runs[tuple(args)]
    assert done.returncode == 254, done
    assert done.stdout == ""
    # As the AWS CLI: a blank line, then one line naming the code and the operation.
    assert done.stderr.startswith(f"\nAn error occurred ({code}) when calling the {operation} operation: "), done.stderr
    assert done.stderr.count("\n") == 2, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS, ids=[m[:40] for _, m in USAGE_ERRORS])
def test_bad_arguments_exit_252_without_traceback(error_runs, args: list[str], message: str):
    done = error_runs[tuple(args)]
    assert done.returncode == 252, done
    assert done.stdout == ""
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_invoke_of_a_handler_that_cannot_be_imported_returns_the_error_at_once(lam, unique):
    name = f"cli-noload-{unique}"
    lam.create_function(
        FunctionName=name,
        Handler="tests.handlers.not_a_module.handler",
        Timeout=10,
        DurableConfig={"ExecutionTimeout": 300, "RetentionPeriodInDays": 1},
    )
    response = ok("invoke", "--function-name", name, "--payload", "{}")
    assert response["FunctionError"] == "Unhandled", response
    assert json.loads(response["Payload"]) == {
        "errorType": "Runtime.ImportModuleError",
        "errorMessage": "Unable to import module 'tests.handlers.not_a_module': No module named 'tests.handlers.not_a_module'",
    }


def _quarantine(arn: str) -> None:
    from engine import db
    from engine.duties.unit import utcnow
    from engine.store import store

    with db.pool().connection() as conn:
        execution = store.execution_by_arn(conn, arn)
        store.quarantine(conn, execution["id"], {"loop": "timers", "failures": 3, "error": "Boom"}, utcnow())


def _quarantined_at(arn: str) -> Any:
    from engine import db

    with db.pool().connection() as conn:
        row = conn.execute("SELECT quarantined_at FROM durable_execution WHERE arn = %s", (arn,)).fetchone()
    return row["quarantined_at"]


def test_release_quarantine_clears_it_and_refuses_what_is_not_quarantined(lam, unique):
    arn, _ = _start_approval(lam, unique, "release")
    _quarantine(arn)
    released = ok("release-quarantine", "--durable-execution-arn", arn)
    assert released["Quarantine"] == {"loop": "timers", "failures": 3, "error": "Boom"}
    datetime.fromisoformat(released["QuarantinedAt"])
    assert _quarantined_at(arn) is None
    again = durable("release-quarantine", "--durable-execution-arn", arn)
    assert again.returncode == 254, again
    assert again.stderr.strip() == (
        "An error occurred (InvalidParameterValueException) when calling the ReleaseQuarantine operation: "
        "Durable execution is not quarantined; there is nothing to release."
    )
    unknown = durable("release-quarantine", "--durable-execution-arn", UNKNOWN_ARN)
    assert unknown.returncode == 254 and "(ResourceNotFoundException)" in unknown.stderr, unknown
    assert durable("release-quarantine").returncode == 252  # --durable-execution-arn is required
    lam.stop_durable_execution(DurableExecutionArn=arn)
