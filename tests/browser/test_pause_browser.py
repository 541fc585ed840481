"""Pause, resume and delete from the execution page in headless Chromium, against the real
stack; screenshots of a paused execution at 1440 and 390 px in tests/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest

from engine.contrib.django.models import Execution
from tests.browser.helpers import shot
from tests.browser.test_callbacks_browser import DESKTOP, PHONE, fits
from tests.browser.test_dashboard_browser import start_from_ui

pytestmark = pytest.mark.browser


def test_pause_shows_paused_then_resume_stop_and_delete(logged_in: Any) -> None:
    page = logged_in
    page.set_viewport_size(DESKTOP)
    pk = start_from_ui(page, "hello-steps", {"name": "pause", "wait_seconds": 300})
    page.wait_for_selector("#operations td:has-text('WAIT')", timeout=60_000)
    page.click("#pause")
    page.wait_for_selector(".message:has-text('Paused')")
    page.wait_for_selector("#execution-status:has-text('PAUSED')", timeout=30_000)
    page.wait_for_selector("#resume")
    assert page.locator("#pause").count() == 0
    page.wait_for_function(
        "(document.querySelector('#timeline .legend') || {}).textContent?.includes('Paused by request')",
        timeout=30_000,
    )
    assert "ExecutionPaused" in page.locator("#history").inner_text()
    shot(page, "pause-paused-1440")
    page.set_viewport_size(PHONE)
    page.reload()
    page.wait_for_selector("#execution-status:has-text('PAUSED')")
    page.wait_for_selector("#timeline .main-svg")
    fits(page)
    shot(page, "pause-paused-390")
    page.set_viewport_size(DESKTOP)
    page.goto("/executions/?status=PAUSED")
    assert page.locator(f"#rows a[href='/executions/{pk}/']").count() >= 1
    assert page.locator("#rows .status-paused").count() >= 1
    page.goto(f"/executions/{pk}/")
    page.click("#resume")
    page.wait_for_selector("#execution-status:has-text('RUNNING')")
    page.wait_for_selector("#pause")
    page.click("form[action$='/stop/'] button")  # confirms with a dialog, which the fixture accepts
    page.wait_for_selector("#execution-status:has-text('STOPPED')", timeout=30_000)
    page.click("#delete")
    page.wait_for_url("**/executions/")
    assert "Deleted execution" in page.locator(".messages").inner_text()
    assert not Execution.objects.filter(pk=pk).exists()
    page.problems[:] = [p for p in page.problems if not p.startswith("dialog: Delete this execution")]
