"""Values every page's navigation needs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from executions import selectors
from executions.templatetags.dashboard import COUNTDOWN_WORDS


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The pending-callback badge, counted lazily: templates that never show it pay nothing."""
    if not request.user.is_authenticated:
        return {}
    # The countdown's words, for app.js (one table for server and browser).
    return {"pending_callback_count": selectors.pending_callback_count, "countdown_words": COUNTDOWN_WORDS}
