"""Issue #17 point 4 in a real browser: the fraud demo approved by the customer, who follows the
signed link in the "email" from a fresh browser with no session; the reused link is refused.
Screenshots at 1440 and 390 px, before and after answering, in tests/screenshots/."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from engine.contrib.django.models import Execution, Operation
from tests.browser.helpers import shot
from tests.browser.test_callbacks_browser import DESKTOP, PHONE, fits
from tests.conftest import wait_until

pytestmark = pytest.mark.browser


def both_widths(tab: Any, name: str) -> None:
    for label, viewport in (("1440", DESKTOP), ("390", PHONE)):
        tab.set_viewport_size(viewport)
        tab.wait_for_timeout(250)
        if label == "390":
            fits(tab)
        shot(tab, f"{name}-{label}")
    tab.set_viewport_size(DESKTOP)


def customer_tab(chromium: Any, web_server: str) -> tuple[Any, Any, list[str]]:
    """A tab in a brand-new browser context: no cookies, no session, nobody logged in."""
    context = chromium.new_context(viewport=DESKTOP, base_url=web_server)
    assert context.cookies() == []
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" and "410" not in m.text else None)
    return context, tab, problems


def submit_medium_risk(page: Any) -> Execution:
    tx = uuid.uuid4().hex[:6]
    page.goto("/lab/demos/fraud/")
    page.fill("#id_transaction_id", tx)
    page.click("text=6500 (medium)")
    page.select_option("#id_time_scale", "0.005")  # one day of callback timeout in about 7 minutes
    page.click("#submit-tx")
    page.wait_for_function(
        f"[...document.querySelectorAll('#fraud-callbacks .callback')].filter(c => c.innerText.includes('tx-{tx}'))"
        ".length == 2",
        timeout=30_000,
    )
    return Execution.objects.get(name=f"tx-{tx}", function_name="fraud-detection")


def test_the_fraud_demo_is_approved_through_the_customer_s_email_link_with_no_session(
    logged_in: Any, chromium: Any, web_server: str
) -> None:
    page = logged_in
    execution = submit_medium_risk(page)
    row = page.locator(f"#fraud-executions tr:has-text('{execution.name}')")
    assert row.locator(f"a[href='/executions/{execution.pk}/customer/']").count() == 1
    both_widths(page, "links-fraud-demo-waiting")
    # The operator opens the customer's inbox from the email's callback card on the demo page.
    card = page.locator(
        f"#fraud-callbacks .callback:has(a[href='/executions/{execution.pk}/'])", has_text="Verification by email"
    )
    card.locator("a.customer-link").click()
    page.wait_for_url(re.compile(rf".*/executions/{execution.pk}/customer/#msg-\d+$"))
    page.locator(".mail .cb-message, .mail .mail-body").first.wait_for()
    assert "Did you make this payment?" in page.locator(".mailbox").inner_text()
    assert page.locator(".phone .sms a[data-link=approve]").count() == 1
    both_widths(page, "links-inbox-waiting")
    approve = page.locator(".mail a[data-link=approve]").get_attribute("href")
    assert approve and "/answer/" in approve

    # The customer, twice: the link opened in two tabs of a browser with no session.
    context, customer, problems = customer_tab(chromium, web_server)
    second = context.new_page()
    response = customer.goto(approve)
    assert response.status == 200
    assert customer.locator("#link-page").get_attribute("data-state") == "confirm"
    matter = customer.locator("#link-page").inner_text()
    assert "6500" in matter and "Durable Lab Store" in matter and "did you just pay 6,500.00" in matter
    assert customer.locator("nav.nav").count() == 0  # not logged in: no operator navigation
    second.goto(approve)
    both_widths(customer, "links-confirm")
    assert not Operation.objects.filter(execution=execution, type="CALLBACK").exclude(status="STARTED").exists()
    assert Execution.objects.get(pk=execution.pk).status == "RUNNING", "opening the link answered nothing"

    customer.click("#confirm-answer")
    customer.wait_for_selector("#link-page[data-state=answered]")
    assert "Approved. Thank you." in customer.inner_text("h1")
    both_widths(customer, "links-approved")
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status == "SUCCEEDED", message="the approval")
    assert json.loads(Execution.objects.get(pk=execution.pk).result)["decision"] == "approved"

    # The same link again: the second tab's button, then the link itself.
    second.click("#confirm-answer")
    second.wait_for_selector("#link-page[data-state=refused]")
    assert "This request was already answered" in second.inner_text("h1")
    reused = customer.goto(approve)
    assert reused.status == 410
    assert "already answered" in customer.inner_text("h1")
    both_widths(customer, "links-reused")
    context.close()
    assert problems == []

    # The operator's view afterwards: the email says approved, its links are gone.
    page.reload()
    assert page.locator("a[data-link]").count() == 0
    assert "approved" in page.locator(".mailbox .msg-state").inner_text()
    both_widths(page, "links-inbox-answered")
    page.goto("/lab/demos/fraud/")
    page.wait_for_selector(f"#fraud-executions tr:has-text('{execution.name}') .decision-approved", timeout=30_000)
