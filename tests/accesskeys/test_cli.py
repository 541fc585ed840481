"""``manage.py durable create-access-key | list-access-keys | delete-access-key`` as ``aws iam`` prints them."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError
from django.core.management import CommandError, call_command

from accesskeys.models import AccessKey
from executions.models import AuditEntry
from tests.accesskeys.conftest import lambda_client, make_user
from tests.accesskeys.urls import SEEN

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ISO_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


def durable(*args: str) -> Any:
    out = io.StringIO()
    call_command("durable", *args, stdout=out)
    text = out.getvalue()
    return json.loads(text) if text.strip() else None


def test_create_access_key_prints_iam_shape_and_the_key_signs(server: str) -> None:
    user = make_user("cli")
    result = subprocess.run(
        [sys.executable, "manage.py", "durable", "create-access-key", "--user-name", user.username],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert list(printed) == ["AccessKey"]
    access_key = printed["AccessKey"]
    assert list(access_key) == ["UserName", "AccessKeyId", "Status", "SecretAccessKey", "CreateDate"]
    assert access_key["UserName"] == user.username and access_key["Status"] == "Active"
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", access_key["AccessKeyId"])
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", access_key["SecretAccessKey"])
    assert ISO_SECONDS.fullmatch(access_key["CreateDate"])
    stored = AccessKey.objects.get(access_key_id=access_key["AccessKeyId"])
    assert access_key["SecretAccessKey"] not in stored.secret_encrypted  # encrypted at rest
    lam = lambda_client(server, access_key["AccessKeyId"], access_key["SecretAccessKey"])
    lam.get_durable_execution(DurableExecutionArn="arn:aws:lambda:us-east-1:1:function:f/durable-execution/a/b")
    assert SEEN[-1].username == user.username


def test_list_then_delete_revokes(server: str) -> None:
    user = make_user("cli")
    made = durable("create-access-key", "--user", user.username)["AccessKey"]
    listed = durable("list-access-keys", "--user-name", user.username)
    assert listed == {
        "AccessKeyMetadata": [
            {
                "UserName": user.username,
                "AccessKeyId": made["AccessKeyId"],
                "Status": "Active",
                "CreateDate": made["CreateDate"],
            }
        ]
    }
    assert durable("delete-access-key", "--access-key-id", made["AccessKeyId"]) is None
    assert durable("list-access-keys", "--user-name", user.username)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    assert AuditEntry.objects.filter(action="access_key.revoke", target=made["AccessKeyId"]).exists()
    lam = lambda_client(server, made["AccessKeyId"], made["SecretAccessKey"])
    with pytest.raises(ClientError, match="UnrecognizedClientException"):
        lam.list_functions()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["create-access-key", "--user-name", "nobody-here"],
            "(NoSuchEntity) when calling the CreateAccessKey operation: The user with name nobody-here cannot be found.",
        ),
        (
            ["delete-access-key", "--access-key-id", "AKIA0000000000000000"],
            "(NoSuchEntity) when calling the DeleteAccessKey operation",
        ),
        (
            ["create-access-key", "--user-name", "a\x00b"],
            "(ValidationError) when calling the CreateAccessKey operation",
        ),
        (["delete-access-key", "--access-key-id", "AKIA\ud800"], "Value at 'accessKeyId' failed to satisfy constraint"),
    ],
)
def test_unknown_or_malformed_user_or_key_is_refused(args: list[str], message: str) -> None:
    before = AccessKey.objects.count(), AuditEntry.objects.count()
    with pytest.raises(CommandError) as caught:
        durable(*args)
    assert message in str(caught.value) and caught.value.returncode == 254
    assert (AccessKey.objects.count(), AuditEntry.objects.count()) == before


def test_delete_of_another_users_key_is_no_such_entity() -> None:
    owner, other = make_user("cli"), make_user("cli")
    made = durable("create-access-key", "--user-name", owner.username)["AccessKey"]
    with pytest.raises(CommandError, match="NoSuchEntity"):
        durable("delete-access-key", "--access-key-id", made["AccessKeyId"], "--user-name", other.username)
    assert AccessKey.objects.get(access_key_id=made["AccessKeyId"]).is_active
