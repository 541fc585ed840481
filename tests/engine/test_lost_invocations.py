"""A process that died is dead to the sweeper even before its parent collects it."""

from __future__ import annotations

import os
import subprocess
import time

from engine.duties.sweep import _is_zombie, _pid_alive


def test_a_dead_child_not_yet_collected_by_its_parent_is_not_alive() -> None:
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while _pid_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # not waited for: once it exits, it stays a zombie
        assert not _pid_alive(child.pid)
        assert _is_zombie(child.pid)
    finally:
        child.wait()


def test_a_running_process_is_alive() -> None:
    assert _pid_alive(os.getpid())
    assert not _is_zombie(os.getpid())
