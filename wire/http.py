"""HTTP in and out for the wire API: the body as read, responses and AWS-shaped errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from botocore.model import OperationModel
from django.http import HttpRequest, HttpResponse

from engine.errors import InvalidRequestContentException, RequestTooLargeException
from wire.model import MAX_BODY_BYTES, RequestParts, to_json

JSON = "application/json"


def error_response(code: str, message: str, status: int, headers: Mapping[str, str] | None = None) -> HttpResponse:
    """An error as AWS Lambda answers it: boto3 reads the code from ``x-amzn-ErrorType``."""
    body = {"Type": "User" if status < 500 else "Service", "Message": message, "message": message}
    response = HttpResponse(json.dumps(body), status=status, content_type=JSON)
    response["x-amzn-ErrorType"] = code
    for name, value in (headers or {}).items():
        response[name] = value
    return with_request_id(response)


def with_request_id(response: HttpResponse) -> HttpResponse:
    response["x-amzn-RequestId"] = str(uuid.uuid4())
    return response


def read_body(request: HttpRequest) -> bytes:
    """The request body, refused before it is read when it says it is larger than any operation takes."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isascii() or not declared.isdigit():
        raise InvalidRequestContentException("Content-Length must be a number of bytes.")
    if int(declared) > MAX_BODY_BYTES:
        _discard(request, int(declared))
        raise RequestTooLargeException(f"Request must be smaller than {MAX_BODY_BYTES} bytes (got {declared}).")
    # read(), not .body: the size is bounded here (Django's 2.5 MB form limit is not the API's).
    body = request.read(MAX_BODY_BYTES + 1)
    # What request.body returns from now on, as Django keeps it after its own read: a signature
    # check (SigV4 hashes the payload) then sees these same bytes.
    request._body = body
    return body


# A client that sends an oversize body before it reads the answer (boto3, http.client) only sees
# the 413 if the server takes the body in: Gunicorn closes a connection whose body was left unread,
# and the client's send then fails with a broken pipe. Up to this many bytes are read and dropped,
# a chunk at a time (nothing kept); a larger body is left unread and its connection closed.
DISCARD_UP_TO = 4 * MAX_BODY_BYTES
DISCARD_CHUNK = 64 * 1024


def _discard(request: HttpRequest, declared: int) -> None:
    if declared > DISCARD_UP_TO:
        return
    while request.read(DISCARD_CHUNK):
        pass


def request_parts(request: HttpRequest, uri: Mapping[str, str], body: bytes) -> RequestParts:
    query = {key: request.GET.getlist(key) for key in request.GET}
    return RequestParts(uri, query, request.headers, body)


def render(op: OperationModel, result: Mapping[str, Any]) -> HttpResponse:
    """The engine's boto3-shaped answer as rest-json: status, headers, then a raw or JSON body."""
    status = int(op.http.get("responseCode", 200))
    shape = op.output_shape
    if shape is None:
        return with_request_id(HttpResponse(b"{}", status=status, content_type=JSON))
    payload_name = shape.serialization.get("payload")
    headers: dict[str, str] = {}
    document: dict[str, Any] = {}
    raw: bytes = b""
    for name, member in shape.members.items():
        value = result.get(name)
        if value is None:
            continue
        location = member.serialization.get("location")
        if location == "statusCode":
            status = int(value)
        elif location == "header":
            headers[member.serialization.get("name", name)] = str(value)
        elif name == payload_name:
            raw = _raw(value)
        elif location is None:
            document[name] = to_json(value, member)
    body = raw if payload_name is not None else json.dumps(document).encode()
    response = HttpResponse(body, status=status, content_type=JSON)
    for name, value in headers.items():
        response[name] = value
    return with_request_id(response)


def _raw(value: Any) -> bytes:
    raw = value.read() if hasattr(value, "read") else value
    return raw.encode() if isinstance(raw, str) else bytes(raw)
