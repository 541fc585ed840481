"""Who a wire request acts as, and what that user may do.

``request_user`` is the one place a request becomes a user (by its SigV4 signature); every API
view goes through ``wire.views.api_operation``, which calls it. Reads need an active user;
operations that start, stop, checkpoint, answer or create need one who ``can_operate`` (as on
the dashboard).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

from accesskeys import sigv4
from executions.services import can_operate

# Operations that change something: starting, stopping, checkpointing, answering callbacks and
# changing functions. Everything else only reads.
WRITE_OPERATIONS = frozenset(
    {
        "Invoke",
        "CreateFunction",
        "UpdateFunctionConfiguration",
        "UpdateFunctionCode",
        "CheckpointDurableExecution",
        "StopDurableExecution",
        "PauseDurableExecution",
        "ResumeDurableExecution",
        "DeleteDurableExecution",
        "SendDurableExecutionCallbackSuccess",
        "SendDurableExecutionCallbackFailure",
        "SendDurableExecutionCallbackHeartbeat",
    }
)


class AuthError(Exception):
    """A request refused before it reaches the engine, in AWS's error shape."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def request_user(request: HttpRequest) -> Any | None:
    """The user whose access key signed the request (AWS Signature Version 4).

    ``accesskeys.sigv4.authenticate`` raises ``SignatureRejected`` (with AWS's ``code`` and
    ``status``, and an audit row) for an unsigned, wrongly signed, expired or revoked request.
    """
    return sigv4.authenticate(request)


# What a runtime process's key (scoped to one execution) may do, and only to that execution.
EXECUTION_SCOPED_OPERATIONS = frozenset({"CheckpointDurableExecution", "GetDurableExecutionState"})


def authorize(request: HttpRequest, operation: str, uri: Mapping[str, str] | None = None, on_user: Any = None) -> Any:
    """Return the request's user if it may run ``operation`` (on ``uri``); else raise AuthError.

    ``on_user`` (``wire.audit.Attempt``) is told the user once the signature is verified, so that
    a user refused for lack of permission is still named in the audit entry.
    """
    try:
        user = request_user(request)
    except Exception as exc:
        # The signature check's own refusal (unsigned, wrongly signed, expired, revoked key)
        # carries AWS's error code and HTTP status: answered as it says.
        code, status = getattr(exc, "code", None), getattr(exc, "status", None)
        if not isinstance(code, str) or not isinstance(status, int):
            raise
        raise AuthError(code, status, str(getattr(exc, "message", exc))) from exc
    if user is None or not user.is_active:
        raise AuthError("UnrecognizedClientException", 403, "The security token included in the request is invalid.")
    if on_user is not None:
        on_user.user = user
    scope = getattr(getattr(request, "access_key", None), "execution_arn", "")
    if scope:
        _check_execution_scope(scope, operation, uri or {})
        return user
    if operation in WRITE_OPERATIONS and not can_operate(user):
        raise AuthError(
            "AccessDeniedException",
            403,
            f"User {user.get_username()} is not authorized to perform: lambda:{operation} (read-only user).",
        )
    return user


def _check_execution_scope(scope: str, operation: str, uri: Mapping[str, str]) -> None:
    if operation not in EXECUTION_SCOPED_OPERATIONS or uri.get("DurableExecutionArn") != scope:
        raise AuthError(
            "AccessDeniedException",
            403,
            f"This key belongs to one execution's runtime: it may not perform lambda:{operation} on this resource.",
        )
