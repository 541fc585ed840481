"""The lab in a real headless Chromium, against a real web server, worker and scheduler.

Seed 000 is run from its demo page and its comparison watched until the four timelines and the
table are complete; a medium-risk fraud transaction is approved from the callbacks inbox.
Screenshots go to tests/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("DURABLE_SCREENSHOTS") or ROOT / "tests" / "screenshots")
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1440, "height": 900}


@pytest.fixture
def page(staff_tab: Any) -> Any:
    """A logged-in staff user's tab; page errors and console errors fail the test."""
    return staff_tab("teacher")


def shot(tab: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_seed_000_comparison_from_the_ui_shows_four_timelines_and_the_table(page: Any) -> None:
    page.goto("/lab/")
    shot(page, "lab-home")
    page.click("text=Replay is not retry")
    page.select_option("#id_time_scale", "0.5")
    page.check("#language-choice input[value=python]")  # the four Python variants (both languages: eight)
    page.click("#run-demo")
    page.wait_for_url(re.compile(r".*/lab/comparisons/\d+/$"))
    page.wait_for_selector("#timelines-plot .main-svg")
    page.wait_for_selector("#comparison-table tbody tr[data-variant='3']")
    shot(page, "lab-seed-000-running")
    # Live: htmx polls until the four executions and their last invocations have ended.
    page.wait_for_selector("text=all variants finished", timeout=150_000)
    page.wait_for_timeout(800)  # the last swap's Plotly.react
    rows = page.locator("#comparison-table tbody tr")
    assert rows.count() == 4
    statuses = [rows.nth(i).locator(".status").inner_text() for i in range(4)]
    assert statuses[:2] == ["TIMED_OUT", "TIMED_OUT"] and statuses[3] == "FAILED"
    titles = page.locator("#timelines-plot .annotation-text").all_text_contents()
    assert [t.split(" — ")[0] for t in titles if " — " in t] == [
        "at-least-once · default retry",
        "at-least-once · no retry",
        "at-most-once · default retry",
        "at-most-once · no retry",
    ]
    assert page.locator("#timelines-plot .subplot").count() == 4
    assert int(rows.nth(3).locator("[data-col=body_runs]").inner_text()) == 2
    # At-most-once + default retry really retried: its plan is drawn against the attempts.
    assert page.locator("#retries-card").is_visible()
    assert page.locator("#retries-plot .subplot").count() == 4
    shot(page, "lab-seed-000-comparison")


def _fraud_row(page: Any, tx: str) -> Any:
    return page.locator("#fraud-executions tr", has=page.locator(f"text=tx-{tx}"))


def test_fraud_demo_medium_risk_is_approved_from_the_callbacks_inbox(page: Any) -> None:
    tx = uuid.uuid4().hex[:6]
    page.goto("/lab/demos/fraud/")
    page.fill("#id_transaction_id", tx)
    page.click("text=6500 (medium)")
    page.select_option("#id_time_scale", "0.001")  # one day of callback timeout in 86 s
    page.click("#submit-tx")
    # The live section refreshes until both verification callbacks are waiting, each as a card.
    page.wait_for_function(
        f"[...document.querySelectorAll('#fraud-callbacks .callback')].filter(c => c.innerText.includes('tx-{tx}'))"
        ".length == 2",
        timeout=30_000,
    )
    shot(page, "lab-fraud-waiting")
    page.goto("/callbacks/")
    card = page.locator("article.callback", has=page.locator(f"text=tx-{tx}")).first
    card.wait_for()
    shot(page, "lab-fraud-inbox")
    card.locator("button:has-text('Approve')").click()
    page.wait_for_selector("text=Approved", timeout=15_000)
    page.goto("/lab/demos/fraud/")
    page.wait_for_selector(f"#fraud-executions tr:has-text('tx-{tx}') .decision-approved", timeout=30_000)
    assert "customer confirmed" in _fraud_row(page, tx).inner_text()
    shot(page, "lab-fraud-approved")


def test_async_retries_poison_event_lands_in_the_dead_letter_queue(page: Any) -> None:
    page.goto("/lab/demos/async-retries/")
    page.select_option("#id_function", "async-receipt")
    page.select_option("#id_time_scale", "0.01")  # retries after 0.6 s and 1.2 s
    page.click("button[value=poison]")
    # The newest event is this one: its row turns DEAD_LETTERED after the third failed try.
    page.wait_for_selector("#async-invocations tbody tr:first-child .status-dead-lettered", timeout=30_000)
    assert page.locator("#id_time_scale").input_value() == "0.01", "the page remembers the clock it ran with"
    page.wait_for_timeout(600)
    shot(page, "lab-async-retries")
    page.goto("/lab/dlq/")
    assert page.locator("#dlq tbody tr").count() >= 1
    shot(page, "lab-dlq")


def _both_widths(tab: Any, name: str, ready: str) -> None:
    """Screenshots at desktop and phone width; nothing may be wider than the phone's screen."""
    for size, suffix in ((DESKTOP, "1440"), (PHONE, "390")):
        tab.set_viewport_size(size)
        tab.wait_for_selector(ready)
        tab.wait_for_timeout(700)  # Plotly's resize
        shot(tab, f"{name}-{suffix}")
    assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_busy_comparison_shows_waiting_variants_and_an_invocation_s_queue_time(page: Any) -> None:
    import engine
    from lab import scenarios, services
    from tests.conftest import WORKER_CONCURRENCY
    from tests.lab import test_admission

    comparison = services.comparison_start(
        user=None, scenario="lab", variants=test_admission._crowd(), time_scale=test_admission.SCALE
    )
    page.goto(f"/lab/comparisons/{comparison.pk}/")
    page.wait_for_selector("#waiting-note")
    assert page.locator(".status-waiting").count() == 8
    assert page.locator(".status-waiting").first.inner_text() == "waiting for a worker"
    _both_widths(page, "lab-comparison-waiting", "#timelines-plot .main-svg")
    # Meanwhile invocations outside the lab queue behind the busy workers: their wait is drawn.
    # More of them than there are workers, each holding its worker until its Timeout: some wait
    # however far the lab has got (on a fast page load its first variants may have ended).
    payload = json.dumps(
        {"semantics": "AT_MOST_ONCE_PER_RETRY", "retry": {"kind": "none"}, "fault": {"kind": "timeout"}}
    )
    arns = [
        engine.client().invoke(
            FunctionName=scenarios.LAB_FUNCTION, InvocationType="Event", Payload=payload, TimeScale=0.05
        )["DurableExecutionArn"]
        for _ in range(WORKER_CONCURRENCY + 2)
    ]
    queued = _wait_for_queued_execution(arns)
    page.set_viewport_size(DESKTOP)
    page.goto(f"/executions/{queued}/")
    page.wait_for_selector("#timeline .main-svg")
    assert page.locator("#timeline .legendtext", has_text="Queued for a worker").count() == 1
    _both_widths(page, "execution-queued", "#timeline .main-svg")


def _wait_for_queued_execution(arns: list[str]) -> int:
    from engine import timeline
    from engine.contrib.django.models import Execution
    from tests.conftest import wait_until

    def ended_with_queue_time() -> str | None:
        data = [timeline.execution_timeline(arn) for arn in arns]
        if any(d["execution"]["status"] == "RUNNING" for d in data):
            return None
        return next((d["execution"]["arn"] for d in data if d["counters"]["queued_seconds"] > 0.5), "none")

    arn = wait_until(ended_with_queue_time, timeout=90, interval=0.5, message="the extra executions to end")
    assert arn != "none", "no invocation waited for a worker"
    return int(Execution.objects.get(arn=arn).pk)
