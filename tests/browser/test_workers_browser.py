"""The workers & queue page (issue 19 point 4) in a real browser, empty and busy, on a desktop
(1440 px) and a phone (390 px): nothing wider than the screen, and the page follows the engine's
record as it changes. Screenshots in /tmp/shots_workers/ for people to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.dashboard import shared_workers
from tests.dashboard.shared_workers import Scene

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots_workers")
VIEWPORTS = (("1440", {"width": 1440, "height": 900}), ("390", {"width": 390, "height": 844}))

# The outermost elements reaching past the screen's right edge, to say what overflows.
WIDEST = """width => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 1 && !e.parentElement.closest('.scroll-x, .card.flush'))
  .filter(e => !(e.parentElement.getBoundingClientRect().right > width + 1))
  .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def sql(statement: str, params: list[Any] | None = None) -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(statement, params or [])


@pytest.fixture
def committed_scene() -> Iterator[Scene]:
    """The test-client tests' known state, committed so the web server process sees it."""
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn, conn.cursor() as cursor:
        scene = shared_workers.build(cursor)
    yield scene
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn, conn.cursor() as cursor:
        shared_workers.delete(cursor, scene)


def renew(scene: Scene) -> None:
    """Renew the made-up live host's lease, as its Celery parent would."""
    sql("UPDATE durable_worker SET heartbeat_at = now() WHERE host_id = %s AND stopped_at IS NULL", [scene.live])


def fits(page: Any, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"page is {scroll} px wide at {width}: too wide: {page.evaluate(WIDEST, width)}"


def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_busy_page_at_desktop_and_phone_widths(logged_in: Any, committed_scene: Scene) -> None:
    page, scene = logged_in, committed_scene
    for label, viewport in VIEWPORTS:
        renew(scene)
        page.set_viewport_size(viewport)
        page.goto("/workers/")
        live = page.locator(f"[data-host='{scene.live}']")
        assert live.get_attribute("data-state") == "live"
        busy = live.locator("tr[data-pid='101']")
        assert busy.get_attribute("data-state") == "busy"
        href = busy.locator("a").first.get_attribute("href")
        assert href == f"/executions/{scene.executions['busy']}/"
        assert page.locator(f"[data-host='{scene.lost}']").get_attribute("data-state") == "lost"
        assert page.locator(f"[data-host='{scene.lost}'] .lost-box").is_visible()
        assert page.locator(f"#waiting tr[data-execution='{scene.executions['waits-long']}']").is_visible()
        assert page.locator("nav.nav a[aria-current='page']").inner_text() == "Workers"
        fits(page, viewport["width"])
        shoot(page, f"workers-busy-{label}")
        live.screenshot(path=str(SHOTS / f"workers-busy-{label}-host.png"))
        page.locator("#queue").screenshot(path=str(SHOTS / f"workers-busy-{label}-queue.png"))


def test_the_page_follows_the_record_without_a_reload(logged_in: Any, committed_scene: Scene) -> None:
    """htmx polls the live part: a host that says goodbye reads stopped within a few seconds."""
    page, scene = logged_in, committed_scene
    renew(scene)
    page.goto("/workers/")
    assert page.locator(f"[data-host='{scene.live}']").get_attribute("data-state") == "live"
    sql("UPDATE durable_worker SET stopped_at = now() WHERE host_id = %s AND stopped_at IS NULL", [scene.live])
    page.locator(f"[data-host='{scene.live}'][data-state='stopped']").wait_for(timeout=15_000)
    assert page.locator(f"[data-host='{scene.live}'] tr[data-state='busy']").count() == 0


def test_empty_page_at_desktop_and_phone_widths(logged_in: Any, stack: Any) -> None:
    """No worker registered: the session's worker is stopped and its registration removed, then
    started again (it registers anew)."""
    page = logged_in
    stack.stop_worker()
    try:
        sql("DELETE FROM durable_worker")
        for label, viewport in VIEWPORTS:
            page.set_viewport_size(viewport)
            page.goto("/workers/")
            empty = page.locator("#no-workers")
            assert empty.is_visible()
            assert "No worker has registered yet" in empty.inner_text()
            assert "make run" in empty.inner_text() and "make worker" in empty.inner_text()
            assert page.locator("[data-n='hosts-live']").inner_text() == "0"
            fits(page, viewport["width"])
            shoot(page, f"workers-empty-{label}")
    finally:
        stack.start_worker()
