"""Every state-changing request over the wire leaves an audit entry, accepted or refused, shown on /audit/."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accesskeys import services
from accesskeys.models import AccessKey
from executions.models import AuditEntry
from tests.wire.conftest import boto3_client, callback_id, finished

PG = "tests.handlers.engine_pg"
MISSING_CALLBACK = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"


def entries_since(mark: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(id__gt=mark, detail__via="aws api").order_by("id"))


def last_id() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_every_write_is_audited_with_its_key(lambda_client: Any, make_function: Any, wire_user: Any) -> None:
    mark = last_id()
    name = make_function(f"{PG}.parked")
    lambda_client.update_function_configuration(FunctionName=name, Timeout=20)
    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"heartbeat": 60}')[
        "DurableExecutionArn"
    ]
    callback = callback_id(lambda_client, arn)
    lambda_client.send_durable_execution_callback_heartbeat(CallbackId=callback)
    lambda_client.pause_durable_execution(DurableExecutionArn=arn)
    lambda_client.resume_durable_execution(DurableExecutionArn=arn)
    lambda_client.send_durable_execution_callback_success(CallbackId=callback, Result=b'"yes"')
    finished(lambda_client, arn)
    lambda_client.delete_durable_execution(DurableExecutionArn=arn)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.send_durable_execution_callback_failure(
            CallbackId=MISSING_CALLBACK, Error={"ErrorType": "No", "ErrorMessage": "nobody asked"}
        )
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.stop_durable_execution(DurableExecutionArn=arn)  # deleted

    made = entries_since(mark)
    assert [(e.action, e.ok) for e in made] == [
        ("function.create", True),
        ("function.update", True),
        ("execution.start", True),
        ("callback.heartbeat", True),
        ("execution.pause", True),
        ("execution.resume", True),
        ("callback.success", True),
        ("execution.delete", True),
        ("callback.failure", False),
        ("execution.stop", False),
    ]
    keys = {e.detail["access_key_id"] for e in made}
    assert len(keys) == 1 and AccessKey.objects.get(access_key_id=keys.pop()).user == wire_user
    assert {e.user_id for e in made} == {wire_user.pk}
    started = made[2]
    assert started.target == arn and started.execution_pk is not None
    assert started.detail["FunctionName"] == name and started.detail["payload_bytes"] == len(b'{"heartbeat": 60}')
    assert {e.execution_pk for e in made[3:8]} == {started.execution_pk}  # by ARN and by callback id
    assert made[6].detail["result_bytes"] == 5
    assert made[8].target == MISSING_CALLBACK and made[8].detail["error"].startswith("ResourceNotFoundException: ")
    assert made[8].detail["sent"] == {"ErrorType": "No", "ErrorMessage": "nobody asked"}
    assert not any(e.detail["operation"] == "CheckpointDurableExecution" for e in made)


def test_refusals_name_the_user(wire_server: str, make_function: Any, lambda_client: Any) -> None:
    """A read-only key is refused, and audited as that user's attempt; so is a start the engine refuses."""
    name = make_function(f"{PG}.parked")
    viewer = get_user_model().objects.create_user(f"viewer-{uuid.uuid4().hex[:8]}")
    made = services.access_key_create(user=viewer)
    read_only = boto3_client(
        wire_server, {"aws_access_key_id": made.key.access_key_id, "aws_secret_access_key": made.secret}
    )
    mark = last_id()
    with pytest.raises(read_only.exceptions.ClientError) as caught:
        read_only.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    lambda_client.invoke(FunctionName=name, InvocationType="Event", DurableExecutionName="once", Payload=b"{}")
    with pytest.raises(lambda_client.exceptions.DurableExecutionAlreadyStartedException):
        lambda_client.invoke(FunctionName=name, InvocationType="Event", DurableExecutionName="once", Payload=b"[]")

    denied, started, clash = entries_since(mark)
    assert (denied.action, denied.ok, denied.user_id) == ("execution.start", False, viewer.pk)
    assert denied.detail["access_key_id"] == made.key.access_key_id and denied.target == name
    assert denied.detail["error"].startswith("AccessDeniedException: ")
    assert (started.ok, clash.ok) == (True, False)
    assert clash.detail["error"].startswith("DurableExecutionAlreadyStartedException: ")


def test_audit_page_shows_wire_entries(wire_user: Any, lambda_client: Any, make_function: Any) -> None:
    make_function(f"{PG}.parked")
    entry = AuditEntry.objects.filter(detail__via="aws api").order_by("-id").first()
    assert entry is not None
    staff = get_user_model().objects.create_user(f"auditor-{uuid.uuid4().hex[:8]}", is_staff=True)
    client = Client()
    client.force_login(staff)
    page = client.get("/audit/").content.decode()
    assert "via aws api" in page and entry.detail["access_key_id"] in page and entry.target in page
