"""Errors of the public API, named and coded as AWS Lambda's (boto3 ``ClientError`` shape)."""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of every error the engine raises to callers."""


class ServiceError(EngineError):
    """An error answered by the service API, carrying AWS's error code and a clear message."""

    code = "ServiceException"
    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def response(self) -> dict[str, Any]:
        """Return the error in boto3's ``ClientError.response`` shape."""
        return {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": self.status_code},
        }

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ResourceNotFoundException(ServiceError):
    code = "ResourceNotFoundException"
    status_code = 404


class InvalidParameterValueException(ServiceError):
    code = "InvalidParameterValueException"
    status_code = 400


class InvalidRequestContentException(ServiceError):
    code = "InvalidRequestContentException"
    status_code = 400


class ResourceConflictException(ServiceError):
    code = "ResourceConflictException"
    status_code = 409


class DurableExecutionAlreadyStartedException(ServiceError):
    code = "DurableExecutionAlreadyStartedException"
    status_code = 409


class CallbackTimeoutException(ServiceError):
    code = "CallbackTimeoutException"
    status_code = 400


class RequestTooLargeException(ServiceError):
    code = "RequestTooLargeException"
    status_code = 413


class TooManyRequestsException(ServiceError):
    code = "TooManyRequestsException"
    status_code = 429


ALL_SERVICE_ERRORS: tuple[type[ServiceError], ...] = (
    ResourceNotFoundException,
    InvalidParameterValueException,
    InvalidRequestContentException,
    ResourceConflictException,
    DurableExecutionAlreadyStartedException,
    CallbackTimeoutException,
    RequestTooLargeException,
    TooManyRequestsException,
    ServiceError,
)


class InvalidCheckpointTokenError(EngineError):
    """The checkpoint token is stale or belongs to a fenced invocation."""


class InvalidCheckpointError(EngineError):
    """A checkpoint batch broke the protocol; the execution cannot continue."""
