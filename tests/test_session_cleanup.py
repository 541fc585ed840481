"""An interrupted test session leaves nothing running: when pytest is killed (SIGKILL, no
clean-up of its own), its worker, scheduler, web server, embedded PostgreSQL and embedded
broker go with it (tests/watchdog.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
HOLD = "DURABLE_HOLD_SESSION_OPEN"  # set only for the session the test below kills
TAG = "DURABLE_KILLED_SESSION_TAG"
SESSION_VARIABLES = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "DURABLE_DATA_DIR",
    "DURABLE_TEST_SESSION",
    "DJANGO_SETTINGS_MODULE",
}

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not os.environ.get(HOLD), reason="only the session that the test below kills runs this")
def test_hold_the_whole_stack_open(web_server: str) -> None:
    Path(os.environ[HOLD]).write_text(web_server)
    time.sleep(600)


def _processes_of(tag: str, folder: Path) -> list[psutil.Process]:
    """The killed session's processes: they carry its tag, or its folder on their command line."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(TAG) == tag or str(folder) in " ".join(proc.cmdline()):
                found.append(proc)
    return found


def _describe(procs: list[psutil.Process]) -> list[str]:
    described = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:150]}")
    return described


def test_a_killed_session_leaves_nothing_running() -> None:
    folder = Path(tempfile.mkdtemp(prefix="durable-killed-"))
    folder.chmod(0o755)  # the embedded PostgreSQL runs as pgserver's own user
    tag = uuid.uuid4().hex
    ready = folder / "ready"
    # Nothing configured: the killed session starts its own embedded servers, in ``folder``.
    # (What this session's conftest put in the environment goes too: a new session sets its own.)
    env = {k: v for k, v in os.environ.items() if k not in SESSION_VARIABLES}
    env.update({"TMPDIR": str(folder), HOLD: str(ready), TAG: tag, "DURABLE_TEST_DB": "durable_killed_session"})
    log = folder / "pytest.log"
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", f"{__file__}::test_hold_the_whole_stack_open", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert session.poll() is None, f"the session ended early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the session's stack did not come up:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        running = " ".join(" ".join(line.split()[1:]) for line in _describe(_processes_of(tag, folder)))
        for part in ("celery -A durable_site worker", "durable_scheduler", "gunicorn", "postgres", "valkey-server"):
            assert part in running, f"{part} is not among the session's processes: {running[:2000]}"

        session.kill()  # SIGKILL: pytest runs no clean-up of its own
        session.wait(timeout=10)
        deadline = time.monotonic() + 20
        while (left := _processes_of(tag, folder)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"still running after the session was killed: {_describe(left)}"
    finally:
        for proc in _processes_of(tag, folder):
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
