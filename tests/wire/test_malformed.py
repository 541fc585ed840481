"""Bad requests over a raw socket: an AWS-shaped 4xx every time, never a 500, and nothing stored changes."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection

import engine
from engine.contrib.django.models import Execution
from engine.errors import ServiceError
from engine.rows import EXECUTION_ENDED
from tests.wire.conftest import Raw, credentials

SDK = "tests.handlers.engine_sdk"
FN = "/2015-03-31/functions"
EX = "/2025-12-01/durable-executions"
CB = "/2025-12-01/durable-execution-callbacks"


def fingerprint() -> dict[str, tuple[int, str]]:
    """Row count and md5 of every engine table and of the users (what a request could change).

    Audit rows are left out: a refused signature is audited, by design. So are the worker
    processes' rows: their lease is renewed every few seconds, and no request writes them.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND (table_name LIKE 'durable\\_%%' OR table_name = 'auth_user') AND table_name <> 'durable_worker'"
        )
        tables = [name for (name,) in cursor.fetchall()]
        cursor.execute(
            " UNION ALL ".join(
                f"SELECT '{t}', count(*), md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM {t} x"
                for t in tables
            )
        )
        return {table: (count, digest) for table, count, digest in cursor.fetchall()}


def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> set[str]:
    return {table for table in before.keys() | after.keys() if before.get(table) != after.get(table)}


def quiet_fingerprint(timeout: float = 30) -> dict[str, tuple[int, str]]:
    """The fingerprint once no background work changes it.

    Earlier tests of the session may leave executions running (a wait, a callback with a long
    timeout) whose timers fire at any moment; they are stopped first, or a fired timer would read
    as a change made by a refused request."""
    stop_running_executions()
    deadline = time.monotonic() + timeout
    last = fingerprint()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = fingerprint()
        if now == last:
            return now
        last = now
    pytest.fail("the database never went quiet")


def stop_running_executions() -> None:
    lam = engine.client()
    # Only executions the engine started: the dashboard's seeded rows (no EXECUTION operation, no
    # timers) never change by themselves, and stopping one would need the operation they lack.
    running = Execution.objects.exclude(status__in=EXECUTION_ENDED).filter(operations__type="EXECUTION")
    for arn in running.values_list("arn", flat=True):
        with contextlib.suppress(ServiceError):  # it ended meanwhile
            lam.stop_durable_execution(DurableExecutionArn=arn)


@pytest.fixture(scope="module")
def target(lambda_client: Any) -> dict[str, str]:
    """A function and one finished execution of it to aim the bad requests at."""
    name = "w-malformed-target"
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role="arn:aws:iam::123456789012:role/durable-lab",
        Handler=f"{SDK}.echo",
        Code={},
        DurableConfig={"ExecutionTimeout": 300, "RetentionPeriodInDays": 1},
    )
    arn = lambda_client.invoke(FunctionName=name, Payload=b"{}")["DurableExecutionArn"]
    return {"name": name, "arn": quote(arn, safe=""), "raw_arn": arn}


