"""Checks every entry point runs on what a user sends, before anything is stored or started.

Plain Python (no Django): ``engine.client()``, the registry, the CLI and the dashboard's forms
and query parameters all use these, so one rule gives one error message everywhere. Each check
returns the clean value or raises :class:`InvalidInput`, whose message names the field and says
what is wrong ("Payload is JSON nested deeper than 64 levels.").
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 4300  # Python's own limit for int(str), named here so the error can say it
# Offsets beyond ±14:00 exist nowhere on Earth; PostgreSQL refuses those past ±15:59.
MAX_UTC_OFFSET = timedelta(hours=14)
# 9999-12-31T23:59:59Z: the last moment Python's datetime (and so every entry point) can hold.
MAX_EPOCH_SECONDS = 253_402_300_799
ASCII_DIGITS = re.compile(r"[0-9]+")
# A JSON string token (escapes included): its brackets are text, not nesting.
JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


class InvalidInput(ValueError):
    """A value a user sent that cannot be accepted; the message says which field and why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def check_text(value: Any, field: str, *, max_length: int, required: bool = False) -> str:
    """Return ``value`` if it is a string PostgreSQL can store and of at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}.")
    if required and not value:
        raise InvalidInput(field, "is required.")
    if len(value) > max_length:
        raise InvalidInput(field, f"is too long: {len(value)} characters, at most {max_length}.")
    check_storable(value, field)
    return value


def check_storable(value: str, field: str) -> str:
    """Refuse the two things no PostgreSQL text or jsonb column holds: NUL bytes and lone surrogates."""
    if "\x00" in value:
        raise InvalidInput(field, "contains a NUL byte.")
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(field, f"contains a lone surrogate ({value[exc.start]!r}); send valid Unicode.") from exc
    return value


def is_ascii_digits(value: str) -> bool:
    """``str.isdigit()`` for ASCII only: ``"²"`` and ``"٣"`` are digits to Python, not to ``int()``."""
    return bool(ASCII_DIGITS.fullmatch(value))


def parse_json_text(value: Any, field: str, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Return the parsed JSON of ``value`` (str or UTF-8 bytes), refusing what strict JSON refuses.

    NaN/Infinity tokens, numbers out of float range and nesting deeper than ``max_depth`` are
    refused; the depth is measured by a linear scan first, so 100,000 ``[`` never reach the parser's
    recursion.
    """
    text = _json_source(value, field)
    size = len(text.encode())
    if size > max_bytes:
        raise InvalidInput(field, f"is too large: {size} bytes, at most {max_bytes}.")
    if json_depth(text, max_depth) > max_depth:
        raise InvalidInput(field, f"is JSON nested deeper than {max_depth} levels.")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise InvalidInput(field, f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
    except ValueError as exc:  # a refused constant or float, or an integer of more than 4300 digits
        raise InvalidInput(field, f"is not valid JSON: {exc}.") from exc


def check_json_text(value: Any, field: str, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> str:
    """Return ``value`` as text once :func:`parse_json_text` accepts it."""
    parse_json_text(value, field, max_bytes=max_bytes, max_depth=max_depth)
    return _json_source(value, field)


def _json_source(value: Any, field: str) -> str:
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError as exc:
            raise InvalidInput(field, f"is not UTF-8 (byte {exc.start}).") from exc
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be JSON text, not {type(value).__name__}.")
    return check_storable(value, field)


def json_depth(text: str, stop_after: int = MAX_JSON_DEPTH) -> int:
    """Return the deepest nesting of ``[``/``{`` in JSON text (at most ``stop_after + 1``), without recursion."""
    brackets = NOT_A_BRACKET.sub("", JSON_STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > stop_after:
                break
    return deepest


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _bounded_int(token: str) -> int:
    if len(token.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(token)} digits is longer than {MAX_INT_DIGITS}")
    return int(token)


def _finite_float(token: str) -> float:
    number = float(token)
    if not math.isfinite(number):
        raise ValueError(f"{token} is out of the range of a double")
    return number


def check_number(value: Any, field: str, *, low: float, high: float, integer: bool = False) -> int | float:
    """Return ``value`` if it is a finite number (an int when ``integer``) within ``[low, high]``."""
    kind = "an integer" if integer else "a number"
    allowed = int if integer else int | float
    bounds = f"must be {kind} between {_plain(low)} and {_plain(high)}, got {value!r}."
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise InvalidInput(field, bounds)
    # math.isfinite() would overflow on a 400-digit int; only floats can be NaN or infinite.
    if (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
        raise InvalidInput(field, bounds)
    number: int | float = value  # checked above: an int or a float
    return number


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def check_aware_datetime(value: Any, field: str) -> datetime:
    """Return ``value`` in UTC if it is a timezone-aware datetime with a real-world UTC offset."""
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"must be a datetime, not {type(value).__name__}.")
    offset = value.utcoffset()
    if offset is None:
        raise InvalidInput(field, "must be timezone-aware (give an offset such as +00:00 or Z).")
    if abs(offset) > MAX_UTC_OFFSET:
        raise InvalidInput(field, f"has UTC offset {offset}; offsets are at most ±14:00.")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(field, "is out of range: dates run from year 1 to 9999 in UTC.") from exc


def parse_datetime_text(text: str, field: str, *, epoch_seconds: bool = False, naive_is_utc: bool = True) -> datetime:
    """Return the UTC datetime of ISO 8601 text (or, with ``epoch_seconds``, of a number of seconds)."""
    check_text(text, field, max_length=64)
    if epoch_seconds and re.fullmatch(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*", text):
        seconds = float(text)
        if not 0 <= seconds <= MAX_EPOCH_SECONDS:
            raise InvalidInput(field, f"must be between 0 and {MAX_EPOCH_SECONDS} epoch seconds, got {text.strip()}.")
        return datetime.fromtimestamp(seconds, UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(field, f"is not an ISO 8601 date and time: {text!r}.") from exc
    if moment.tzinfo is None and naive_is_utc:
        moment = moment.replace(tzinfo=UTC)
    return check_aware_datetime(moment, field)
