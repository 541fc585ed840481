"""The access-keys page in real headless Chromium: create, copy the secret once, sign with it, revoke."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.accesskeys.conftest import PASSWORD, lambda_client, make_user
from tests.accesskeys.urls import SEEN
from tests.browser.helpers import shot

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def log_in(chromium: Any, server: str, username: str) -> Any:
    context = chromium.new_context(viewport=DESKTOP, base_url=server)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("console", lambda msg: page.problems.append(msg.text) if msg.type == "error" else None)
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/executions/")
    return page


def both_widths(page: Any, name: str) -> None:
    for label, size in (("1440", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        shot(page, f"accesskeys-{name}-{label}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], f"{name} at {label} px is {width} px wide"
    page.set_viewport_size(DESKTOP)


def test_create_copy_sign_and_revoke_in_the_browser(chromium: Any, server: str) -> None:
    user = make_user("browser")
    page = log_in(chromium, server, user.username)
    page.click("text=Access keys")
    page.wait_for_url("**/account/keys/")
    assert page.locator("td.empty").inner_text().startswith("No access keys yet")
    both_widths(page, "empty")

    page.click("text=Create access key")
    page.wait_for_selector("#secret-access-key")
    key_id = page.inner_text("#access-key-id").strip()
    secret = page.inner_text("#secret-access-key").strip()
    assert f"export AWS_SECRET_ACCESS_KEY={secret}" in page.inner_text("#env-vars")
    page.click("button[data-copy='#secret-access-key']")
    page.wait_for_selector("button[data-copy='#secret-access-key']:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    both_widths(page, "created")

    lambda_client(server, key_id, secret).list_functions()
    assert SEEN[-1].username == user.username

    page.click("text=back to my keys")
    page.wait_for_url("**/account/keys/")
    assert secret not in page.content()
    assert page.locator("tr", has_text=key_id).locator(".status").inner_text() == "Active"
    both_widths(page, "with-keys")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text=key_id).locator("button", has_text="Revoke").click()
    page.wait_for_selector(".message.success")
    assert page.locator("tr", has_text=key_id).locator(".status").inner_text() == "Revoked"
    both_widths(page, "revoked")
    with pytest.raises(ClientError, match="UnrecognizedClientException"):
        lambda_client(server, key_id, secret).list_functions()
    assert page.problems == []
    page.context.close()