def bad_requests(t: dict[str, str]) -> list[tuple[str, str, bytes | str, dict[str, str], int, str]]:
    """(method, path, body, headers, status, x-amzn-ErrorType) of each bad request."""
    fn, ex = f"{FN}/{t['name']}", f"{EX}/{t['arn']}"
    gone = f"{EX}/{quote(t['raw_arn'][:-3] + 'zzz', safe='')}"  # well-formed, no such execution
    create = {"FunctionName": "w-new", "Role": "r" * 20, "Handler": f"{SDK}.echo", "Code": {}}
    invalid, content = "InvalidParameterValueException", "InvalidRequestContentException"
    return [
        # malformed JSON, wrong types, NaN, NUL, depth
        ("POST", FN, "{not json", {}, 400, content),
        ("POST", FN, "[]", {}, 400, content),
        ("POST", FN, json.dumps({**create, "FunctionName": 5}), {}, 400, content),
        ("POST", FN, json.dumps({**create, "Timeout": "30"}), {}, 400, content),
        ("POST", FN, json.dumps(create)[:-1] + ', "Timeout": NaN}', {}, 400, content),
        ("POST", FN, json.dumps({**create, "Timeout": 1e400}), {}, 400, content),
        ("POST", FN, json.dumps({**create, "FunctionName": "w-\u0000"}), {}, 400, invalid),
        ("POST", FN, json.dumps({**create, "Code": {"ZipFile": "!!not base64!!"}}), {}, 400, content),
        ("POST", FN, json.dumps({k: v for k, v in create.items() if k != "FunctionName"}), {}, 400, invalid),
        ("POST", FN, "[" * 100_000, {}, 400, content),
        ("POST", FN, b'{"FunctionName": "\xff\xfe"}', {}, 400, content),
        ("PUT", f"{fn}/configuration", json.dumps({"Timeout": [1]}), {}, 400, content),
        ("PUT", f"{fn}/configuration", json.dumps({"Tags": {"a": "b"}, "Timeout": -1}), {}, 400, invalid),
        # invoke headers and payloads
        ("POST", f"{fn}/invocations", "{}", {"X-Amz-Invocation-Type": "Sometimes"}, 400, invalid),
        ("POST", f"{fn}/invocations", "{}", {"X-Amz-Durable-Execution-Name": "has spaces"}, 400, invalid),
        ("POST", f"{fn}/invocations", "{}", {"X-Amz-Tenant-Id": "t-1"}, 400, invalid),
        ("POST", f"{fn}/invocations", '{"a": NaN}', {}, 400, content),
        ("POST", f"{fn}/invocations", b"\xff", {}, 400, content),
        ("POST", f"{FN}/no-such-fn/invocations", "{}", {}, 404, "ResourceNotFoundException"),
        # ARNs, tokens, markers and query values
        ("GET", f"{EX}/not-an-arn", "", {}, 400, invalid),
        ("GET", gone, "", {}, 404, "ResourceNotFoundException"),
        ("GET", f"{ex}/history?MaxItems=abc", "", {}, 400, invalid),
        ("GET", f"{ex}/history?MaxItems=0", "", {}, 400, invalid),
        ("GET", f"{ex}/history?MaxItems=--5", "", {}, 400, invalid),
        ("GET", f"{ex}/history?MaxItems=1_0", "", {}, 400, invalid),
        ("GET", f"{ex}/history?MaxItems=%D9%A3", "", {}, 400, invalid),
        ("GET", f"{ex}/history?MaxItems=99999999999999999999999", "", {}, 400, invalid),
        ("GET", f"{ex}/history?ReverseOrder=maybe", "", {}, 400, invalid),
        ("GET", f"{ex}/history?Marker=%21%21forged", "", {}, 400, invalid),
        ("GET", f"{ex}/state", "", {}, 400, invalid),
        ("GET", f"{ex}/state?CheckpointToken=%21%21%21", "", {}, 400, invalid),
        ("GET", f"{ex}/state?CheckpointToken=MS4xLjE%3D", "", {}, 400, invalid),
        ("POST", f"{gone}/checkpoint", json.dumps({"CheckpointToken": "MS4xLjE="}), {}, 400, invalid),
        ("POST", f"{ex}/checkpoint", json.dumps({"CheckpointToken": "x", "Updates": "all"}), {}, 400, content),
        ("POST", f"{ex}/checkpoint", json.dumps({"CheckpointToken": "x", "Updates": [{"Id": 1}]}), {}, 400, content),
        ("GET", f"/2025-12-01/functions/{t['name']}/durable-executions?Statuses=NOPE", "", {}, 400, invalid),
        ("GET", f"/2025-12-01/functions/{t['name']}/durable-executions?StartedAfter=yesterday", "", {}, 400, invalid),
        (
            "GET",
            f"/2025-12-01/functions/{t['name']}/durable-executions?StartedAfter={'9' * 5000}",
            "",
            {},
            400,
            invalid,
        ),
        ("GET", f"/2025-12-01/functions/{t['name']}/durable-executions?StartedBefore={'9' * 18}", "", {}, 400, invalid),
        ("POST", f"{ex}/stop", '"stop it"', {}, 400, content),
        ("POST", f"{ex}/stop", json.dumps({"ErrorMessage": "x" * 40_000}), {}, 413, "RequestTooLargeException"),
        ("POST", f"{ex}/stop", "{}", {}, 400, invalid),  # it already succeeded
        # callbacks
        ("POST", f"{CB}/%21%21%21/succeed", "x", {}, 400, invalid),
        ("POST", f"{CB}/QUJD/succeed", b"\xff\xfe", {}, 400, invalid),
        ("POST", f"{CB}/QUJD/succeed", "x" * (256 * 1024 + 1), {}, 413, "RequestTooLargeException"),
        ("POST", f"{CB}/QUJD/fail", json.dumps({"Unknown": 1, "ErrorMessage": 7}), {}, 400, content),
        ("POST", f"{CB}/QUJD/heartbeat", "", {}, 404, "ResourceNotFoundException"),
        # unknown paths and methods under the API's prefixes
        ("GET", "/2025-12-01/nothing-here", "", {}, 404, "UnknownOperationException"),
        ("GET", "/2015-03-31", "", {}, 404, "UnknownOperationException"),
        ("GET", f"{fn}/invocations/extra", "", {}, 404, "UnknownOperationException"),
        ("DELETE", f"{fn}/invocations", "", {}, 405, "UnknownOperationException"),
        ("PATCH", ex, "{}", {}, 405, "UnknownOperationException"),
        ("GET", f"{ex}/checkpoint", "", {}, 405, "UnknownOperationException"),
        ("POST", f"{CB}/QUJD/explode", "", {}, 404, "UnknownOperationException"),
    ]


