"""Seed 000 and seed 001 in Python and TypeScript, in a real headless Chromium: the language choice
on both demo pages, the side-by-side counts once each language's run has finished, at desktop and
phone widths (screenshots in DURABLE_SCREENSHOTS, else tests/screenshots/)."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("DURABLE_SCREENSHOTS") or ROOT / "tests" / "screenshots")
WIDTHS = {"1440": {"width": 1440, "height": 900}, "390": {"width": 390, "height": 844}}


@pytest.fixture
def page(staff_tab: Any, ts_stack: Any) -> Any:
    """A logged-in staff user's tab; page errors and console errors fail the test."""
    return staff_tab("polyglot")


def shots(tab: Any, name: str) -> None:
    """The page at each width; the page itself never scrolls sideways (wide tables scroll in their card)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, viewport in WIDTHS.items():
        tab.set_viewport_size(viewport)
        tab.evaluate("window.scrollTo(0, 0)")  # else the sticky navigation lands mid-page in a full-page shot
        tab.wait_for_timeout(400)  # charts redraw at the new width
        overflow = tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} at {width} px scrolls sideways by {overflow} px"
        tab.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    tab.set_viewport_size(WIDTHS["1440"])


def test_seed_000_both_languages_side_by_side(page: Any) -> None:
    page.goto("/lab/demos/replay-not-retry/")
    assert page.locator("#language-choice input[value=both]").is_checked()
    shots(page, "seed-000-demo-empty")
    page.select_option("#id_time_scale", "0.5")
    page.click("#run-demo")
    page.wait_for_url(re.compile(r".*/lab/comparisons/\d+/$"))
    page.wait_for_selector("#seed-counts tbody tr[data-scenario='3']")
    page.wait_for_selector("#timelines-plot .main-svg")
    shots(page, "seed-000-both-running")
    page.wait_for_selector("text=all variants finished", timeout=300_000)
    page.wait_for_timeout(800)
    cells = page.locator("#seed-counts td[data-col=runs]")
    assert cells.count() == 8
    verdicts = page.locator("#seed-counts td[data-col=verdict]").all_inner_texts()
    assert len(verdicts) == 4 and all(v.startswith(("✓", "≈")) for v in verdicts), verdicts
    assert page.locator("#seed-counts .says .bad").count() == 0
    assert page.locator("#comparison-table tbody tr").count() == 8
    shots(page, "seed-000-both-finished")


def test_fraud_in_both_languages_answered_from_the_page(page: Any) -> None:
    page.goto("/lab/demos/fraud/")
    shots(page, "fraud-demo-before")
    tx = f"b{uuid.uuid4().hex[:6]}"
    page.fill("#id_transaction_id", tx)
    page.check("#language-choice input[value=both]")
    page.select_option("#id_time_scale", "0.001")
    page.click("#submit-tx")
    page.wait_for_load_state("networkidle")
    rows = page.locator("#fraud-executions tbody tr")
    assert sorted(rows.nth(i).get_attribute("data-language") for i in range(2)) == ["python", "typescript"]
    # Four verification cards: email and SMS for each language's execution.
    page.wait_for_function("document.querySelectorAll('#fraud-callbacks [data-callback]').length >= 4")
    shots(page, "fraud-both-waiting")
    from engine.contrib.django.models import Invocation
    from tests.conftest import wait_until

    # Answer once each execution's first invocation has suspended, as a person would.
    wait_until(
        lambda: Invocation.objects.filter(execution__name=f"tx-{tx}", seq=1, ended_at__isnull=False).count() == 2,
        timeout=60,
        message="both first invocations to suspend",
    )
    for function in ("fraud-detection", "fraud-detection-ts"):
        card = (
            page.locator("#fraud-callbacks [data-callback]")
            .filter(has=page.get_by_role("link", name=f"{function} / tx-{tx}", exact=True))
            .first
        )
        card.locator("button:has-text('Approve')").click()
        page.wait_for_selector(f"#callback-notices :text('tx-{tx}')")
        page.reload()
        page.wait_for_load_state("networkidle")
    page.wait_for_selector(f"tr[data-transaction='tx-{tx}'] td[data-col=verdict] .ok", timeout=90_000)
    shots(page, "fraud-both-finished")
