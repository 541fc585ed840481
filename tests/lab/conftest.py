"""Lab tests read and write the session's real database (the one the worker uses), not a test copy."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def _real_database(django_db_blocker: Any) -> Iterator[None]:
    # pytest-django's django_db mark would give each test a separate, transaction-wrapped copy
    # that the Celery worker cannot see; the lab's end-to-end tests need the shared database.
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def ts_stack(stack: Any, web_server: str) -> Any:
    """The worker, restarted so that its Node runtime processes (the TypeScript demos) checkpoint
    through this session's web server."""
    import os

    os.environ["DURABLE_API_URL"] = web_server
    stack.stop_worker()
    stack.start_worker()
    return stack


STAFF_PASSWORD = "lab-browser-pw"


@pytest.fixture
def staff_tab(chromium: Any, web_server: str) -> Iterator[Callable[[str], Any]]:
    """Opens a tab logged in (through the real login form) as a new staff user named after the
    prefix; page and console errors in any tab it opened fail the test."""
    from django.contrib.auth import get_user_model

    contexts: list[Any] = []
    problems: list[str] = []

    def open_tab(prefix: str) -> Any:
        username = f"{prefix}-{uuid.uuid4().hex[:6]}"
        get_user_model().objects.create_user(username, password=STAFF_PASSWORD, is_staff=True)
        context = chromium.new_context(viewport={"width": 1440, "height": 900}, base_url=web_server)
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        tab.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
        tab.goto("/accounts/login/")
        tab.fill("#id_username", username)
        tab.fill("#id_password", STAFF_PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_load_state("networkidle")
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    assert problems == []
