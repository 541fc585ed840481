"""Hypothesis over every served operation, over a real socket: hostile path segments, query values,
headers and bodies get an answer below 500, every error is AWS-shaped, and a rejected request
changes no stored row.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore import xform_name
from hypothesis import given
from hypothesis import strategies as st

from engine.api import LambdaClient
from tests.fuzz.hostile import fuzz_settings, hostile_text, hostile_value, query_string, url_quote
from tests.wire.conftest import Raw
from tests.wire.test_malformed import fingerprint, quiet_fingerprint
from wire.model import operation
from wire.urls import urlpatterns

MISSING_ARN = "arn:aws:lambda:us-east-1:123456789012:function:w-none:$LATEST/durable-execution/x/00000000-0000-0000-0000-000000000000"
MISSING_NAMES = ["w-no-such-function", MISSING_ARN, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"]


def served_operations() -> list[str]:
    """Every operation a route serves whose engine method exists (pause/resume/delete land from branch pause)."""
    names = {name for p in urlpatterns for name in getattr(p.callback, "operations", {}).values()}
    return sorted(name for name in names if hasattr(LambdaClient, xform_name(name)))


def _latin1(text: str) -> bool:
    return text.isprintable() and all(ord(c) < 256 for c in text)


# Short enough for any HTTP server's request line (the dev server answers 414 above 64 KiB, before Django).
url_text = hostile_text.filter(lambda text: len(text) < 2048)
header_text = url_text.filter(_latin1)


def _jsonable(value: Any) -> Any:
    return value.decode("latin-1") if isinstance(value, bytes) else value


@st.composite
def requests_for(draw: st.DrawFn, name: str) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path, headers, body) of one request to operation ``name``, hostile where it can be."""
    op = operation(name)
    shape = op.input_shape
    path = op.http["requestUri"].split("?")[0]
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    for member_name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", member_name)
        if location == "uri":
            value = draw(st.one_of(url_text.filter(bool), st.sampled_from(MISSING_NAMES)))
            path = path.replace("{" + wire_name + "}", url_quote(value).replace("%2F", "/"))
        elif location == "querystring" and draw(st.booleans()):
            query[wire_name] = draw(url_text)
        elif location == "header" and draw(st.booleans()):
            headers[wire_name] = draw(header_text)
    body_members = [m for m, s in shape.members.items() if not s.serialization.get("location")]
    body = draw(
        st.one_of(
            st.binary(max_size=64),
            st.dictionaries(st.sampled_from(body_members or ["X"]), hostile_value, max_size=4).map(
                lambda d: json.dumps({k: _jsonable(v) for k, v in d.items()}, ensure_ascii=False).encode(
                    errors="surrogatepass"
                )
            ),
        )
    )
    if query:
        path += "?" + query_string(query)
    return op.http["method"], path, headers, body


@pytest.fixture(scope="module")
def baseline(raw_http: Raw) -> dict[str, Any]:
    return {"rows": quiet_fingerprint()}


@pytest.mark.parametrize("name", served_operations())
def test_every_operation_survives_hostile_requests(name: str, raw_http: Raw, baseline: dict[str, Any]) -> None:
    @fuzz_settings(max_examples=10)
    @given(request=requests_for(name))
    def check(request: tuple[str, str, dict[str, str], bytes]) -> None:
        method, path, headers, body = request
        status, response_headers, raw = raw_http.send(method, path, body, headers)
        label = (method, path[:200], str(headers)[:200], body[:200], status, raw[:300])
        assert status < 500, label
        if status >= 400:
            assert response_headers.get("x-amzn-errortype"), label
            assert json.loads(raw)["Message"], label
            assert fingerprint() == baseline["rows"], label
        else:
            baseline["rows"] = quiet_fingerprint()  # an accepted request may store something

    check()
