"""Values every page's navigation needs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from executions import selectors


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The pending-callback badge, counted lazily: templates that never show it pay nothing."""
    if not request.user.is_authenticated:
        return {}
    return {"pending_callback_count": selectors.pending_callback_count}
