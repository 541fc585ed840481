"""B9's bare endpoint (durable_site/urls.py) exists only on the bench's own web server."""

from __future__ import annotations

from typing import Any


def test_the_bare_endpoint_is_off_unless_the_bench_turns_it_on(raw_http: Any) -> None:
    status, _, body = raw_http.send("POST", "/bench-bare/2025-12-01/durable-execution-callbacks/x/succeed", b"{}")
    assert status == 404, (status, body[:200])
