"""The invocation journal: what a worker process saw while it ran one invocation.

An SDK instrumentation plugin (registered through the ``aws_durable_execution.plugins`` entry
point, enabled by ``DURABLE_EXECUTION_PLUGINS=durable-lab``) records each step body's start
and end; a logging handler and a stdout tee record the invocation's log lines. Entries go to
a per-invocation JSON-lines file, flushed line by line but never fsynced: no database commit
is added to the hot path, and the file outlives a SIGKILL of the process. The engine ingests
the file when the invocation completes, or when the sweeper finds the invocation lost. In a
worker process the lines are also shipped to PostgreSQL while the invocation runs
(``engine.journal_shipping``), so that a lost host's invocation can be recorded from them.

The same hooks fire armed faults ("kill at body start", "kill after the body, before its
completion is checkpointed") and the Timeout watchdog kills the process at the deadline.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from aws_durable_execution_sdk_python.plugin import (
    DurableInstrumentationPlugin,
    InvocationStartInfo,
    OperationType,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
)

from engine import journal_shipping

MAX_LOG_LINES = 2000


def journal_dir() -> Path:
    return _journal_dir(os.environ.get("DURABLE_DATA_DIR") or "")


@functools.lru_cache(maxsize=8)
def _journal_dir(data_dir: str) -> Path:
    # Resolving the default path costs several stat calls, three times per invocation: once will do.
    return Path(data_dir or Path(__file__).resolve().parent.parent / ".data") / "journal"


def journal_path(request_id: str) -> Path:
    return journal_dir() / f"{request_id}.jsonl"


def fault_signal_path(execution_id: int) -> Path:
    """Touched by ``signal_faults_changed``: tells a running invocation to re-read its armed faults."""
    return journal_dir() / f"faults-{execution_id}.signal"


def signal_faults_changed(execution_id: int) -> None:
    path = fault_signal_path(execution_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _open_for_append(path: Path) -> io.TextIOWrapper:
    """Open a journal file, creating the directory only when it is missing: a ``mkdir`` per
    invocation is a failed system call and a caught exception on the hot path."""
    try:
        return path.open("a", encoding="utf-8")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("a", encoding="utf-8")


_MTIME_TICK_NS = 20_000_000


def _signal_mark(path: str) -> int:
    """The signal file's mtime, or -1 (never equal to a later look) while it is too fresh to trust.

    File timestamps come from the kernel's coarse clock (a few ms a tick): a second touch within
    the tick of the one seen leaves the mtime as it was. So a touch that recent keeps counting as
    unseen, and the next hook reads the armed faults again.
    """
    try:
        mtime = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0
    return mtime if time.time_ns() - mtime > _MTIME_TICK_NS else -1


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Journal:
    """Append-only, line-flushed record of one invocation in this process."""

    def __init__(
        self,
        request_id: str,
        faults: list[dict[str, Any]],
        kill_on_fault: bool,
        execution_id: int | None = None,
        invocation_seq: int | None = None,
        *,
        ship: bool = False,
    ) -> None:
        self.request_id = request_id
        self.execution_id = execution_id
        self.invocation_seq = invocation_seq
        self.path = journal_path(request_id)
        self._file = _open_for_append(self.path)
        self._lock = threading.Lock()
        self._faults = [dict(f) for f in faults]
        self._kill_on_fault = kill_on_fault
        self._signal = str(fault_signal_path(execution_id)) if execution_id is not None else None
        self._signal_seen = _signal_mark(self._signal) if self._signal else 0
        self._log_lines = 0
        self.step = threading.local()
        # Lines written since the last shipment (None: not shipped), and how to wake the shipper.
        self._unshipped: list[str] | None = None
        self._wake_shipper: Callable[[], None] | None = None
        self._noted_shipped = False
        if ship:
            self._unshipped = []
            self._wake_shipper = journal_shipping.shipper.follow(self)

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps({"at": _now(), **entry}, default=str)
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()
                if self._unshipped is not None:
                    self._unshipped.append(line)  # all the hot path pays for shipping
                    if len(self._unshipped) == 1 and self._wake_shipper is not None:
                        self._wake_shipper()

    def note_shipped(self) -> None:
        """Called by the shipper's thread before the journal's first chunk: the file then says
        it has chunks, and whoever ingests it (this process, or its parent if it dies) deletes
        them (``read_entries``, ``discard``)."""
        with self._lock:
            if not self._file.closed and not self._noted_shipped:
                self._file.write(json.dumps({"at": _now(), "t": SHIPPED}) + "\n")
                self._file.flush()
                self._noted_shipped = True

    def take_unshipped(self) -> list[str]:
        """The lines written since the last call (the shipper's thread takes them)."""
        with self._lock:
            lines = self._unshipped
            if not lines:
                return []
            self._unshipped = []
        return lines

    def put_back(self, lines: list[str]) -> None:
        """Lines whose shipment failed go before the ones written since, to be shipped again."""
        with self._lock:
            if self._unshipped is not None:
                self._unshipped[:0] = lines

    def log(self, level: str, logger: str, message: str) -> None:
        if self._log_lines >= MAX_LOG_LINES:
            return
        self._log_lines += 1
        self.write(
            {
                "t": "log",
                "level": level,
                "logger": logger,
                "message": message[:4000],
                "op_id": getattr(self.step, "op_id", None),
            }
        )

    def arm(self, fault: dict[str, Any]) -> None:
        """Add a fault armed during this invocation (already stored by ``engine.faults.arm``)."""
        with self._lock:
            if all(known["id"] != fault["id"] for known in self._faults):
                self._faults.append(dict(fault))

    def _refresh_faults(self) -> None:
        """Faults armed after this invocation began: one stat per body hook, a query only on change.

        The stat is the price of seeing a fault armed while the invocation runs at the very next
        hook; ``os.stat`` of a prepared ``str`` path is the cheapest form of it (~1.7 µs).
        """
        if self._signal is None or self.execution_id is None:
            return
        seen = _signal_mark(self._signal)
        if seen == self._signal_seen != -1:
            return
        self._signal_seen = seen
        from engine import db
        from engine.store import store

        with db.transaction() as conn:
            for fault in store.armed_faults(conn, self.execution_id):
                self.arm(dict(fault))

    def fault_due(self, name: str | None, phase: str) -> dict[str, Any] | None:
        self._refresh_faults()
        for fault in self._faults:
            if not fault.get("fired") and fault["phase"] == phase and fault["step_name"] == name:
                fault["fired"] = True
                return fault
        return None

    def body_started(self, op_id: str, name: str | None, attempt: int) -> dict[str, Any] | None:
        """A step body begins (this thread's log lines are its own until it ends); return the
        armed fault due at its start, if any."""
        self.step.op_id, self.step.attempt = op_id, attempt
        self.write({"t": "body_start", "op_id": op_id, "name": name, "attempt": attempt})
        return self.fault_due(name, "body_start")

    def body_ended(self, op_id: str, name: str | None, outcome: str) -> dict[str, Any] | None:
        """A step body ended (``succeeded`` or ``failed``); return the armed fault due after it."""
        self.write({"t": "body_end", "op_id": op_id, "outcome": outcome})
        self.step.op_id = self.step.attempt = None
        return self.fault_due(name, "after_body")

    def fire(self, fault: dict[str, Any]) -> None:
        """Kill this process now, as a Lambda sandbox dies: no error, no unsent checkpoint."""
        self.write({"t": "fault", "fault_id": fault["id"], "phase": fault["phase"], "step_name": fault["step_name"]})
        if self._kill_on_fault:
            os.kill(os.getpid(), signal.SIGKILL)

    def close(self) -> None:
        if self._unshipped is not None:
            # No chunk of it may land after its file is ingested: the file is the full record.
            journal_shipping.shipper.retire(self)
        with self._lock:
            self._file.close()
            self._unshipped = None


# The journal of the invocation this process runs: one at a time, as in a Lambda sandbox and a
# Celery prefork child (one task per child). The log handler, the stdout tee and the Timeout
# watchdog that go with it are process-wide too. A process that runs several invocations at
# once (the in-process test dispatcher) gets their log lines and body runs mixed in whichever
# journal is current; their outcomes and histories, which the duties record, are unaffected.
_current: Journal | None = None


def current() -> Journal | None:
    """The journal of the invocation this process is running, if any."""
    return _current


def current_step() -> tuple[str | None, int | None]:
    """(op_id, attempt) of the step body running on this thread, if any."""
    journal = _current
    if journal is None:
        return None, None
    return getattr(journal.step, "op_id", None), getattr(journal.step, "attempt", None)


class JournalPlugin(DurableInstrumentationPlugin):
    """Records step bodies; fires armed faults at body start and after the body."""

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        journal = _current
        if journal is None or info.operation_type != OperationType.STEP:
            return
        attempt = info.attempt or 1  # the SDK reports the 1-based attempt (StepContext.attempt)
        fault = journal.body_started(info.operation_id, info.name, attempt)
        if fault is not None:
            journal.fire(fault)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        journal = _current
        if journal is None or info.operation_type != OperationType.STEP:
            return
        fault = journal.body_ended(info.operation_id, info.name, info.outcome.value.lower())
        if fault is not None:
            journal.fire(fault)


class JournalPluginFactory:
    """Entry point ``durable-lab``: one plugin per invocation (the SDK's factory protocol)."""

    def create_plugin(self, info: InvocationStartInfo) -> DurableInstrumentationPlugin:
        return JournalPlugin()


plugin_factory = JournalPluginFactory()


class _JournalLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        journal = _current
        if journal is not None and not record.name.startswith(("engine", "celery", "kombu", "psycopg")):
            journal.log(record.levelname, record.name, self.format(record))


class _StdoutTee(io.TextIOBase):
    """Handler output (``print``) goes both to the real stream and into the journal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        journal = _current
        if journal is not None and text.strip():
            journal.log("INFO", "stdout", text.rstrip("\n"))
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()


@contextmanager
def recording(
    request_id: str,
    faults: list[dict[str, Any]],
    deadline_seconds: float | None,
    execution_id: int | None = None,
    invocation_seq: int | None = None,
) -> Iterator[Journal]:
    """Open the invocation's journal, capture logs and stdout, and arm the Timeout watchdog.

    ``deadline_seconds`` set means this process may be killed (a worker child): faults and the
    watchdog SIGKILL it, exactly as a Lambda sandbox dies when its Timeout passes.
    """
    global _current
    may_be_killed = deadline_seconds is not None
    ship = execution_id is not None and journal_shipping.shipping_here(may_be_killed)
    journal = Journal(request_id, faults, may_be_killed, execution_id, invocation_seq, ship=ship)
    handler = _JournalLogHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    saved_stdout = sys.stdout
    _current = journal
    root.addHandler(handler)
    sys.stdout = _StdoutTee(saved_stdout)
    if deadline_seconds is not None:
        _watchdog.arm(deadline_seconds, journal)
    try:
        yield journal
    finally:
        if deadline_seconds is not None:
            _watchdog.disarm()
        sys.stdout = saved_stdout
        root.removeHandler(handler)
        _current = None
        journal.close()


def _timeout(journal: Journal) -> None:
    journal.write({"t": "timeout"})
    os.kill(os.getpid(), signal.SIGKILL)


class _Watchdog:
    """One thread per process that kills it when the running invocation's Timeout has passed.

    A ``threading.Timer`` per invocation cost a thread start and exit, ~0.2 ms of CPU, in every
    invocation. This thread is started by a process's first armed invocation (a forked child
    starts its own) and then only waits: arming wakes it to look at the new deadline; disarming
    leaves it to wake at the old one, find nothing armed (or a later deadline) and wait again.
    """

    def __init__(self) -> None:
        self._pid: int | None = None
        self._cond = threading.Condition()
        self._armed: tuple[float, Journal] | None = None

    def arm(self, seconds: float, journal: Journal) -> None:
        if self._pid != os.getpid():  # first use in this process: no thread of a parent survives a fork
            self._pid, self._cond, self._armed = os.getpid(), threading.Condition(), None
            threading.Thread(target=self._watch, name="durable-timeout-watchdog", daemon=True).start()
        with self._cond:
            self._armed = (time.monotonic() + seconds, journal)
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._armed = None

    def _watch(self) -> None:
        with self._cond:
            while True:
                if self._armed is None:
                    self._cond.wait()
                    continue
                deadline, journal = self._armed
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    _timeout(journal)
                    return
                self._cond.wait(remaining)


_watchdog = _Watchdog()


# The journal line that says the invocation has shipped chunks (never returned as an entry), and
# the request ids read here that have some: their ``discard`` deletes them.
SHIPPED = "shipped"
_has_chunks: set[str] = set()

HOST_LOST = "host lost"


def read_entries(request_id: str, *, host_lost: bool = False) -> list[dict[str, Any]]:
    """Return the journal's entries (a torn last line from a killed process is skipped).

    ``host_lost``: the invocation ran on a host that is gone (issue 19), so its file is out of
    reach and its record is what was shipped to PostgreSQL while it ran, which may lack the last
    moments: an entry ``record_incomplete`` at the end says so, for the timeline to show."""
    if host_lost:
        return _shipped_record(request_id)
    entries, shipped = _file_entries(request_id)
    if shipped:
        _has_chunks.add(request_id)
    return entries


def _file_entries(request_id: str) -> tuple[list[dict[str, Any]], bool]:
    """The file's entries, and whether it says chunks of it were shipped."""
    path = journal_path(request_id)
    if not path.exists():
        return [], False
    entries, shipped = [], False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("t") == SHIPPED:
            shipped = True
        else:
            entries.append(entry)
    return entries, shipped


def live_entries(request_id: str) -> list[dict[str, Any]]:
    """A running invocation's entries so far: its file if it runs on this host, else what its
    worker on another host has shipped (a read model's view; the last interval may be missing)."""
    if journal_path(request_id).exists():
        return _file_entries(request_id)[0]
    return journal_shipping.shipped_entries(request_id)


def _shipped_record(request_id: str) -> list[dict[str, Any]]:
    entries = journal_shipping.shipped_entries(request_id)
    _has_chunks.add(request_id)
    last = entries[-1].get("at") if entries else None
    return [*entries, {"t": "record_incomplete", "reason": HOST_LOST, "at": _now(), "last_shipped_at": last}]


def discard(request_id: str) -> None:
    """Forget an ingested invocation's journal: its file, and its shipped chunks if reading it
    found some (the in-process dispatchers of tests and benchmarks ship nothing: a set lookup is
    all they pay here)."""
    journal_path(request_id).unlink(missing_ok=True)
    if request_id in _has_chunks:
        _has_chunks.discard(request_id)
        journal_shipping.delete_chunks(request_id)
