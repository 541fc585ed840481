"""Drive the dashboard in headless Chromium: log in, start, watch it finish live, approve a callback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.contrib.django.models import Execution
from tests.browser.helpers import shot
from tests.dashboard.handlers import HOSTILE

pytestmark = pytest.mark.browser


def start_from_ui(page: Any, function: str, payload: dict[str, Any]) -> int:
    page.goto("/executions/start/")
    page.select_option("#id_function", function)
    page.fill("#id_payload", json.dumps(payload))
    page.click("form.start-form button[type=submit]")
    page.wait_for_url("**/executions/*/")
    return int(page.url.rstrip("/").split("/")[-1])


def test_login_page_is_styled(page: Any) -> None:
    page.goto("/executions/")
    page.wait_for_url("**/accounts/login/**")
    assert page.locator(".login-card h1").inner_text().endswith("Durable Lab")
    shot(page, "01-login")


def test_start_from_the_ui_and_watch_it_complete_live(logged_in: Any) -> None:
    page = logged_in
    pk = start_from_ui(page, "hello-steps", {"name": "browser", "wait_seconds": 3})
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#timeline .main-svg")
    page.wait_for_selector("#execution-status:has-text('RUNNING')")
    page.wait_for_function("document.querySelectorAll('#timeline .barlayer .point').length >= 2")
    shot(page, "02-execution-running")
    page.wait_for_selector("#execution-status:has-text('SUCCEEDED')", timeout=60_000)
    assert page.evaluate("window.__notReloaded") is True  # updated in place, no reload
    page.wait_for_selector("#invocations td:has-text('wait_elapsed')")
    page.wait_for_function("document.querySelector('#tl-state').textContent.includes('SUCCEEDED')")
    assert "Hello, browser!" in page.locator("#summary").inner_text()
    legend = page.locator("#timeline .legend").text_content()
    assert "Replayed from checkpoint" in legend and "Invocation → succeeded" in legend
    shot(page, "03-execution-succeeded")
    page.check("#tl-compress")
    page.wait_for_timeout(300)
    shot(page, "04-timeline-compressed", full_page=False)
    assert Execution.objects.get(pk=pk).status == "SUCCEEDED"


def test_an_operation_opens_in_the_drawer_with_its_result_and_events(logged_in: Any) -> None:
    page = logged_in
    start_from_ui(page, "hello-steps", {"name": "drawer", "wait_seconds": 1})
    page.wait_for_selector("#execution-status:has-text('SUCCEEDED')", timeout=60_000)
    page.locator("#operations td.opname a").first.click()
    panel = page.wait_for_selector("#op-drawer .op-panel")
    text = panel.inner_text()
    assert "SUCCEEDED" in text and "StepSucceeded" in text and "Hello, drawer!" in text
    shot(page, "03b-operation-drawer", full_page=False)
    page.keyboard.press("Escape")
    page.wait_for_selector("#op-drawer .op-panel", state="detached")


def test_list_shows_status_live(logged_in: Any) -> None:
    page = logged_in
    start_from_ui(page, "hello-steps", {"name": "list", "wait_seconds": 6})
    page.goto("/executions/?function=hello-steps")
    page.evaluate("window.__notReloaded = true")
    first_status = page.locator("#rows tr").first.locator(".status")
    assert first_status.inner_text() == "RUNNING"
    page.wait_for_function("document.querySelector('#rows tr .status').textContent === 'SUCCEEDED'", timeout=60_000)
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "05-executions-list")


def test_approve_a_callback_from_the_inbox(logged_in: Any) -> None:
    page = logged_in
    pk = start_from_ui(page, "human-approval", {"amount": 42})
    page.goto("/callbacks/")
    card = page.locator(f".callback:has(a[href='/executions/{pk}/'])")
    card.wait_for(timeout=60_000)  # the inbox polls; the callback arrives after the first invocation
    shot(page, "06-callbacks-inbox")
    card.locator("details.cb-raw summary").click()  # the raw JSON is one click away
    card.locator("textarea[name=result]").fill("{not json")
    card.locator("button:has-text('Approve')").click()
    page.wait_for_selector(f"#{card.get_attribute('id')} .field-error")
    assert "not valid JSON" in page.locator(".field-error").first.inner_text()
    shot(page, "07-callback-invalid-json")
    page.wait_for_timeout(3500)  # a live refresh is due: the card holds its error and raw editor
    assert card.locator("details.cb-raw").get_attribute("open") is not None
    assert "not valid JSON" in card.locator(".field-error").inner_text()
    card.locator("textarea[name=result]").fill('{"approved": true, "note": "from the browser"}')
    card.locator("button:has-text('Approve')").click()
    page.wait_for_selector(".ok-box:has-text('Approved by')")
    shot(page, "08-callback-approved")
    page.goto(f"/executions/{pk}/")
    page.wait_for_selector("#execution-status:has-text('SUCCEEDED')", timeout=60_000)
    assert "from the browser" in page.locator("#summary").inner_text()
    page.goto("/audit/")
    assert "callback.success" in page.locator("table.audit").inner_text()
    shot(page, "09-audit")


def test_hostile_payloads_render_as_text(logged_in: Any, dash_functions: Any) -> None:
    page = logged_in
    pk = start_from_ui(page, "dash-hostile", {"html": HOSTILE})
    page.wait_for_selector("#execution-status:has-text('SUCCEEDED')", timeout=60_000)
    page.wait_for_selector("#timeline .main-svg")
    assert HOSTILE in page.locator("#summary").inner_text()
    assert HOSTILE in page.locator("#timeline").text_content()  # the row label, shown as text
    assert not [p for p in page.problems if p.startswith("dialog")]
    shot(page, "10-hostile-escaped")
    assert Execution.objects.get(pk=pk).status == "SUCCEEDED"


def test_functions_page(logged_in: Any) -> None:
    page = logged_in
    page.goto("/functions/")
    assert page.locator(".function-card").count() >= 2
    shot(page, "11-functions")


def test_inject_a_timeout_and_see_the_killed_invocation_and_replays(logged_in: Any) -> None:
    page = logged_in
    # The long wait leaves time to arm a kill of "shout" before the invocation that runs it.
    pk = start_from_ui(page, "hello-steps", {"name": "fault", "wait_seconds": 8})
    page.wait_for_selector("#execution-status:has-text('RUNNING')")
    page.click("details.arm summary")
    page.fill("details.arm input[name=step_name]", "shout")
    page.check("details.arm input[value=after_body]")
    page.click("details.arm button:has-text('Arm')")
    page.wait_for_selector("#execution-status:has-text('SUCCEEDED')", timeout=90_000)
    page.wait_for_selector("#invocations td:has-text('killed')", timeout=30_000)
    page.wait_for_function("document.querySelector('#tl-state').textContent.includes('SUCCEEDED')")
    legend = page.locator("#timeline .legend").text_content()
    assert "killed" in legend and "Replayed from checkpoint" in legend
    shot(page, "12-fault-killed-and-replayed")
    invocations = Execution.objects.get(pk=pk).invocations.order_by("seq")
    assert [i.outcome for i in invocations] == ["suspended", "killed", "succeeded"]
