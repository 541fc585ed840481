"""The countdown's words (the browser's agreement is tested in tests/browser/test_callbacks_browser.py)."""

from __future__ import annotations

import pytest

from executions.templatetags.dashboard import countdown_text


@pytest.mark.parametrize(
    ("left", "words"),
    [
        (-1, "timed out"),
        (0, "timed out"),
        (0.4, "0 s left"),
        (42.7, "42 s left"),
        (61, "1 min 01 s left"),
        (3599, "59 min 59 s left"),
        (3661, "1 h 01 min left"),
        (200000, "2.3 d left"),
    ],
)
def test_countdown_words(left: float, words: str) -> None:
    assert countdown_text(left) == words
