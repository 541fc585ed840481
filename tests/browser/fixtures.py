"""Shared browser-test fixtures: a real web server and Debian's headless Chromium (no mocks)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_http(url: str, proc: subprocess.Popen[str], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web server exited early:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"web server not answering at {url}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def web_server(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The web server exactly as `make run` starts it (Gunicorn, DEBUG off, the collected static
    files) on a free port, against the session's test database and broker."""
    from durable_site.management.commands.durable_up import web_command

    port = _free_port()
    log = tmp_path_factory.mktemp("web") / "web.log"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", DURABLE_VERBOSE="1")  # every request in the log
    with log.open("w") as out:
        proc = subprocess.Popen(
            web_command(port),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http(url + "/accounts/login/", proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (make browser installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the tests make
    # (users, assertions) are still plain blocking calls, as Django's docs advise for Playwright.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
