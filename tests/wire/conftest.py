"""Wire-API fixtures: boto3 and raw HTTP against the real web server process, real worker behind it.

Every boto3 client comes from ``lambda_client``, whose keys come from ``credentials()``: the one
place to switch to real access keys once requests are verified (SigV4).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from tests.conftest import wait_until

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/durable-lab"
MISSING_ARN_PATH = (
    "/2025-12-01/durable-executions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aw-none%3A%24LATEST"
    "%2Fdurable-execution%2Fx%2F00000000-0000-0000-0000-000000000000"
)


def credentials() -> dict[str, str]:
    """The keys boto3 signs with. Dummy for now: the wire's request_user placeholder ignores them."""
    return {"aws_access_key_id": "AKIAWIRETESTDUMMY000", "aws_secret_access_key": "wire-test-dummy-secret"}


@pytest.fixture(scope="session", autouse=True)
def _real_database(django_db_blocker: Any) -> Iterator[None]:
    """The tests read and set up the same database the server process serves from."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def wire_user() -> Any:
    """A superuser for the requests to act as (the placeholder picks the first active one)."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    existing = users.filter(is_superuser=True, is_active=True).order_by("pk").first()
    return existing or users.create_superuser("wire-admin", "wire@example.com", uuid.uuid4().hex)


@pytest.fixture(scope="session")
def lambda_client(web_server: str, wire_user: Any) -> Any:
    """An unchanged ``boto3.client("lambda")`` pointed at the test web server."""
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=180, connect_timeout=10)
    return boto3.client("lambda", endpoint_url=web_server, region_name=REGION, config=config, **credentials())


class Raw:
    """Plain HTTP requests to the web server (for what boto3 would refuse to send)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def send(
        self, method: str, path: str, body: bytes | str = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            data = body.encode() if isinstance(body, str) else body
            conn.request(method, path, body=data, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def error(self, method: str, path: str, body: bytes | str = b"", **headers: str) -> tuple[int, str, dict]:
        """Send, and return (status, x-amzn-ErrorType, body) of what must be an AWS-shaped error."""
        status, response_headers, raw = self.send(method, path, body, headers)
        document = json.loads(raw)
        assert document["Message"] == document["message"], document
        return status, response_headers.get("x-amzn-errortype", ""), document


@pytest.fixture(scope="session")
def raw_http(web_server: str, wire_user: Any) -> Raw:
    return Raw(web_server)


@pytest.fixture
def make_function(lambda_client: Any) -> Iterator[Any]:
    """Create durable functions through CreateFunction; stop what they left running."""
    names: list[str] = []

    def create(handler: str, *, execution_timeout: int = 300, **fields: Any) -> str:
        name = f"w-{handler.rsplit('.', 1)[1].replace('_', '-')}-{uuid.uuid4().hex[:8]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": b"unused"},
            Timeout=30,
            DurableConfig={"ExecutionTimeout": execution_timeout, "RetentionPeriodInDays": 1},
            **fields,
        )
        names.append(name)
        return name

    yield create
    for name in names:
        running = lambda_client.list_durable_executions_by_function(FunctionName=name, Statuses=["RUNNING"])
        for summary in running["DurableExecutions"]:
            with contextlib.suppress(lambda_client.exceptions.InvalidParameterValueException):  # ended meanwhile
                lambda_client.stop_durable_execution(DurableExecutionArn=summary["DurableExecutionArn"])


def history(lambda_client: Any, arn: str, **kwargs: Any) -> list[dict[str, Any]]:
    return lambda_client.get_durable_execution_history(DurableExecutionArn=arn, **kwargs)["Events"]


def callback_id(lambda_client: Any, arn: str) -> str:
    def started() -> str | None:
        for event in history(lambda_client, arn):
            if event["EventType"] == "CallbackStarted":
                return str(event["CallbackStartedDetails"]["CallbackId"])
        return None

    return str(wait_until(started, timeout=60, message="CallbackStarted"))


def finished(lambda_client: Any, arn: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        described = lambda_client.get_durable_execution(DurableExecutionArn=arn)
        return None if described["Status"] == "RUNNING" else described

    return dict(wait_until(done, timeout=timeout, message=f"{arn} to finish"))
