"""Who may do what on the wire: reads need a user, writes need one who can operate.

In process (Django's test client), with ``wire.auth.request_user`` (the SigV4 check) replaced by
the user under test; tests/wire/test_malformed.py signs real requests with a read-only key.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from wire import auth

READ_ONLY_REFUSED = [
    ("post", "/2015-03-31/functions", {"FunctionName": "w-x", "Handler": "a.b", "Role": "r" * 20, "Code": {}}),
    ("post", "/2015-03-31/functions/{name}/invocations", {}),
    ("put", "/2015-03-31/functions/{name}/configuration", {"Timeout": 5}),
    ("post", "/2025-12-01/durable-executions/{arn}/stop", {}),
    ("post", "/2025-12-01/durable-executions/{arn}/checkpoint", {"CheckpointToken": "MS4xLjE="}),
    ("post", "/2025-12-01/durable-execution-callbacks/QUJD/succeed", {}),
    ("post", "/2025-12-01/durable-execution-callbacks/QUJD/fail", {}),
    ("post", "/2025-12-01/durable-execution-callbacks/QUJD/heartbeat", {}),
    ("post", "/2025-12-01/durable-executions/{arn}/pause", {}),
    ("post", "/2025-12-01/durable-executions/{arn}/resume", {}),
    ("delete", "/2025-12-01/durable-executions/{arn}", {}),
]


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Any:
    user = get_user_model().objects.create_user(f"viewer-{uuid.uuid4().hex[:8]}", password=uuid.uuid4().hex)
    monkeypatch.setattr(auth, "request_user", lambda request: user)
    return user


@pytest.fixture(scope="module")
def finished_arn(lambda_client: Any) -> dict[str, str]:
    name = f"w-perm-{uuid.uuid4().hex[:8]}"
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role="arn:aws:iam::123456789012:role/durable-lab",
        Handler="tests.handlers.engine_sdk.echo",
        Code={},
        DurableConfig={"ExecutionTimeout": 300, "RetentionPeriodInDays": 1},
    )
    return {"name": name, "arn": lambda_client.invoke(FunctionName=name, Payload=b"{}")["DurableExecutionArn"]}


def test_read_only_user_reads_but_cannot_write(read_only: Any, finished_arn: dict[str, str]) -> None:
    client = Client()
    assert client.get(f"/2025-12-01/durable-executions/{finished_arn['arn']}").status_code == 200
    assert client.get(f"/2015-03-31/functions/{finished_arn['name']}").status_code == 200
    for method, template, body in READ_ONLY_REFUSED:
        path = template.format(**finished_arn)
        response = getattr(client, method)(path, data=json.dumps(body), content_type="application/json")
        assert response.status_code == 403, (path, response.content)
        assert response["x-amzn-ErrorType"] == "AccessDeniedException"
        assert read_only.username in json.loads(response.content)["Message"]


def test_inactive_user_cannot_read(read_only: Any, finished_arn: dict[str, str]) -> None:
    read_only.is_active = False
    response = Client().get(f"/2025-12-01/durable-executions/{finished_arn['arn']}")
    assert (response.status_code, response["x-amzn-ErrorType"]) == (403, "UnrecognizedClientException")


def test_every_write_operation_is_classified() -> None:
    """A botocore operation served here that changes state must be in WRITE_OPERATIONS."""
    from wire.urls import urlpatterns

    served = {name for pattern in urlpatterns for name in getattr(pattern.callback, "operations", {}).values()}
    reads = {name for name in served if name.startswith(("Get", "List"))}
    assert served - reads == set(auth.WRITE_OPERATIONS)


class SignatureRefused(Exception):
    """Shaped as accesskeys.sigv4's refusal: an AWS code and an HTTP status."""

    code = "InvalidSignatureException"
    status = 403


def test_a_refusal_from_the_signature_check_is_answered_in_aws_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []

    def refuse(request: Any) -> Any:
        seen.append(request.body)  # the payload a signature check hashes
        raise SignatureRefused("The request signature we calculated does not match the signature you provided.")

    monkeypatch.setattr(auth, "request_user", refuse)
    body = b'{"big": "' + b"x" * (3 * 1024 * 1024) + b'"}'  # above Django's 2.5 MB form limit
    response = Client().post("/2015-03-31/functions/any/invocations", data=body, content_type="application/json")
    assert (response.status_code, response["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    assert "does not match" in json.loads(response.content)["Message"]
    assert seen == [body]
