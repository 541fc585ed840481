"""Hostile values every fuzz test draws from: the inputs that once crashed an entry point, and more."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

DEEP_JSON = "[" * 50_000 + "]" * 50_000
DEEPER_JSON = '{"a":' * 100_000 + "1" + "}" * 100_000

HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "²",
    "٣",
    "1e309",
    "1e20",
    "1e300",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "-1",
    "0",
    "",
    " ",
    "9" * 30,
    "x" * 70_000,
    DEEP_JSON,
    DEEPER_JSON,
    '{"a": NaN}',
    '{"name": "a\\u0000b"}',
    '"\\ud800"',
    "1" * 5000,
    "2020-01-01T00:00:00+23:59",
    "2020-01-01T00:00:00-23:59",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-14:00",
    "2020-13-45",
    "%00",
    "%ff%fe",
    "%ED%A0%80",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "\r\nX-Injected: 1",
    "/lab/\r\n",
    "'; DROP TABLE durable_execution; --",
    "\u202e",
    "🙂",
    "arn:aws:lambda:us-east-1:123456789012:function:f/durable-execution/\x00",
]

# Text the strategies draw: the hostile list, plus whatever Hypothesis makes (surrogates included).
hostile_text = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
)

HOSTILE_NUMBERS: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    1e300,
    1e9,
    -1,
    0,
    10**30,
    True,
    False,
    2.5,
]

hostile_value = st.one_of(
    hostile_text,
    st.sampled_from(HOSTILE_NUMBERS),
    st.none(),
    st.binary(max_size=20),
    st.sampled_from([b"\xff\xfe", b"\x00", DEEP_JSON.encode(), [], {}, ["\x00"], {"a": math.nan}, [[[]]]]),
)


# The seeds every parameter of every entry point is tried with, one at a time, before Hypothesis.
# The strings every seed list starts with: NUL bytes, a lone surrogate, a digit that is not
# ASCII, numbers no float holds, the empty string, and a string too long for any field.
HOSTILE_STRINGS: list[str] = ["\x00", "a\x00b", "\ud800", "²", "1e309", "NaN", "-1", "", "x" * 70_000]
# An execution ARN of the right shape that names nothing.
MISSING_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fuzz-target/durable-execution/none/00000000-0000"


def fuzz_settings(max_examples: int) -> Any:
    """Hypothesis settings of the fuzz tests: repeatable, no deadline or example database, and
    quiet about function-scoped fixtures and slow or large inputs (they are the point)."""
    return settings(
        derandomize=True,
        deadline=None,
        max_examples=max_examples,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


SEEDS: list[Any] = [
    *HOSTILE_STRINGS,
    DEEPER_JSON,
    '{"a": NaN}',
    "2020-01-01T00:00:00+23:59",
    "%00",
    math.nan,
    math.inf,
    1e300,
    10**30,
    True,
    -1,
    [],
    {},
    b"\xff",
]


# The seeds of the web forms and query parameters (each request renders a page: fewer, sharper seeds).
WEB_SEEDS: list[str] = [
    *HOSTILE_STRINGS,
    DEEP_JSON,
    '{"a": NaN}',
    "2020-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00+01:00",
    "%00",
    "/lab/\r\n",
    "9" * 30,
]


def url_quote(value: str) -> str:
    """Percent-encode anything, lone surrogates included (as a hostile client would send them)."""
    return quote(value, safe="", errors="surrogatepass")


def query_string(params: dict[str, str]) -> str:
    return "&".join(f"{url_quote(key)}={url_quote(value)}" for key, value in params.items())
