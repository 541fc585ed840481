"""SigV4 over a real socket: boto3 signs, waitress serves, ``accesskeys.sigv4.authenticate`` verifies."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError
from django.test import RequestFactory

from accesskeys import services, sigv4
from accesskeys.models import AccessKey
from executions.models import AuditEntry
from tests.accesskeys.conftest import lambda_client, make_user
from tests.accesskeys.urls import SEEN

# An execution ARN with every character that must survive the path: ":" "$" and "/".
ARN = "arn:aws:lambda:eu-west-3:123456789012:function:pay$ment:$LATEST/durable-execution/order 7/3f2a-b9"


def rejections() -> int:
    return AuditEntry.objects.filter(action="access_key.rejected").count()


def assert_rejected(call: Any, code: str, message_part: str = "") -> AuditEntry:
    before = rejections()
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert error["Error"]["Code"] == code, error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert message_part in error["Error"]["Message"]
    assert rejections() == before + 1
    entry = AuditEntry.objects.filter(action="access_key.rejected").first()
    assert entry is not None and entry.ok is False and entry.detail["reason"] == code
    assert entry.detail["remote_addr"] == "127.0.0.1"
    return entry


def test_get_with_repeated_query_parameters_is_accepted(server: str, key: services.NewAccessKey) -> None:
    lam = lambda_client(server, key.key.access_key_id, key.secret)
    lam.list_durable_executions_by_function(
        FunctionName="orders", Statuses=["RUNNING", "SUCCEEDED"], MaxItems=5, Marker="a b+c/=d"
    )
    seen = SEEN[-1]
    assert (seen.username, seen.method, seen.path) == (
        key.key.user.username,
        "GET",
        "/2025-12-01/functions/orders/durable-executions",
    )
    assert "Statuses=RUNNING" in seen.query and "Statuses=SUCCEEDED" in seen.query
    assert AccessKey.objects.get(pk=key.key.pk).last_used_at is not None


def test_post_json_body_to_a_percent_encoded_arn_path_is_accepted(server: str, key: services.NewAccessKey) -> None:
    lam = lambda_client(server, key.key.access_key_id, key.secret)
    update = {"Id": "op-1", "Type": "STEP", "Action": "START"}
    lam.checkpoint_durable_execution(DurableExecutionArn=ARN, CheckpointToken="dG9rZW4=", Updates=[update])
    seen = SEEN[-1]
    assert seen.path == f"/2025-12-01/durable-executions/{ARN}/checkpoint"
    # The client sent the ARN as one segment: its "/" and ":" and "$" encoded.
    assert "%2Fdurable-execution%2F" in seen.raw_path and "%3A%24LATEST" in seen.raw_path
    assert json.loads(seen.body)["Updates"] == [update]


def test_invoke_with_a_function_arn_is_accepted(server: str, key: services.NewAccessKey) -> None:
    lam = lambda_client(server, key.key.access_key_id, key.secret)
    function_arn = "arn:aws:lambda:eu-west-3:123456789012:function:pay$ment:$LATEST"
    lam.invoke(FunctionName=function_arn, Payload=b'{"amount": 12}', DurableExecutionName="order-7")
    assert SEEN[-1].path == f"/2015-03-31/functions/{function_arn}/invocations"
    assert SEEN[-1].body == b'{"amount": 12}'


def test_raw_unsigned_body_type_is_accepted(server: str, key: services.NewAccessKey) -> None:
    """The callback result is a raw blob sent with no Content-Type; its hash is still signed."""
    lam = lambda_client(server, key.key.access_key_id, key.secret)
    raw = bytes(range(256))
    lam.send_durable_execution_callback_success(CallbackId="Y2FsbGJhY2s+/w==", Result=raw)
    assert SEEN[-1].body == raw and SEEN[-1].method == "POST"


def test_presigned_url_is_accepted(server: str, key: services.NewAccessKey) -> None:
    lam = lambda_client(server, key.key.access_key_id, key.secret)
    url = lam.generate_presigned_url("get_durable_execution", Params={"DurableExecutionArn": ARN}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
    assert SEEN[-1].path == f"/2025-12-01/durable-executions/{ARN}"


def test_a_key_acts_with_its_users_permissions(server: str) -> None:
    for staff in (False, True):
        made = services.access_key_create(user=make_user("perm", staff=staff))
        lambda_client(server, made.key.access_key_id, made.secret).list_functions()
        assert (SEEN[-1].username, SEEN[-1].operates) == (made.key.user.username, staff)


def test_wrong_secret_is_an_invalid_signature(server: str, key: services.NewAccessKey) -> None:
    lam = lambda_client(server, key.key.access_key_id, key.secret[:-1] + ("A" if key.secret[-1] != "A" else "B"))
    entry = assert_rejected(
        lambda: lam.get_durable_execution(DurableExecutionArn=ARN), "InvalidSignatureException", "does not match"
    )
    assert entry.detail["access_key_id"] == key.key.access_key_id and entry.user == key.key.user


def test_tampered_body_under_a_signed_hash_is_refused(server: str, key: services.NewAccessKey) -> None:
    lam = lambda_client(server, key.key.access_key_id, key.secret)

    def swap_body(request: Any, **_: Any) -> None:
        request.body = b'{"tampered": 1}'  # signed, prepared, then changed (same length)

    lam.meta.events.register("before-send.lambda.Invoke", swap_body)
    assert_rejected(lambda: lam.invoke(FunctionName="orders", Payload=b'{"original": 1}'), "InvalidSignatureException")


def test_unknown_key_is_unrecognized(server: str, key: services.NewAccessKey) -> None:
    lam = lambda_client(server, "AKIA" + "Z" * 16, key.secret)
    entry = assert_rejected(
        lambda: lam.get_durable_execution(DurableExecutionArn=ARN),
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
    assert entry.user is None and entry.target == "AKIA" + "Z" * 16


def test_revoked_key_is_unrecognized(server: str, key: services.NewAccessKey) -> None:
    lam = lambda_client(server, key.key.access_key_id, key.secret)
    lam.get_durable_execution(DurableExecutionArn=ARN)
    services.access_key_revoke(access_key_id=key.key.access_key_id, user=key.key.user)
    assert_rejected(lambda: lam.get_durable_execution(DurableExecutionArn=ARN), "UnrecognizedClientException")


@pytest.mark.parametrize(("skew", "words"), [(-16, "Signature expired"), (16, "Signature not yet current")])
def test_clock_skew_over_15_minutes_is_refused(
    server: str, key: services.NewAccessKey, monkeypatch: pytest.MonkeyPatch, skew: int, words: str
) -> None:
    skewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=skew)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)  # the client's clock only
    lam = lambda_client(server, key.key.access_key_id, key.secret)
    assert_rejected(lambda: lam.get_durable_execution(DurableExecutionArn=ARN), "InvalidSignatureException", words)


def test_skew_under_15_minutes_is_accepted(
    server: str, key: services.NewAccessKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    skewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=14)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)
    lambda_client(server, key.key.access_key_id, key.secret).get_durable_execution(DurableExecutionArn=ARN)


def test_unsigned_request_is_missing_a_token(server: str, key: services.NewAccessKey) -> None:
    lam = lambda_client(server, "unused", "unused", signature_version=botocore.UNSIGNED)
    entry = assert_rejected(
        lambda: lam.get_durable_execution(DurableExecutionArn=ARN), "MissingAuthenticationTokenException"
    )
    assert entry.target == f"/2025-12-01/durable-executions/{ARN}"


def test_error_response_has_aws_shape(server: str) -> None:
    request = urllib.request.Request(f"{server}/2025-12-01/durable-executions/x", method="GET")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403
    assert caught.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    body = json.loads(caught.value.read())
    assert body == {
        "Type": "User",
        "Message": "Missing Authentication Token",
        "message": "Missing Authentication Token",
    }


def test_a_revoked_key_of_an_inactive_user_stays_refused(server: str, key: services.NewAccessKey) -> None:
    key.key.user.is_active = False
    key.key.user.save()
    lam = lambda_client(server, key.key.access_key_id, key.secret)
    assert_rejected(lambda: lam.get_durable_execution(DurableExecutionArn=ARN), "UnrecognizedClientException")


def test_raw_path_falls_back_to_re_encoding_path_info() -> None:
    """Without REQUEST_URI / RAW_URI the decoded path is re-encoded as botocore encodes a label."""
    request = RequestFactory().get("/2015-03-31/functions/arn:aws:lambda:x:1:function:f:$LATEST/invocations")
    assert (
        sigv4.raw_path(request)
        == "/2015-03-31/functions/arn%3Aaws%3Alambda%3Ax%3A1%3Afunction%3Af%3A%24LATEST/invocations"
    )
    request.META["RAW_URI"] = "/a%2Fb?x=1"
    assert sigv4.raw_path(request) == "/a%2Fb"
    request.META["RAW_URI"] = "http://host:1/a%2Fb?x=1"
    assert sigv4.raw_path(request) == "/a%2Fb"


def test_last_used_is_written_once_per_resolution_not_per_request(
    server: str, key: services.NewAccessKey, django_assert_num_queries: Any
) -> None:
    """A request within a minute of the key's last recorded use writes nothing; an older stamp is
    renewed. Counted on the verification itself: the key's SELECT, then the UPDATE only if stale."""
    lam = lambda_client(server, key.key.access_key_id, key.secret)
    lam.list_durable_executions_by_function(FunctionName="orders")
    first = AccessKey.objects.get(pk=key.key.pk).last_used_at
    assert first is not None
    fresh = AccessKey.objects.get(pk=key.key.pk)
    with django_assert_num_queries(0):
        sigv4._touch(fresh, first + sigv4.LAST_USED_RESOLUTION / 2)
    later = first + 2 * sigv4.LAST_USED_RESOLUTION
    with django_assert_num_queries(1):
        sigv4._touch(fresh, later)
    assert AccessKey.objects.get(pk=key.key.pk).last_used_at == later
