"""Small formatting filters for the dashboard templates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html

from demos import EXAMPLE_INPUTS

register = template.Library()


@register.filter
def duration(value: Any) -> str:
    """A timedelta or a number of seconds, in the unit a person reads fastest."""
    if value is None or value == "":
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{seconds / 86400:.1f} d"


def since_text(value: datetime, now: datetime | None = None) -> str:
    """Time from ``value`` until now (negative spans read as 'in …')."""
    delta = (now or timezone.now()) - value
    if delta.total_seconds() < 0:
        return f"in {duration(-delta)}"
    return f"{duration(delta)} ago"


@register.filter
def since(value: datetime | None) -> str:
    """A relative time that keeps itself current: static/js/app.js re-renders every
    ``time[data-since]`` each second; the absolute UTC time is its tooltip."""
    if value is None:
        return "—"
    return format_html(
        '<time datetime="{}" data-since title="{} UTC">{}</time>', value.isoformat(), utc(value), since_text(value)
    )


@register.filter
def countdown(deadline: datetime | None) -> str:
    """Time left until ``deadline``, counted down each second by static/js/app.js from the seconds
    left at render time (a phone's clock may be off; the server's is the one the timers use)."""
    if deadline is None:
        return "—"
    left = (deadline - timezone.now()).total_seconds()
    return format_html(
        '<time class="countdown" datetime="{}" data-countdown="{}" title="Times out at {} UTC">{}</time>',
        deadline.isoformat(),
        f"{left:.1f}",
        utc(deadline),
        countdown_text(left),
    )


# The countdown's words, in one place: "expired", then (below this many whole seconds left,
# words), the last for any longer time. The server writes them at render time; static/js/app.js, which counts
# each countdown down every second, reads this same table from the page (base.html).
COUNTDOWN_WORDS: dict[str, Any] = {
    "expired": "timed out",
    "rules": [
        (60, "{s} s left"),
        (3600, "{m} min {ss} s left"),
        (86400, "{h} h {mm} min left"),
        (None, "{d} d left"),
    ],
}


def countdown_text(left: float) -> str:
    """The words for ``left`` seconds: "7 min 12 s left", "42 s left", "timed out"."""
    if left <= 0:
        return str(COUNTDOWN_WORDS["expired"])
    seconds = int(left)
    words = next(w for below, w in COUNTDOWN_WORDS["rules"] if below is None or seconds < below)
    return str(words).format(
        s=seconds,
        ss=f"{seconds % 60:02d}",
        m=seconds // 60,
        h=seconds // 3600,
        mm=f"{seconds % 3600 // 60:02d}",
        d=f"{seconds / 86400:.1f}",
    )


@register.filter
def pretty_json(value: Any) -> str:
    """Indent JSON text (or any JSON-able value); leave anything else as it is."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    # A "\ud800" escape in the JSON decodes to a lone surrogate, which no page can encode: shown as the escape.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@register.filter
def status_class(status: str | None) -> str:
    return f"status-{(status or 'unknown').lower().replace('_', '-')}"


@register.filter
def utc(value: datetime | None) -> str:
    """Milliseconds matter here: invocations and attempts are often a few ms apart."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.simple_tag
def example_inputs() -> dict[str, str]:
    """Each demo function's example input as indented JSON, for the Start page to prefill."""
    return {name: json.dumps(value, indent=2, ensure_ascii=False) for name, value in EXAMPLE_INPUTS.items()}
