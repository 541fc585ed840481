"""The navigation's callbacks badge stays live: every page polls a small partial for it."""

from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse

from executions import selectors

BADGE = reverse("executions:callback_badge")


def test_every_page_polls_the_badge(viewer_client: Client) -> None:
    page = viewer_client.get(reverse("executions:list")).content.decode()
    badge = re.search(r'<span id="callback-badge"[^>]*>', page)
    assert badge is not None
    assert f'hx-get="{BADGE}"' in badge.group(0) and "every 5s" in badge.group(0)


def test_the_partial_is_the_badge_with_the_current_count(viewer_client: Client) -> None:
    answer = viewer_client.get(BADGE)
    assert answer.status_code == 200
    body = answer.content.decode()
    assert body.startswith('<span id="callback-badge"') and "<nav" not in body
    count = selectors.pending_callback_count()
    assert (f'title="{count} pending">{count}</span>' in body) is (count > 0)


def test_a_logged_out_poll_swaps_nothing() -> None:
    assert Client().get(BADGE).status_code == 204
