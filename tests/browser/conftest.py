"""Real headless Chromium against a real web server, worker and scheduler (no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.dashboard.support import (  # noqa: F401  (pytest fixtures)
    PASSWORD,
    _real_database,
    dash_functions,
    make_user,
)


@pytest.fixture
def page(chromium: Any, web_server: str) -> Iterator[Any]:
    """A fresh browser tab; console errors and page errors fail the test."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, base_url=web_server)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    tab.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.accept()))
    tab.problems = problems
    yield tab
    context.close()
    assert [p for p in problems if not p.startswith("dialog: Stop")] == []


@pytest.fixture
def logged_in(page: Any) -> Any:
    """Log in through the real login form as a staff user."""
    user = make_user(staff=True)
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/executions/")
    page.user = user
    return page
