"""Checkpoint tokens, ARNs and callback ids: the names the engine hands out."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from typing import Any

from engine.errors import (
    InvalidCheckpointTokenError,
)

REGION = os.environ.get("DURABLE_REGION", "us-east-1")


ACCOUNT = os.environ.get("DURABLE_ACCOUNT_ID", "123456789012")


def make_token(execution: Mapping[str, Any]) -> str:
    raw = f"{execution['id']}.{execution['invocation_seq']}.{execution['token_seq']}"
    return base64.b64encode(raw.encode()).decode()


def parse_token(token: str) -> tuple[int, int, int]:
    try:
        parts = base64.b64decode(token.encode(), validate=True).decode().split(".")
        execution_id, invocation_seq, token_seq = (int(part) for part in parts)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCheckpointTokenError("Invalid checkpoint token") from exc
    return execution_id, invocation_seq, token_seq


def function_arn(function_name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"


def execution_arn(function_name: str, name: str, execution_uuid: str) -> str:
    return f"{function_arn(function_name)}:$LATEST/durable-execution/{name}/{execution_uuid}"


def mint_callback_id(op_id: str) -> str:
    # Opaque and base64-safe; it maps back to the operation through a unique index.
    return base64.b64encode(secrets.token_bytes(24)).decode().replace("/", "A").replace("+", "B")


def token_parts(token: str) -> tuple[int, int, int] | None:
    try:
        return parse_token(token)
    except InvalidCheckpointTokenError:
        return None


def function_name_of(name_or_arn: str) -> str:
    """The function name in a bare name, a name with a qualifier, or a function ARN."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6] if len(parts) > 6 else name_or_arn
    return name_or_arn.split(":")[0]
