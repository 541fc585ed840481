"""Ends everything a test session started once that session is gone, even after a SIGKILL.

Started by ``tests/conftest.py`` as ``python -m tests.watchdog <pytest pid>``, in a session of
its own (a Ctrl-C on the terminal must not end it first). The processes of the test session
are those whose environment carries its ``DURABLE_TEST_SESSION`` value: they inherit it from
pytest however they were started (the worker's pool children, the daemonized embedded
PostgreSQL and broker, Chromium), which a process group or PR_SET_PDEATHSIG would not cover.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import psutil

SESSION_VARIABLE = "DURABLE_TEST_SESSION"
SERVERS = {"postgres", "valkey-server"}


def session_processes(marker: str) -> list[psutil.Process]:
    """Every other process whose environment names this test session."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(SESSION_VARIABLE) == marker:
                found.append(proc)
    return found


def end_session(marker: str) -> None:
    """Kill the clients first, stop the embedded servers cleanly, then kill whatever is left."""
    for proc in session_processes(marker):
        with contextlib.suppress(psutil.Error):
            if proc.name() not in SERVERS:
                proc.kill()
    from durable_site import embedded  # reads DURABLE_DATA_DIR: the session's own folder

    with contextlib.suppress(Exception):
        embedded.stop_embedded_broker(timeout=5)
    with contextlib.suppress(Exception):
        embedded.stop_embedded_database(timeout=10)
    for proc in session_processes(marker):
        with contextlib.suppress(psutil.Error):
            proc.kill()


def main(parent_pid: int) -> None:
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    marker = os.environ[SESSION_VARIABLE]
    while os.getppid() == parent_pid:  # once pytest is gone this process is reparented
        time.sleep(0.2)
    end_session(marker)


if __name__ == "__main__":
    main(int(sys.argv[1]))
