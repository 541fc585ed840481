"""Issue #22 points 5, 14 and 16 in a real browser: an operator approving a human verification,
on a desktop and on a phone. Screenshots at 1440 and 390 px, empty and busy, in tests/screenshots/."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from engine.contrib.django.models import Execution, Operation
from lab import services
from tests.browser.helpers import shot
from tests.conftest import wait_until

pytestmark = pytest.mark.browser

PAGES = (
    ("list", "/executions/"),
    ("inbox", "/callbacks/"),
    ("fraud", "/lab/demos/fraud/"),
    ("lab", "/lab/"),
    ("replay", "/lab/demos/replay-not-retry/"),
    ("idempotency", "/lab/demos/idempotency/"),
    ("express", "/lab/demos/express/"),
    ("async", "/lab/demos/async-retries/"),
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def fraud(amount: float, scale: float) -> Execution:
    tx = uuid.uuid4().hex[:8]
    arn = services.fraud_submit(user=None, transaction_id=tx, amount=amount, time_scale=scale).arn
    return Execution.objects.get(arn=arn)


def card_of(page: Any, execution: Execution, channel: str = "email") -> Any:
    """The card of one channel's callback: named by its execution's link, or on that execution's page."""
    scope = "#callbacks " if page.url.endswith(f"/executions/{execution.pk}/") else ""
    link = "" if scope else f":has(a[href='/executions/{execution.pk}/'])"
    card = page.locator(f"{scope}.callback{link}:has-text('Verification by {channel}')")
    card.wait_for(timeout=60_000)  # the inbox polls; the callbacks arrive after the first invocation
    card.locator(".cb-message").wait_for(timeout=30_000)
    return card


def seconds_left(text: str) -> int:
    match = re.fullmatch(r"(?:(\d+) min )?(\d+) s left", text.strip())
    assert match, text
    return int(match.group(1) or 0) * 60 + int(match.group(2))


# The outermost elements reaching past the screen's right edge, to say what overflows.
WIDEST = """width => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 1 && !e.parentElement.closest('.scroll-x, .card.flush'))
  .filter(e => !(e.parentElement.getBoundingClientRect().right > width + 1))
  .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def fits(page: Any, width: int = 390) -> None:
    """No horizontal page overflow, and every nav link on screen (the nav wraps, nothing is cut)."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url}: page is {scroll} px wide; too wide: {page.evaluate(WIDEST, width)}"
    for box in page.locator("nav.nav a").evaluate_all("els => els.map(e => e.getBoundingClientRect().toJSON())"):
        assert box["width"] > 0 and box["left"] >= 0 and box["right"] <= width, (page.url, box)


def test_the_inbox_card_shows_the_amount_the_message_and_a_countdown_that_runs(logged_in: Any) -> None:
    page = logged_in
    execution = fraud(6500, scale=0.005)
    page.goto("/callbacks/")
    card = card_of(page, execution)
    facts = card.locator("dl.kv").inner_text()
    assert "amount" in facts and "6500" in facts and "Durable Lab Store" in facts
    assert "did you just pay 6,500.00 at Durable Lab Store" in card.locator(".cb-message").inner_text()
    assert "sms" in card.locator(".cb-siblings").inner_text() and "waiting" in card.locator(".cb-siblings").inner_text()
    countdown = card.locator("time.countdown")
    assert "UTC" in countdown.get_attribute("title")
    first = seconds_left(countdown.inner_text())
    assert 300 < first <= 432
    page.wait_for_timeout(2200)
    second = seconds_left(countdown.inner_text())
    assert second < first
    page.wait_for_timeout(3500)  # the inbox refreshes every 3 s: a swapped-in card counts on, never back
    assert seconds_left(countdown.inner_text()) <= second - 2
    shot(page, "cb-inbox-busy-1440")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    fits(page)
    button = card.locator("button:has-text('Approve')")
    button.wait_for(state="visible")  # the inbox may be refreshing its cards right now
    approve = button.bounding_box()
    assert approve["height"] >= 40 and approve["width"] >= 100  # big enough to tap
    shot(page, "cb-inbox-busy-390")

    card.locator("input[name=note]").fill("called the customer: it was her")
    card.locator("button:has-text('Approve')").click()
    page.wait_for_selector("#callback-notices .ok-box:has-text('Approved by')")
    shot(page, "cb-inbox-approved-390")
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status == "SUCCEEDED", message="the approval")


