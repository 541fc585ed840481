"""The validation module on its own: plain Python, no database, fast."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import validation
from engine.validation import InvalidInput

QUICK = settings(derandomize=True, deadline=None, database=None, max_examples=200)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


def true_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((true_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((true_depth(item) for item in value.values()), default=0)
    return 0


@QUICK
@given(json_values)
def test_json_depth_matches_the_parsed_nesting(value: Any) -> None:
    assert validation.json_depth(json.dumps(value)) == true_depth(value)


@QUICK
@given(st.text(st.characters(codec=None, exclude_categories=())) | st.binary())
def test_any_text_parses_or_gets_a_clear_error(text: str | bytes) -> None:
    try:
        validation.parse_json_text(text, "Payload", max_bytes=10_000)
    except InvalidInput as exc:
        assert str(exc).startswith("Payload ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, "Payload is JSON nested deeper than 64 levels."),
        ('{"a":' * 65 + "1" + "}" * 65, "Payload is JSON nested deeper than 64 levels."),
        ("NaN", "NaN is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ("1e309", "1e309 is out of the range of a double"),
        ("9" * 5000, "longer than 4300"),
        ("\ud800", "contains a lone surrogate"),
        (b"\xff", "is not UTF-8"),
        ("x" * 11, "is too large: 11 bytes, at most 10."),
        ("{", "is not valid JSON"),
    ],
)
def test_json_text_refusals_say_what_is_wrong(text: str | bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        validation.parse_json_text(text, "Payload", max_bytes=10 if message.startswith("is too large") else 10**6)


def test_json_brackets_inside_strings_are_not_nesting() -> None:
    assert validation.parse_json_text(json.dumps(["[" * 1000, "{" * 1000]), "Payload", max_bytes=10**6)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\x00b", "Description contains a NUL byte."),
        ("\udc80", "Description contains a lone surrogate"),
        (5, "Description must be a string, not int."),
        ("x" * 257, "Description is too long: 257 characters, at most 256."),
    ],
)
def test_text_refusals_name_the_field(value: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        validation.check_text(value, "Description", max_length=256)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e300, 10**400, True, "1", None])
def test_numbers_must_be_finite_and_in_bounds(value: Any) -> None:
    with pytest.raises(InvalidInput, match="BackoffRate must be a number between 1 and 10"):
        validation.check_number(value, "BackoffRate", low=1, high=10)


def test_integers_refuse_floats() -> None:
    with pytest.raises(InvalidInput, match=re.escape("must be an integer between 0 and 2, got 1.0")):
        validation.check_number(1.0, "MaximumRetryAttempts", low=0, high=2, integer=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2020-01-01T00:00:00+23:59", "offsets are at most ±14:00"),
        ("0001-01-01T00:00:00+01:00", "dates run from year 1 to 9999 in UTC"),
        ("1e20", "must be between 0 and 253402300799 epoch seconds"),
        ("inf", "is not an ISO 8601 date and time"),
        ("²", "is not an ISO 8601 date and time"),
        ("a\x00", "contains a NUL byte"),
    ],
)
def test_dates_refuse_offsets_and_ranges_no_database_holds(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        validation.parse_datetime_text(text, "--started-after", epoch_seconds=True)


def test_dates_come_back_in_utc() -> None:
    assert validation.parse_datetime_text("2020-01-01T02:00:00+02:00", "From") == datetime(2020, 1, 1, tzinfo=UTC)
    assert validation.parse_datetime_text("2020-01-01T00:00", "From") == datetime(2020, 1, 1, tzinfo=UTC)
    assert validation.parse_datetime_text("86400", "From", epoch_seconds=True) == datetime(1970, 1, 2, tzinfo=UTC)
    east = datetime(2020, 1, 1, 14, tzinfo=timezone(timedelta(hours=14)))
    assert validation.check_aware_datetime(east, "After") == datetime(2020, 1, 1, tzinfo=UTC)


def test_ascii_digits_only() -> None:
    assert [validation.is_ascii_digits(text) for text in ("42", "²", "٣", "-1", "", "1 ")] == [
        True,
        False,
        False,
        False,
        False,
        False,
    ]
