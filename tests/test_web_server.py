"""`make run`'s web server for real (Gunicorn, gthread): over a socket, the request line reaches
Django as sent, static files come hashed, gzipped and cached for good, the terminal stays quiet
unless verbose, and SIGTERM lets a request in flight finish."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from durable_site.gunicorn_config import graceful_timeout
from durable_site.management.commands.durable_up import web_command
from durable_site.supervisor import STOP_GRACE
from tests.browser.fixtures import _free_port
from tests.conftest import ROOT, wait_until

ARN = "arn:aws:lambda:us-east-1:123456789012:function:hello-steps:$LATEST/durable-execution/run-1/abc"
# As botocore sends an ARN in a path: every ':', '$' and '/' percent-encoded.
ENCODED_ARN = ARN.replace(":", "%3A").replace("$", "%24").replace("/", "%2F")


class WebServer:
    def __init__(self, log: Path, **env: str) -> None:
        self.port = _free_port()
        self.log_path = log
        base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_DEBUG", "DURABLE_VERBOSE"}}
        # The project's settings plus an echo route (tests/web/urls.py).
        base.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="tests.web.settings")
        with log.open("w") as out:
            self.process = subprocess.Popen(
                web_command(self.port),
                cwd=ROOT,
                env={**base, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(lambda: self.process.poll() is not None or "web ready on" in self.log(), 60, message="web ready")
        assert self.process.poll() is None, self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, target: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        """One request with ``target`` sent exactly as given (http.client does not re-encode)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextmanager
def running(tmp_path: Path, **env: str) -> Iterator[WebServer]:
    server = WebServer(tmp_path / "web.log", **env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with running(tmp_path_factory.mktemp("quiet")) as server:
        yield server


def test_a_percent_encoded_arn_reaches_the_view_and_the_raw_request_uri_with_it(quiet_server: WebServer) -> None:
    target = f"/_echo/durable-executions/{ENCODED_ARN}/history?MaxItems=5"
    status, _, body = quiet_server.get(target)
    assert status == 200, body[-2000:]
    seen = json.loads(body)
    # WSGI decodes the path (%2F becomes '/'); the request line as sent is still there, for
    # SigV4's canonical request and to split the ARN from the route.
    assert seen["raw_uri"] == target
    assert seen["rest"] == f"durable-executions/{ARN}/history"
    assert "%3A" in seen["raw_uri"] and "%24" in seen["raw_uri"] and "%2F" in seen["raw_uri"]


def test_static_files_are_hashed_gzipped_and_cached_for_good(quiet_server: WebServer) -> None:
    status, _, page = quiet_server.get("/accounts/login/")
    assert status == 200
    stylesheet = re.search(rb'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page)
    assert stylesheet is not None, page[:2000]
    status, headers, body = quiet_server.get(stylesheet.group(1).decode(), **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Cache-Control"] == "max-age=315360000, public, immutable"
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == (ROOT / "static" / "css" / "app.css").read_bytes()


def test_the_quiet_terminal_shows_the_ready_line_and_no_request(quiet_server: WebServer) -> None:
    quiet_server.get("/_echo/quiet-please")
    time.sleep(0.5)
    log = quiet_server.log()
    assert "web ready on http://127.0.0.1:" in log, log
    assert "quiet-please" not in log and "Booting worker" not in log, log


def test_verbose_shows_every_request(tmp_path: Path) -> None:
    with running(tmp_path, DURABLE_VERBOSE="1") as server:
        server.get("/_echo/say-it")
        wait_until(lambda: '"GET /_echo/say-it HTTP/1.1" 200' in server.log(), 10, message="the access line")
        assert "Booting worker" in server.log()


def test_sigterm_lets_a_request_in_flight_finish_within_the_supervisors_grace(tmp_path: Path) -> None:
    assert graceful_timeout < STOP_GRACE
    with running(tmp_path, DURABLE_VERBOSE="1") as server:
        answers: list[int] = []
        request = threading.Thread(target=lambda: answers.append(server.get("/_echo/slow?sleep=2")[0]))
        request.start()
        time.sleep(0.5)
        started = time.monotonic()
        server.process.terminate()
        assert server.process.wait(timeout=STOP_GRACE) == 0, server.log()
        request.join(timeout=10)
        assert answers == [200], server.log()
        assert time.monotonic() - started < STOP_GRACE


def test_a_request_after_the_database_ended_its_connections_gets_a_fresh_one(tmp_path: Path) -> None:
    """Django's pool checks a connection as a request takes it (CONN_HEALTH_CHECKS): after the
    server ended them all (a restart, an administrator), the next request is served on a new one."""
    name = f"durable-web-{uuid.uuid4().hex[:8]}"
    with running(tmp_path, PGAPPNAME=name) as server:
        status, _, body = server.get("/_db/")
        assert status == 200, body[-2000:]
        before = json.loads(body)["pid"]
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchone()
        assert row is not None and row[0] >= 1
        for _ in range(3):
            status, _, body = server.get("/_db/")
            assert status == 200, body[-2000:]
            assert json.loads(body)["pid"] != before
