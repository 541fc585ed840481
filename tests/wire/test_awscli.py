"""The real ``aws`` CLI (awscli v1, pinned in requirements-dev.txt) against the real web server.

Each command is a subprocess of the venv's ``aws`` with ``--endpoint-url`` and nothing else but
the environment a user would set: a real access key (``credentials()``) and a region.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tests.conftest import wait_until
from tests.wire.conftest import MISSING_ARN_PATH, REGION, credentials, finished

AWS = Path(sys.executable).with_name("aws")
PG = "tests.handlers.engine_pg"
SDK = "tests.handlers.engine_sdk"
# awscli v1 exits 255 on an error the service returned (v2 exits 254).
SERVICE_ERROR_RC = 255


def aws(endpoint: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    keys = credentials()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),  # no ~/.aws of whoever runs the tests
        "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
    }
    argv = [str(AWS), "lambda", *args, "--endpoint-url", endpoint, "--output", "json"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_invoke_with_a_durable_execution_name(wire_server: str, make_function: Any, tmp_path: Path) -> None:
    name = make_function(f"{SDK}.echo")
    out = tmp_path / "out.json"
    args = ["invoke", "--function-name", name, "--durable-execution-name", "from-cli", "--payload", '{"n": 7}']
    answer = ok(aws(wire_server, tmp_path, *args, str(out)))
    assert answer["StatusCode"] == 200 and answer["ExecutedVersion"] == "$LATEST"
    assert "/durable-execution/from-cli/" in answer["DurableExecutionArn"]
    assert json.loads(out.read_text()) == {"event": {"n": 7}, "replaying": False}

    # The same name with other input: AWS's 409, as the CLI reports any service error.
    clash = aws(wire_server, tmp_path, *args[:-1], '{"n": 8}', str(out))
    assert clash.returncode == SERVICE_ERROR_RC
    assert "(DurableExecutionAlreadyStartedException) when calling the Invoke operation" in clash.stderr


def test_history_and_callback_success(wire_server: str, lambda_client: Any, make_function: Any, tmp_path: Path) -> None:
    name = make_function(f"{PG}.parked")
    out = tmp_path / "out.json"
    started = ok(aws(wire_server, tmp_path, "invoke", "--function-name", name, "--invocation-type", "Event", str(out)))
    assert started["StatusCode"] == 202
    arn = started["DurableExecutionArn"]

    def callback_started() -> str | None:
        events = ok(aws(wire_server, tmp_path, "get-durable-execution-history", "--durable-execution-arn", arn))
        found = [e for e in events["Events"] if e["EventType"] == "CallbackStarted"]
        return found[0]["CallbackStartedDetails"]["CallbackId"] if found else None

    callback = wait_until(callback_started, timeout=60, interval=0.5, message="CallbackStarted through the CLI")
    result = '{"approved": true}'
    ok(
        aws(
            wire_server,
            tmp_path,
            "send-durable-execution-callback-success",
            "--callback-id",
            callback,
            "--result",
            result,
        )
    )
    assert json.loads(finished(lambda_client, arn)["Result"]) == {"result": result}

    events = ok(aws(wire_server, tmp_path, "get-durable-execution-history", "--durable-execution-arn", arn))["Events"]
    types = [e["EventType"] for e in events]
    assert types[0] == "ExecutionStarted" and "CallbackSucceeded" in types and types[-1] == "ExecutionSucceeded"


def test_unknown_execution_is_the_cli_s_service_error(wire_server: str, tmp_path: Path) -> None:
    missing = MISSING_ARN_PATH.rsplit("/", 1)[1]
    result = aws(wire_server, tmp_path, "get-durable-execution", "--durable-execution-arn", unquote(missing))
    assert result.returncode == SERVICE_ERROR_RC, result
    assert "An error occurred (ResourceNotFoundException) when calling the GetDurableExecution operation" in (
        result.stderr
    )
    assert result.stdout == ""
