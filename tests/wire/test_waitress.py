"""The same API under `make run`'s server (Waitress, no DEBUG), which decodes paths its own way."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from durable_site.management.commands.durable_up import web_command
from tests.browser.fixtures import _free_port, _wait_for_http
from tests.wire.conftest import REGION, callback_id, credentials, finished

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def waitress_url(stack: Any, wire_user: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("waitress") / "waitress.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_DEBUG", None)
    with log.open("w") as out:
        proc = subprocess.Popen(
            web_command(port),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http(url + "/accounts/login/", proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_boto3_through_waitress(waitress_url: str, make_function: Any) -> None:
    client = boto3.client(
        "lambda",
        endpoint_url=waitress_url,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
        **credentials(),
    )
    name = make_function("tests.handlers.engine_pg.parked")
    started = client.invoke(
        FunctionName=name, InvocationType="Event", DurableExecutionName="via-waitress", Payload=b"{}"
    )
    arn = started["DurableExecutionArn"]
    assert client.get_durable_execution(DurableExecutionArn=arn)["DurableExecutionName"] == "via-waitress"
    client.send_durable_execution_callback_success(CallbackId=callback_id(client, arn), Result=b"ok")
    assert json.loads(finished(client, arn)["Result"]) == {"result": "ok"}
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="no-such-function-anywhere")
