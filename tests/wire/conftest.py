"""Wire-API fixtures: boto3 and raw HTTP against the real web server process, real worker behind it.

Every boto3 client comes from ``lambda_client``, and every raw request is signed, with the keys of
``credentials()``: a real access key, verified by SigV4 on the server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/durable-lab"
MISSING_ARN_PATH = (
    "/2025-12-01/durable-executions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aw-none%3A%24LATEST"
    "%2Fdurable-execution%2Fx%2F00000000-0000-0000-0000-000000000000"
)


_KEYS: dict[str, Any] = {}


def credentials() -> dict[str, str]:
    """The access key boto3 signs with: a real key of a staff user (who may operate), made once."""
    if not _KEYS:
        from django.contrib.auth import get_user_model

        from accesskeys import services

        user = get_user_model().objects.create_user(f"wire-{uuid.uuid4().hex[:8]}", is_staff=True)
        made = services.access_key_create(user=user)
        _KEYS.update(user=user, id=made.key.access_key_id, secret=made.secret)
    return {"aws_access_key_id": _KEYS["id"], "aws_secret_access_key": _KEYS["secret"]}


@pytest.fixture(scope="session", autouse=True)
def _real_database(django_db_blocker: Any) -> Iterator[None]:
    """The tests read and set up the same database the server process serves from."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def wire_user() -> Any:
    """The user the test key belongs to."""
    credentials()
    return _KEYS["user"]


@pytest.fixture(scope="session")
def wire_server(web_server: str) -> str:
    """`make run`'s web server (Gunicorn, no DEBUG; tests/browser/fixtures.py): it hands SigV4 the
    raw, still-encoded path (RAW_URI), which Django's runserver loses."""
    return web_server


def boto3_client(url: str, keys: dict[str, str]) -> Any:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=180, connect_timeout=10)
    return boto3.client("lambda", endpoint_url=url, region_name=REGION, config=config, **keys)


@pytest.fixture(scope="session")
def lambda_client(wire_server: str, wire_user: Any) -> Any:
    """An unchanged ``boto3.client("lambda")`` pointed at the test web server, signing with ``credentials()``."""
    return boto3_client(wire_server, credentials())


class Raw:
    """Plain HTTP requests to the web server (for what boto3 would refuse to send)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def send(
        self,
        method: str,
        path: str,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send ``path`` as given (already percent-encoded), signed with ``credentials()`` unless told not to."""
        data = body.encode(errors="surrogatepass") if isinstance(body, str) else body
        headers = dict(headers or {})
        if signed:
            headers = self._signed(method, path, data, headers)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def _signed(self, method: str, path: str, data: bytes, headers: dict[str, str]) -> dict[str, str]:
        keys = credentials()
        request = AWSRequest(method=method, url=f"http://{self.host}:{self.port}{path}", data=data, headers=headers)
        signer = SigV4Auth(Credentials(keys["aws_access_key_id"], keys["aws_secret_access_key"]), "lambda", REGION)
        signer.add_auth(request)
        return dict(request.headers.items())

    def error(
        self, method: str, path: str, body: bytes | str = b"", signed: bool = True, **headers: str
    ) -> tuple[int, str, dict]:
        """Send, and return (status, x-amzn-ErrorType, body) of what must be an AWS-shaped error."""
        status, response_headers, raw = self.send(method, path, body, headers, signed)
        document = json.loads(raw)
        assert document["Message"] == document["message"], document
        return status, response_headers.get("x-amzn-errortype", ""), document


@pytest.fixture(scope="session")
def raw_http(wire_server: str, wire_user: Any) -> Raw:
    return Raw(wire_server)


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
