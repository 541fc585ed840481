"""botocore's own ``lambda`` model, read from the server side: requests in, responses out.

The model boto3 serialises requests from is the one this module parses them with, so a field's
location (path, query string, header, body, raw payload) and type are never restated by hand.
Body fields are type-checked against the model and then checked by botocore's own
``validate_parameters`` (required members, minimum lengths and values); everything about a
value's meaning stays in ``engine.client()``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape
from botocore.validate import validate_parameters

from engine import validation
from engine.errors import InvalidParameterValueException, InvalidRequestContentException

INTEGER = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only (int() takes "٣" and "1_0"), and within a long
# A body is parsed only once its size is checked (wire.http); this bounds its nesting.
MAX_BODY_BYTES = 6 * 1024 * 1024 + 1024


@cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("lambda")


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


# --- requests ---------------------------------------------------------------------------------


class RequestParts:
    """What one HTTP request carries, as the view read it."""

    def __init__(
        self, uri: Mapping[str, str], query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> None:
        self.uri, self.query, self.headers, self.body = uri, query, headers, body


def parse_request(op: OperationModel, parts: RequestParts) -> dict[str, Any]:
    """Return the operation's parameters (boto3 names and Python types) from one request."""
    shape = op.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    payload = shape.serialization.get("payload")
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            params[name] = _storable(parts.uri[wire_name], name)
        elif location == "querystring":
            values = parts.query.get(wire_name)
            if values:
                params[name] = _from_query(values, member, name)
        elif location == "header":
            value = parts.headers.get(wire_name)
            if value is not None:
                params[name] = _from_text(value, member, name)
        elif name == payload:
            value = _payload(parts.body, member, name)
            if value is not None:
                params[name] = value
    if payload is None and parts.body.strip():
        params.update(_body_members(parts.body, shape))
    _validate(params, shape)
    return params


def _payload(body: bytes, member: Shape, name: str) -> Any:
    """The one member a request's whole body is: raw bytes (a blob) or a JSON structure."""
    if member.type_name == "blob":
        return body or None
    if not body.strip():
        return None
    return from_json(parse_body(body), member, name)


def _body_members(body: bytes, shape: StructureShape) -> dict[str, Any]:
    document = parse_body(body)
    members = {name: member for name, member in shape.members.items() if not member.serialization.get("location")}
    return dict(from_json(document, _Members(members), "body"))


class _Members:
    """A structure made of the body members only (the others come from the path and headers)."""

    type_name = "structure"

    def __init__(self, members: dict[str, Shape]) -> None:
        self.members = members


def parse_body(body: bytes) -> Any:
    try:
        return validation.parse_json_text(body, "request body", max_bytes=MAX_BODY_BYTES)
    except validation.InvalidInput as exc:
        raise InvalidRequestContentException(f"Could not parse request body into json: {exc}") from exc


def _bad_type(path: str, expected: str, value: Any) -> InvalidRequestContentException:
    return InvalidRequestContentException(
        f"Could not parse request body into json: {path} must be {expected}, not {type(value).__name__}."
    )


def from_json(value: Any, shape: Any, path: str) -> Any:
    """Convert one JSON value to the Python value boto3 would have sent for ``shape``; refuse wrong types.

    Members the model does not name are dropped, as AWS's own deserialiser ignores them.
    """
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise _bad_type(path, "an object", value)
        return {
            key: from_json(item, shape.members[key], f"{path}.{key}")
            for key, item in value.items()
            if key in shape.members and item is not None
        }
    if kind == "list":
        if not isinstance(value, list):
            raise _bad_type(path, "a list", value)
        return [from_json(item, shape.member, f"{path}[{index}]") for index, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _bad_type(path, "an object", value)
        return {_storable(k, path): from_json(item, shape.value, f"{path}.{k}") for k, item in value.items()}
    return _scalar(value, shape, path)


def _scalar(value: Any, shape: Shape, path: str) -> Any:
    kind = shape.type_name
    if kind == "string":
        if not isinstance(value, str):
            raise _bad_type(path, "a string", value)
        return _storable(value, path)
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad_type(path, "an integer", value)
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad_type(path, "a number", value)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _bad_type(path, "a boolean", value)
        return value
    if kind == "blob":
        if not isinstance(value, str):
            raise _bad_type(path, "a base64 string", value)
        try:
            return base64.b64decode(value.encode(), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise InvalidRequestContentException(f"{path} is not valid base64.") from exc
    if kind == "timestamp":
        return _timestamp(value, path)
    raise _bad_type(path, kind, value)


def _timestamp(value: Any, path: str) -> dt.datetime:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            moment = dt.datetime.fromisoformat(value)
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidParameterValueException(f"{path} is not a valid timestamp.") from exc
    raise InvalidParameterValueException(f"{path} must be a timestamp (ISO 8601 or epoch seconds).")


def _from_query(values: list[str], shape: Shape, name: str) -> Any:
    if shape.type_name == "list":
        return [_from_text(value, shape.member, name) for value in values]
    return _from_text(values[-1], shape, name)


def _from_text(text: str, shape: Shape, name: str) -> Any:
    """A query-string or header value, converted to the member's type."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        if not INTEGER.fullmatch(text):
            raise InvalidParameterValueException(f"{name} must be an integer, got {text[:40]!r}.")
        return int(text)
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise InvalidParameterValueException(f"{name} must be true or false, got {text[:40]!r}.")
        return text.lower() == "true"
    if kind == "timestamp":
        return _timestamp(int(text) if INTEGER.fullmatch(text) else text, name)
    return _storable(text, name)


def _storable(text: str, name: str) -> str:
    try:
        return validation.check_storable(text, name)
    except validation.InvalidInput as exc:
        raise InvalidParameterValueException(str(exc)) from exc


def _validate(params: dict[str, Any], shape: StructureShape) -> None:
    try:
        validate_parameters(params, shape)
    except ParamValidationError as exc:
        report = str(exc).replace("Parameter validation failed:\n", "").replace("\n", " ")
        raise InvalidParameterValueException(report) from exc


# --- responses --------------------------------------------------------------------------------


def to_json(value: Any, shape: Any) -> Any:
    """Return ``value`` as rest-json writes ``shape``: epoch-second timestamps, base64 blobs.

    Keys the model does not name are left out: boto3 would ignore them.
    """
    kind = shape.type_name
    if kind == "structure":
        return {
            key: to_json(item, shape.members[key])
            for key, item in value.items()
            if key in shape.members and item is not None
        }
    if kind == "list":
        return [to_json(item, shape.member) for item in value]
    if kind == "map":
        return {key: to_json(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.timestamp() if isinstance(moment, dt.datetime) else moment
    if kind == "blob":
        raw = value.read() if hasattr(value, "read") else value
        return base64.b64encode(raw.encode() if isinstance(raw, str) else raw).decode()
    return value