def test_a_late_approve_says_it_came_too_late(logged_in: Any) -> None:
    page = logged_in
    execution = fraud(6500, scale=0.0001)  # one day in 8.6 s: the operator is too slow on purpose
    page.goto("/callbacks/")
    card = card_of(page, execution)
    card_id = card.get_attribute("id")
    # Typing a note keeps the inbox from refreshing the card away while the timeout passes.
    card.locator("input[name=note]").fill("looked at it, fine")
    pk = int(card_id.removeprefix("cb-"))
    wait_until(lambda: Operation.objects.get(pk=pk).status == "TIMED_OUT", timeout=60, message="the timeout")
    page.locator(f"#{card_id} button:has-text('Approve')").click()
    late = page.locator(f"#{card_id} .too-late")
    late.wait_for()
    text = late.inner_text()
    assert text.startswith("Too late: this callback timed out at ") and "the execution took its timeout path" in text
    assert re.search(r"\((\d+) s before you answered\)", text)
    # Answered, the inbox refreshes again (the execution took its timeout path, so its cards go),
    # and the notice above it stays.
    page.wait_for_function(
        f"!document.querySelector(\"#inbox .callback a[href='/executions/{execution.pk}/']\")", timeout=15_000
    )
    assert "Too late" in page.locator("#callback-notices").inner_text()
    shot(page, "cb-inbox-too-late-1440")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    fits(page)
    shot(page, "cb-inbox-too-late-390")


def test_phone_width_pages_fit_and_the_nav_shows_every_link(logged_in: Any) -> None:
    page = logged_in
    for label, viewport in (("1440", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        for name, url in PAGES:
            page.goto(url)
            if label == "390":
                fits(page)
            shot(page, f"cb-{name}-before-{label}")
    execution = fraud(6500, scale=0.005)
    page.set_viewport_size(PHONE)
    page.goto("/lab/demos/fraud/")
    card = card_of(page, execution)
    assert "6,500.00" in card.inner_text() and card.locator("time.countdown").is_visible()
    fits(page)
    shot(page, "cb-fraud-busy-390")
    page.locator("#fraud-callbacks").scroll_into_view_if_needed()
    shot(page, "cb-fraud-callbacks-390", full_page=False)
    page.goto(f"/executions/{execution.pk}/")
    card_of(page, execution, "sms")
    page.wait_for_selector("#timeline .main-svg")
    page.wait_for_timeout(500)
    fits(page)
    shot(page, "cb-execution-busy-390")
    shot(page, "cb-execution-top-390", full_page=False)
    page.locator("#timeline-card").scroll_into_view_if_needed()
    shot(page, "cb-execution-timeline-390", full_page=False)
    page.locator("#callbacks").scroll_into_view_if_needed()
    shot(page, "cb-execution-callbacks-390", full_page=False)
    page.goto("/executions/")
    fits(page)
    shot(page, "cb-list-busy-390")
    page.goto("/callbacks/")
    fits(page)
    page.set_viewport_size(DESKTOP)
    for name, url in (
        ("fraud", "/lab/demos/fraud/"),
        ("execution", f"/executions/{execution.pk}/"),
        ("list", "/executions/"),
    ):
        page.goto(url)
        page.wait_for_timeout(500)
        shot(page, f"cb-{name}-busy-1440")
    sms = Operation.objects.filter(execution=execution, type="CALLBACK").first()
    page.goto("/callbacks/")
    page.locator(f"#cb-{sms.pk} button:has-text('Reject')").click()
    page.wait_for_selector(f"#cb-{sms.pk} .ok-box:has-text('Rejected by')")
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status != "RUNNING", message="the rejection")


COUNTDOWN_SAMPLES = [-5, 0, 0.4, 1, 42.7, 59.9, 60, 61, 599, 3599, 3600, 3661, 86399, 86400, 200000]


def test_the_browser_counts_down_in_the_server_s_words(logged_in: Any) -> None:
    """One wording table (COUNTDOWN_WORDS): what app.js writes each second is what the server wrote."""
    from executions.templatetags.dashboard import countdown_text

    logged_in.goto("/callbacks/")
    shown = logged_in.evaluate("values => values.map(v => window.durableCountdownText(v))", COUNTDOWN_SAMPLES)
    assert shown == [countdown_text(v) for v in COUNTDOWN_SAMPLES]
