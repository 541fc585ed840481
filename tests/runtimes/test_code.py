"""Code as Lambda takes it: a zip through the CLI's --zip-file, UpdateFunctionCode over the wire,
and the zips Durable Lab refuses (nothing stored changes on a refusal)."""

from __future__ import annotations

import io
import json
import stat
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.runtimes.conftest import zipped
from tests.test_cli import ok

HANDLER = """
from aws_durable_execution_sdk_python import durable_execution


@durable_execution
def handler(event, context):
    return context.step(lambda _: "{word}", name="say")
"""


def test_cli_zip_file_then_update_function_code_over_the_wire(
    lambda_client: Any, runtime_stack: Any, tmp_path: Path
) -> None:
    name = f"rt-cli-{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "function.zip"
    archive.write_bytes(zipped({"app.py": HANDLER.format(word="first")}))
    created = ok(
        "create-function",
        "--function-name",
        name,
        "--runtime",
        "python3.12",
        "--handler",
        "app.handler",
        "--zip-file",
        f"fileb://{archive}",
        "--durable-config",
        "ExecutionTimeout=60,RetentionPeriodInDays=1",
    )
    assert created["Runtime"] == "python3.12" and created["CodeSize"] == archive.stat().st_size
    assert json.loads(lambda_client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == "first"

    updated = lambda_client.update_function_code(
        FunctionName=name, ZipFile=zipped({"app.py": HANDLER.format(word="second")})
    )
    assert updated["CodeSha256"] != created["CodeSha256"]
    assert json.loads(lambda_client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == "second"


def _with_entry(info: zipfile.ZipInfo, text: str = "x") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, text)
    return buffer.getvalue()


def _symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("app.py")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (b"not a zip", "Could not unzip"),
        (_with_entry(zipfile.ZipInfo("../escape.py")), "outside the function's directory"),
        (_with_entry(zipfile.ZipInfo("/etc/evil.py")), "outside the function's directory"),
        (_with_entry(_symlink(), "/etc/passwd"), "symbolic link"),
    ],
)
def test_bad_zips_are_refused_and_nothing_is_stored(lambda_client: Any, code: bytes, message: str) -> None:
    name = f"rt-bad-{uuid.uuid4().hex[:8]}"
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException, match=message):
        lambda_client.create_function(
            FunctionName=name, Runtime="python3.11", Role="r" * 20, Handler="app.handler", Code={"ZipFile": code}
        )
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_function(FunctionName=name)


def test_unknown_runtime_is_refused(lambda_client: Any) -> None:
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException, match="runtime"):
        lambda_client.create_function(
            FunctionName=f"rt-bad-{uuid.uuid4().hex[:8]}",
            Runtime="cobol85",
            Role="r" * 20,
            Handler="app.handler",
            Code={"ZipFile": zipped({"app.py": ""})},
        )


def test_an_execution_key_may_only_checkpoint_its_own_execution(lambda_client: Any, wire_server: str) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from accesskeys.runtime import ExecutionKeys
    from tests.wire.conftest import boto3_client

    arn = "arn:aws:lambda:us-east-1:123456789012:function:x:$LATEST/durable-execution/x/00000000-0000-0000-0000-000000000001"
    key_id, secret = ExecutionKeys().issue(arn, timezone.now() + timedelta(minutes=5))
    scoped = boto3_client(wire_server, {"aws_access_key_id": key_id, "aws_secret_access_key": secret})
    with pytest.raises(scoped.exceptions.ClientError, match="AccessDenied"):
        scoped.list_functions()
    other = arn[:-1] + "2"
    with pytest.raises(scoped.exceptions.ClientError, match="AccessDenied"):
        scoped.get_durable_execution_state(DurableExecutionArn=other, CheckpointToken="abc")
    expired_id, expired_secret = ExecutionKeys().issue(arn, timezone.now() - timedelta(seconds=1))
    expired = boto3_client(wire_server, {"aws_access_key_id": expired_id, "aws_secret_access_key": expired_secret})
    with pytest.raises(expired.exceptions.ClientError, match="ExpiredToken"):
        expired.get_durable_execution_state(DurableExecutionArn=arn, CheckpointToken="abc")


def test_a_rebound_key_reaches_only_its_new_execution(wire_server: str) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from accesskeys.runtime import ExecutionKeys
    from tests.wire.conftest import boto3_client

    first = "arn:aws:lambda:us-east-1:123456789012:function:x:$LATEST/durable-execution/x/00000000-0000-0000-0000-00000000000a"
    second = first[:-1] + "b"
    keys = ExecutionKeys()
    key_id, secret = keys.issue(first, timezone.now() + timedelta(minutes=5))
    keys.rebind(key_id, second, timezone.now() + timedelta(minutes=5))
    scoped = boto3_client(wire_server, {"aws_access_key_id": key_id, "aws_secret_access_key": secret})
    with pytest.raises(scoped.exceptions.ClientError, match="AccessDenied"):
        scoped.get_durable_execution_state(DurableExecutionArn=first, CheckpointToken="abc")
    # Past the scope check: the engine itself answers for the (unknown) execution.
    with pytest.raises(scoped.exceptions.ClientError) as answered:
        scoped.get_durable_execution_state(DurableExecutionArn=second, CheckpointToken="abc")
    assert "AccessDenied" not in str(answered.value)
