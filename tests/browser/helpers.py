"""Helpers for the browser tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot to tests/screenshots/ (gitignored) for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
