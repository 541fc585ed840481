"""A worker's processes in PostgreSQL (issue 19): registration, the lease, and the control channel.

Each Celery worker's parent process registers itself (role "main") and each of its pool children
registers itself (role "pool") in ``durable_worker``. One daemon thread of the parent then keeps
the lease: every ``heartbeat_seconds()`` it renews the rows of its own processes (several workers
may share a host id, so it touches only its own) and stops the rows of children that are gone.
Between beats the same thread waits on ``LISTEN durable_control``, the channel by which another
host kills an invocation here ("kill now") or has a running one re-read its armed faults.

The Celery wiring (which signal calls what) is in ``engine.celery_tasks``; this module imports
no Celery, so the registry and the listener are tested as plain Python.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from engine import db, journal, journal_shipping
from engine.db import Conn
from engine.duties.loops import is_outage
from engine.duties.sweep import mark_invocation_lost
from engine.duties.unit import utcnow
from engine.scheduler import Outage
from engine.sql import Q
from engine.store import store
from engine.workers import heartbeat_seconds, host_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerIdentity:
    """Which rows of ``durable_worker`` are one Celery worker's: its host, its node name and the
    moment its parent started (a row from before is a previous worker's, whose pid came back)."""

    host_id: str
    hostname: str
    since: datetime

    def key(self) -> dict[str, Any]:
        return {"host_id": self.host_id, "hostname": self.hostname, "since": self.since}


def register_pool_process(hostname: str) -> None:
    """Register this pool child (called in the child as it starts). A database that cannot be
    reached costs only the record: the child still serves, and an invocation it runs is found
    lost by its deadline rather than by its host's lease."""
    identity = WorkerIdentity(host_id(), hostname, utcnow())
    # Everything this process runs may be lost with its host, out-of-process handlers included
    # (they run with no Timeout of the worker's own, so the journal would not ship them otherwise).
    journal_shipping.ship_from_this_process()
    try:
        with db.transaction() as conn:
            store.register_worker(conn, identity.key(), os.getpid(), "pool", utcnow())
    except Exception as exc:
        log.warning("pool process %s could not register in durable_worker: %s", os.getpid(), exc)


def own_children() -> set[int]:
    """The pids of this process's children (its pool), from /proc."""
    pid = os.getpid()
    try:
        return _children_from_task_files(pid)
    except OSError:  # a kernel without /proc/<pid>/task/<tid>/children
        return _children_by_scan(pid)


def _children_from_task_files(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children.update(int(child) for child in (task / "children").read_text().split())
    return children


def _children_by_scan(pid: int) -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _parent_of(int(entry.name)) == pid:
            children.add(int(entry.name))
    return children


def _parent_of(pid: int) -> int | None:
    try:
        # "pid (comm) state ppid …": comm may hold spaces and parentheses; the fields follow the last ")".
        return int(Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class WorkerHost:
    """The parent's registration, lease and control listener: one daemon thread."""

    identity: WorkerIdentity
    stopping: threading.Event = field(default_factory=threading.Event)
    registered: bool = False
    thread: threading.Thread | None = None

    @classmethod
    def for_node(cls, hostname: str) -> WorkerHost:
        return cls(WorkerIdentity(host_id(), hostname, utcnow()))

    def start(self) -> None:
        # This thread records kills through engine.db while Celery's main thread forks children.
        db.hold_lock_across_fork()
        self.thread = threading.Thread(target=self.run, name="durable-worker-lease", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """A clean shutdown: the thread ends and every row of this worker is stopped."""
        self.stopping.set()
        try:
            with db.transaction() as conn:
                store.stop_workers(conn, self.identity.key())
        except Exception as exc:  # the rows stay; the lease runs out instead
            log.warning("could not record this worker's stop in durable_worker: %s", exc)

    def run(self) -> None:
        """Keep the lease and listen until stopped; a failure (an outage, a bug) is logged once and
        waited out with a growing pause, never ending the thread: the worker goes on serving."""
        outage = Outage()
        while not self.stopping.is_set():
            try:
                with _control_connection(f"durable worker {self.identity.host_id} {os.getpid()}") as conn:
                    self._serve(conn, outage)
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("the worker's lease thread failed; going on")
                self.stopping.wait(outage.failed(exc))

    def _serve(self, conn: Conn, outage: Outage) -> None:
        if not self.registered:
            store.register_worker(conn, self.identity.key(), os.getpid(), "main", utcnow())
            self.registered = True
        conn.execute(Q.listen_control)
        outage.succeeded()
        beat = heartbeat_seconds()
        while not self.stopping.is_set():
            next_beat = time.monotonic() + beat
            self.renew(conn)
            for notify in conn.notifies(timeout=max(0.0, next_beat - time.monotonic())):
                try:
                    self.handle(notify.payload)
                except Exception:  # one message failed (a kill's record): the listener goes on
                    log.exception("could not act on the durable_control message %r", notify.payload[:200])
                if self.stopping.is_set():
                    return

    def renew(self, conn: Conn) -> None:
        pids = sorted({os.getpid(), *own_children()})
        store.renew_workers(conn, self.identity.key(), pids, timedelta(seconds=heartbeat_seconds()))

    def handle(self, payload: str) -> None:
        """One message of the control channel; one not meant for this worker is ignored."""
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignoring a malformed durable_control message: %r", payload[:200])
            return
        if isinstance(message.get("kill"), dict):
            self._kill(message["kill"])
        if isinstance(message.get("faults"), int):
            journal.signal_faults_changed(message["faults"])

    def _kill(self, kill: dict[str, Any]) -> None:
        """SIGKILL the pool child running the invocation, if it is this worker's and still runs
        that invocation (it may have ended and the child begun another), and record it killed at
        once, as ``kill_now`` does on its own host: Celery's parent notices a dead child only at
        its next pool maintenance, seconds later."""
        pid, execution_id, seq = kill.get("pid"), kill.get("execution_id"), kill.get("seq")
        if kill.get("host") != self.identity.host_id or not isinstance(pid, int) or pid not in own_children():
            return
        if not isinstance(execution_id, int) or not isinstance(seq, int):
            return
        with db.connection() as conn:
            if store.invocation_run_by(conn, execution_id, self.identity.host_id, pid) != seq:
                return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        log.warning("execution %s: killed process %s of invocation %s (kill now)", execution_id, pid, seq)
        mark_invocation_lost(execution_id, seq, "killed")


@contextlib.contextmanager
def _control_connection(name: str) -> Iterator[Conn]:
    """A connection of its own (autocommit, for LISTEN): never one of the pool's, which pool
    children inherit across fork. Its application_name says whose it is in pg_stat_activity."""
    dsn = db.dsn()
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5, row_factory=dict_row, application_name=name) as conn:
        yield conn
