"""Issue #22 in a real browser: after Stop, a timeout and a kill the page reads as ended; the drawer
shows decoded values; a duplicate start says so. Each state is saved at 1440 px and 390 px wide."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from engine.contrib.django.models import Execution
from tests.browser.helpers import shot
from tests.conftest import wait_until
from tests.truth import KNOWN_VIOLATIONS, assert_truthful

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


def start_from_ui(page: Any, function: str, payload: dict[str, Any], *, name: str = "", scale: str = "") -> int:
    page.goto(f"/executions/start/?function={function}")
    page.fill("#id_payload", json.dumps(payload))
    if name:
        page.fill("#id_name", name)
    if scale:
        page.fill("#id_time_scale", scale)
    page.click("form.start-form button[type=submit]")
    page.wait_for_url("**/executions/*/")
    return int(page.url.rstrip("/").split("/")[-1])


def shots(page: Any, name: str) -> None:
    """The same state at a desktop and a phone width (full page), then back to desktop."""
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(400)  # Plotly's responsive resize
        shot(page, f"truth-{name}-{label}")
    page.set_viewport_size({"width": 1440, "height": 900})


def settle(page: Any, pk: int, status: str) -> None:
    """Wait until the execution and every invocation it started have ended, then reload the page."""
    execution = Execution.objects.get(pk=pk)
    wait_until(lambda: Execution.objects.get(pk=pk).status == status, timeout=90, message=f"{status}")
    wait_until(
        lambda: not execution.invocations.filter(ended_at__isnull=True).exists(),
        timeout=30,
        message="the last invocation to end",
    )
    page.reload()
    page.wait_for_selector(f"#execution-status:has-text('{status}')")
    page.wait_for_function(f"document.querySelector('#tl-state').textContent.includes('{status}')")


def operation_statuses(page: Any) -> list[str]:
    return page.locator("#operations tbody .status").all_inner_texts()


def assert_nothing_open(page: Any) -> None:
    operations = page.locator("#operations tbody").inner_text()
    assert "so far" not in operations, operations
    assert not {"STARTED", "PENDING", "READY"} & set(operation_statuses(page)), operation_statuses(page)
    statuses = page.locator("#invocations tbody .status").all_inner_texts()
    assert "running" not in statuses, statuses


def assert_reads_as_ended(page: Any) -> None:
    assert_nothing_open(page)
    assert "so far" not in page.locator("#summary").inner_text()
    legend = page.locator("#timeline .legend").text_content()
    assert "Attempt running" not in legend and "Invocation running" not in legend, legend
    assert_no_warning_but_known(page)


def assert_no_warning_but_known(page: Any) -> None:
    """No broken rule shown (but those a test names in ``KNOWN_VIOLATIONS``)."""
    warning = page.locator("#truth-warning")
    if warning.count():
        rules = warning.locator("li").all_inner_texts()
        assert all(KNOWN_VIOLATIONS and rule.startswith(KNOWN_VIOLATIONS) for rule in rules), rules


def test_after_stop_the_page_reads_as_stopped(logged_in: Any) -> None:
    page = logged_in
    pk = start_from_ui(page, "replay-not-retry", {"sleep": 10})
    page.wait_for_selector("#operations td:has-text('Step #2')", timeout=60_000)
    page.click("button:has-text('Stop execution')")  # the confirm dialog is accepted by the fixture
    page.wait_for_selector("#execution-status:has-text('STOPPED')", timeout=30_000)
    settle(page, pk, "STOPPED")
    assert_reads_as_ended(page)
    assert "STOPPED" in page.locator("#operations tr:has-text('Step #2')").inner_text()
    shots(page, "after-stop")
    assert_truthful(Execution.objects.get(pk=pk).arn)


def test_after_an_execution_timeout_the_page_reads_as_timed_out(logged_in: Any) -> None:
    page = logged_in
    pk = start_from_ui(page, "replay-not-retry", {"sleep": 10}, scale="0.1")
    settle(page, pk, "TIMED_OUT")
    assert_nothing_open(page)
    assert "TIMED_OUT" in page.locator("#operations tr:has-text('Step #2')").inner_text()
    assert_no_warning_but_known(page)
    shots(page, "after-timeout")


def test_after_a_kill_the_page_reads_as_ended_and_the_attempt_is_cut(logged_in: Any, dash_functions: Any) -> None:
    page = logged_in
    pk = start_from_ui(page, "dash-slow-step", {"seconds": 8})  # long enough to kill mid-body
    page.wait_for_selector("#operations td:has-text('crunch')", timeout=60_000)
    page.wait_for_selector("button:has-text('Inject timeout: kill running invocation now'):not([disabled])")
    page.click("button:has-text('Inject timeout: kill running invocation now')")
    page.wait_for_selector(".messages:has-text('Killed the running invocation')")
    page.problems[:] = [p for p in page.problems if not p.startswith("dialog: Kill")]  # its confirm
    settle(page, pk, "SUCCEEDED")
    assert_reads_as_ended(page)
    assert "killed" in page.locator("#invocations").inner_text()
    assert "Attempt cut short" in page.locator("#timeline .legend").text_content()
    page.locator("#operations td.opname a:has-text('crunch')").click()
    drawer = page.wait_for_selector("#op-drawer .op-panel")
    assert re.search(r"#1 \(cut short\)\s*→\s*#2", drawer.inner_text()), drawer.inner_text()
    shots(page, "after-kill")


def test_the_drawer_shows_decoded_json(logged_in: Any, dash_functions: Any) -> None:
    page = logged_in
    pk = start_from_ui(page, "dash-fanout", {"items": 3})
    page.wait_for_selector("#execution-status:has-text('SUCCEEDED')", timeout=60_000)
    page.locator("#operations td.opname a:has-text('squares')").click()
    result = page.wait_for_selector("#op-drawer [data-testid=op-result]")
    decoded = json.loads(result.inner_text())
    assert '"t":' not in result.inner_text() and decoded
    raw = page.locator("#op-drawer details.raw")
    assert not raw.locator("pre").is_visible(), "the raw form is one click away, not in the way"
    shots(page, "drawer-decoded")
    raw.locator("summary").click()
    assert raw.locator("pre").inner_text().startswith('{"t":')
    assert Execution.objects.get(pk=pk).status == "SUCCEEDED"


def test_a_duplicate_start_says_it_is_the_existing_execution(logged_in: Any) -> None:
    page = logged_in
    name = f"dup-{uuid.uuid4().hex[:8]}"
    payload = {"name": "twice", "wait_seconds": 60}  # still running at the second start, however slow the box
    first = start_from_ui(page, "hello-steps", payload, name=name)
    assert "202 Accepted" in page.locator(".messages").inner_text()
    second = start_from_ui(page, "hello-steps", payload, name=name)
    assert second == first
    message = page.locator(".messages").inner_text()
    assert "already running" in message and "existing execution" in message and "202" not in message
    shots(page, "duplicate-start")


def test_start_page_prefills_the_example_and_relative_times_keep_counting(logged_in: Any) -> None:
    page = logged_in
    page.goto("/executions/start/?function=idempotency-keys")
    assert json.loads(page.input_value("#id_payload")) == {"order": "o-17", "use_idempotency_key": True}
    page.select_option("#id_function", "hello-steps")
    assert json.loads(page.input_value("#id_payload")) == {"name": "Ada", "wait_seconds": 3}
    page.fill("#id_payload", '{"name": "mine"}')
    page.select_option("#id_function", "human-approval")
    assert page.input_value("#id_payload") == '{"name": "mine"}', "what a person typed is never replaced"
    shots(page, "start-example-input")
    page.fill("#id_payload", '{"amount": 12}')
    page.click("form.start-form button[type=submit]")
    page.wait_for_url("**/executions/*/")
    page.goto("/callbacks/")
    since = page.locator(".callback time[data-since]").first
    since.wait_for(timeout=60_000)
    first = since.inner_text()
    page.wait_for_timeout(1500)
    assert since.inner_text() != first, "the relative time moves on without a reload"
    assert since.get_attribute("title").endswith(" UTC")
