"""Requests for the web fuzz tests: logged-in clients that never raise, and the answers allowed."""

from __future__ import annotations

from typing import Any

from django.test import Client

# A refused request is a page or a redirect: never a 500.
ALLOWED_STATUSES = {200, 204, 302, 400, 403, 404, 405}


def client_for(user: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def assert_answered(response: Any, label: Any) -> Any:
    """The response is a page, a redirect or an error page, with no traceback in it."""
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code in ALLOWED_STATUSES, f"{response.status_code} for {label!r}: {body[-3000:]!r}"
    assert b"Traceback" not in body, f"traceback for {label!r}: {body[-3000:]!r}"
    return response
