"""A small process supervisor for `make run`: restarts a crashed part with backoff, ends all.

Each part runs in its own session (so its own process group): stopping a part kills its whole
group (a Celery worker's pool children included), and Ctrl-C on the terminal reaches only the
supervisor, which stops the parts in order. The state of every part (pid, restarts, last exit)
is kept in a JSON status file, which also lets the next `make run` find and end the processes
of a supervisor that was killed before it could clean up.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
# A part that ran this long without exiting is healthy again: its next crash restarts in 1 s.
STABLE_AFTER = 60.0
STOP_GRACE = 15.0
_PR_SET_PDEATHSIG = 1


@dataclass
class Part:
    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    delay: float = FIRST_DELAY
    restart_at: float | None = None
    last_exit: int | None = None
    history: list[str] = field(default_factory=list)

    def status(self) -> dict[str, Any]:
        running = self.process is not None and self.process.poll() is None
        return {
            "pid": self.process.pid if running and self.process else None,
            "create_time": _create_time(self.process.pid) if running and self.process else None,
            "state": "running" if running else ("restarting" if self.restart_at else "stopped"),
            "restarts": self.restarts,
            "last_exit_code": self.last_exit,
        }


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the supervisor dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


class Supervisor:
    """Run ``parts`` until :meth:`request_stop`; restart any that exits, with backoff."""

    def __init__(self, parts: list[Part], status_path: Path, say: Callable[[str], None], cwd: Path) -> None:
        self.parts = parts
        self.status_path = status_path
        self.say = say
        self.cwd = cwd
        self.stopping = False
        self.extra_status: dict[str, Any] = {}

    def start_all(self) -> None:
        for part in self.parts:
            self._start(part)
        self.write_status()

    def request_stop(self, *_: Any) -> None:
        self.stopping = True

    def run(self, tick: Callable[[], None] | None = None, interval: float = 0.5) -> None:
        """Watch the parts until a stop is requested (``tick`` runs on every round)."""
        while not self.stopping:
            self.poll()
            if tick is not None:
                tick()
            time.sleep(interval)

    def poll(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        changed = False
        for part in self.parts:
            if part.process is not None and part.process.poll() is not None:
                self._schedule_restart(part, part.process.returncode, now)
                changed = True
            elif part.restart_at is not None and now >= part.restart_at and not self.stopping:
                self._start(part)
                changed = True
            elif part.process is not None and now - part.started_at >= STABLE_AFTER:
                part.delay = FIRST_DELAY
        if changed:
            self.write_status()

    def _start(self, part: Part) -> None:
        part.restart_at = None
        try:
            part.process = subprocess.Popen(
                part.command, cwd=self.cwd, env=part.env, start_new_session=True, preexec_fn=_die_with_parent
            )
        except OSError as error:  # out of processes or file handles: a passing condition
            part.restart_at = time.monotonic() + part.delay
            self.say(f"{part.name} could not start ({error}); retry in {part.delay:g} s")
            part.delay = min(MAX_DELAY, part.delay * 2)
            return
        part.started_at = time.monotonic()

    def _schedule_restart(self, part: Part, code: int, now: float) -> None:
        _kill_group(part.process, signal.SIGKILL)  # what the part left behind (pool children)
        part.process = None
        part.last_exit = code
        if self.stopping:
            return
        part.restarts += 1
        part.restart_at = now + part.delay
        self.say(f"{part.name} exited (code {code}); restart {part.restarts} in {part.delay:g} s")
        part.delay = min(MAX_DELAY, part.delay * 2)

    def stop_all(self) -> None:
        """SIGTERM every part, wait up to STOP_GRACE, then SIGKILL what is left of its group.

        Only the part's own process gets the SIGTERM: a Celery worker then ends its pool
        children itself (a warm shutdown), which a SIGTERM to each child would turn into errors.
        """
        self.stopping = True
        running = [part.process for part in self.parts if part.process is not None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in running:
            _kill_group(proc, signal.SIGKILL)  # children that outlived their parent included
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for part in self.parts:
            part.process = None
            part.restart_at = None
        self.write_status(stopped=True)

    def write_status(self, stopped: bool = False) -> None:
        """Write the status file atomically (the dashboard or a user may read it at any time)."""
        status = {
            "supervisor_pid": None if stopped else os.getpid(),
            "supervisor_create_time": None if stopped else _create_time(os.getpid()),
            "updated_at": time.time(),
            "parts": {part.name: part.status() for part in self.parts},
            **self.extra_status,
        }
        tmp = self.status_path.with_name(f".{self.status_path.name}.tmp")
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(status, indent=2))
            tmp.replace(self.status_path)
        except OSError as error:  # informational only: a full disk must not stop the stack
            self.say(f"could not write {self.status_path}: {error}")


def _kill_group(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the part leads its own group: pgid == pid


def live_previous_supervisor(status_path: Path) -> int | None:
    """Return the pid of another supervisor still running on this status file, if any."""
    status = read_status(status_path)
    pid = status.get("supervisor_pid")
    if pid and pid != os.getpid() and _same_process(pid, status.get("supervisor_create_time")):
        return int(pid)
    return None


def end_leftovers(status_path: Path) -> list[str]:
    """End the parts a killed supervisor left running; return their names."""
    ended = []
    for name, part in read_status(status_path).get("parts", {}).items():
        pid = part.get("pid")
        if pid and _same_process(pid, part.get("create_time")):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            ended.append(name)
    return ended


def _same_process(pid: int, create_time: float | None) -> bool:
    """True if ``pid`` is still the process recorded (not a new one that reuses the pid)."""
    return create_time is not None and _create_time(pid) == create_time


def read_status(status_path: Path) -> dict[str, Any]:
    try:
        return json.loads(status_path.read_text())
    except (OSError, ValueError):
        return {}