def test_bad_requests_get_aws_errors_and_change_nothing(raw_http: Raw, target: dict[str, str]) -> None:
    before = quiet_fingerprint()
    seen = []
    for method, path, body, headers, status, code in bad_requests(target):
        got_status, got_code, document = raw_http.error(method, path, body, **headers)
        seen.append((method, path[:90], got_status, got_code, document["Message"][:120]))
        assert (got_status, got_code) == (status, code), seen[-1]
        assert document["Type"] == "User"
    assert fingerprint() == before, seen


def test_oversize_body_is_refused_and_nothing_of_it_kept(raw_http: Raw, target: dict[str, str]) -> None:
    before = quiet_fingerprint()
    body = b'{"a": "' + b"x" * (7 * 1024 * 1024) + b'"}'
    status, code, document = raw_http.error("POST", f"{FN}/{target['name']}/invocations", body)
    assert (status, code) == (413, "RequestTooLargeException"), document
    assert fingerprint() == before


def test_percent_encoded_nul_and_surrogate_in_paths(raw_http: Raw, target: dict[str, str]) -> None:
    for method, path in (
        ("GET", f"{EX}/arn%00x"),
        ("POST", f"{EX}/%0A/stop"),  # a newline: Django's own path converter would not match it
        ("GET", f"{FN}/a%00b"),
        ("POST", f"{CB}/QU%00JD/heartbeat"),
        ("POST", f"{FN}/%ED%A0%80/invocations"),  # a lone surrogate, UTF-8 encoded
    ):
        status, code, document = raw_http.error(method, path)
        assert (status, code) == (400, "InvalidParameterValueException"), (path, document)


def test_unsigned_wrongly_signed_and_read_only_requests_are_refused(
    raw_http: Raw, lambda_client: Any, wire_server: str, target: dict[str, str]
) -> None:
    """SigV4 names the user; a read-only user's key reads but cannot start (boto3's AccessDenied)."""
    from django.contrib.auth import get_user_model

    from accesskeys import services
    from tests.wire.conftest import boto3_client

    before = quiet_fingerprint()
    status, code, _ = raw_http.error("GET", f"{EX}/{target['arn']}", signed=False)
    assert (status, code) == (403, "MissingAuthenticationTokenException")

    forged = boto3_client(wire_server, {**credentials(), "aws_secret_access_key": "not-the-secret"})
    with pytest.raises(forged.exceptions.ClientError) as caught:
        forged.invoke(FunctionName=target["name"], Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"

    viewer = get_user_model().objects.create_user(f"viewer-{time.monotonic_ns()}")
    made = services.access_key_create(user=viewer)
    reader = boto3_client(
        wire_server, {"aws_access_key_id": made.key.access_key_id, "aws_secret_access_key": made.secret}
    )
    assert reader.get_durable_execution(DurableExecutionArn=target["raw_arn"])["Status"] == "SUCCEEDED"
    for write in (
        lambda: reader.invoke(FunctionName=target["name"], Payload=b"{}"),
        lambda: reader.stop_durable_execution(DurableExecutionArn=target["raw_arn"]),
        lambda: reader.send_durable_execution_callback_success(CallbackId="QUJD", Result=b"x"),
    ):
        with pytest.raises(reader.exceptions.ClientError) as caught:
            write()
        assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert changed(before, fingerprint()) == {"auth_user"}  # the viewer made above; nothing else
