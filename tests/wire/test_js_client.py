"""AWS's JS SDK (`@aws-sdk/client-lambda`, installed with the project's Node 22) talks to Durable
Lab's AWS API with nothing changed but the endpoint: invoke by name, read the execution and its
history, and a missing execution raises the SDK's own ResourceNotFoundException."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from engine.runtimes import node
from tests.wire.conftest import REGION, ROLE, credentials

SCRIPT = Path(__file__).parent / "js" / "client.cjs"


def test_the_js_sdk_invokes_and_reads_an_execution(wire_server: str, lambda_client: Any, stack: Any) -> None:
    try:
        binary = node.node_binary()
    except node.NodeRuntimeMissing as exc:
        pytest.fail(str(exc))  # make install-dev installs it: a missing Node is a broken checkout
    keys = credentials()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ENDPOINT_URL_LAMBDA": wire_server,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
        "DURABLE_NODE_MODULES": str(node.NODE_HOME / "node_modules"),
    }
    function, name = f"js-fn-{uuid.uuid4().hex[:8]}", f"js-{uuid.uuid4().hex[:8]}"
    lambda_client.create_function(
        FunctionName=function,
        Role=ROLE,
        Handler="demos.hello.handler",
        Code={},
        DurableConfig={"ExecutionTimeout": 120, "RetentionPeriodInDays": 1},
    )
    done = subprocess.run(
        [str(binary), str(SCRIPT), function, name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["statusCode"] == 202
    assert seen["arn"].endswith(f"/durable-execution/{name}/" + seen["arn"].rsplit("/", 1)[-1])
    assert seen["status"] == "SUCCEEDED", seen
    assert seen["events"][0] == "ExecutionStarted" and seen["events"][-1] == "ExecutionSucceeded"
    assert seen["missing"] == {"name": "ResourceNotFoundException", "isClass": True}
    described = lambda_client.get_durable_execution(DurableExecutionArn=seen["arn"])
    assert (described["Status"], described["DurableExecutionName"]) == ("SUCCEEDED", name)
