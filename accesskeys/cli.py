"""``manage.py durable create-access-key | list-access-keys | delete-access-key``, shaped as ``aws iam``.

The ``durable`` command belongs to the engine's Django adapter, which may not import project
apps (tests/test_architecture.py); this app adds its subcommands to the command's registry
(``OPERATIONS``) from ``AccessKeysConfig.ready``.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser

from accesskeys import services
from accesskeys.models import AccessKey
from engine.api import LambdaClient
from engine.contrib.django.management.commands import durable
from engine.errors import ServiceError


class NoSuchEntity(ServiceError):
    """IAM's error for an unknown user or key (the CLI exits 254, as ``aws iam`` does)."""

    code = "NoSuchEntity"
    status_code = 404


class ValidationError(ServiceError):
    """IAM's error for a parameter outside its pattern (checked before any query)."""

    code = "ValidationError"
    status_code = 400


# IAM's patterns; a user name may be as long as Django allows (IAM stops at 64).
USER_NAME = re.compile(r"[\w+=,.@-]{1,150}")  # \w: Django allows non-ASCII letters
ACCESS_KEY_ID = re.compile(r"\w{16,128}", re.ASCII)


def _checked(value: str, pattern: re.Pattern[str], member: str) -> str:
    if not pattern.fullmatch(value):
        raise ValidationError(
            f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {pattern.pattern}"
        )
    return value


def _user_name_option(parser: CommandParser) -> None:
    parser.add_argument(
        "--user-name",
        "--user",
        dest="user_name",
        help="whose key (default: the only superuser, when there is exactly one)",
    )


def _delete_args(parser: CommandParser) -> None:
    parser.add_argument("--access-key-id", required=True, help="the key to revoke (AKIA…)")
    _user_name_option(parser)


def _user(name: str | None) -> Any:
    users = get_user_model().objects
    if name is None:
        superusers = list(users.filter(is_superuser=True, is_active=True)[:2])
        if len(superusers) != 1:
            raise durable.UsageError("Name the key's owner with --user-name (there is not exactly one superuser).")
        return superusers[0]
    user = users.filter(**{users.model.USERNAME_FIELD: _checked(name, USER_NAME, "userName")}).first()
    if user is None:
        raise NoSuchEntity(f"The user with name {name} cannot be found.")
    return user


def _when(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def _metadata(key: AccessKey) -> dict[str, Any]:
    return {
        "UserName": key.user.get_username(),
        "AccessKeyId": key.access_key_id,
        "Status": key.status,
        "CreateDate": _when(key.created),
    }


def _create(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    made = services.access_key_create(user=_user(args.user_name))
    # The order `aws iam create-access-key` prints.
    meta = _metadata(made.key)
    return {
        "AccessKey": {
            "UserName": meta["UserName"],
            "AccessKeyId": meta["AccessKeyId"],
            "Status": meta["Status"],
            "SecretAccessKey": made.secret,
            "CreateDate": meta["CreateDate"],
        }
    }


def _list(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    user = _user(args.user_name)
    keys = services.access_key_list(user=user).select_related("user")
    return {"AccessKeyMetadata": [_metadata(key) for key in keys]}


def _delete(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    key_id = _checked(args.access_key_id, ACCESS_KEY_ID, "accessKeyId")
    key = AccessKey.objects.select_related("user").filter(access_key_id=key_id).first()
    if key is None or (args.user_name is not None and key.user.get_username() != args.user_name):
        raise NoSuchEntity(f"The Access Key with id {args.access_key_id} cannot be found.")
    services.access_key_revoke(access_key_id=key.access_key_id, user=key.user)
    return {}  # `aws iam delete-access-key` prints nothing


OPERATIONS = {
    "create-access-key": durable.Operation(
        "CreateAccessKey",
        "Create an access key for the wire API; its secret is printed once (as aws iam create-access-key).",
        _user_name_option,
        _create,
    ),
    "list-access-keys": durable.Operation(
        "ListAccessKeys", "List a user's access keys (as aws iam list-access-keys).", _user_name_option, _list
    ),
    "delete-access-key": durable.Operation(
        "DeleteAccessKey",
        "Revoke an access key: requests signed with it are refused from now on (kept, Inactive, for the audit).",
        _delete_args,
        _delete,
    ),
}


def register() -> None:
    durable.OPERATIONS.update(OPERATIONS)
