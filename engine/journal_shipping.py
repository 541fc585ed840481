"""Shipping a running invocation's journal to PostgreSQL, so that losing its host loses at most
the last moments of its record (issue 19 point 3).

The journal file (``engine.journal``) is the full record, ingested when the invocation ends; it
is on the local disk, out of reach if the whole host is lost. So in a worker process the journal
also keeps the JSON lines it writes in memory, and one background thread per process (started by
the process's first shipped invocation) sends them as a chunk to ``durable_journal_chunk`` every
``DURABLE_JOURNAL_SHIP_MS`` (default 300 ms) after the first line written since the last chunk,
on a connection of its own in autocommit. The handler's thread only appends to a list: no commit,
no round trip on the step's hot path. A SIGKILL of the process (or of its host) loses at most the
lines of the last interval. The sweep that records a lost host's invocation reads the chunks
(``engine.journal.read_entries(request_id, host_lost=True)``); once an invocation's record is
ingested its chunks are deleted (``engine.journal.discard``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg

from engine import db
from engine.sql import Q

log = logging.getLogger(__name__)

DEFAULT_SHIP_MS = 300
# How long the end of an invocation waits for a shipment of its journal that is under way, so
# that no chunk of it is written after its record is ingested (and its chunks deleted). A shipment
# takes a millisecond; only a database that does not answer makes this wait at all long.
RETIRE_WAIT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 3


def ship_seconds() -> float | None:
    """The interval between shipments (``DURABLE_JOURNAL_SHIP_MS``, default 300); None if 0 (off)."""
    raw = os.environ.get("DURABLE_JOURNAL_SHIP_MS") or ""
    try:
        ms = int(raw) if raw else DEFAULT_SHIP_MS
    except ValueError:
        raise ValueError(f"DURABLE_JOURNAL_SHIP_MS must be a whole number of ms, got {raw!r}") from None
    if ms != 0 and not 10 <= ms <= 60_000:
        raise ValueError(f"DURABLE_JOURNAL_SHIP_MS must be 0 (off) or between 10 and 60000, got {raw!r}")
    return ms / 1000 if ms else None


class Shipped(Protocol):
    """What the shipper needs of a journal (``engine.journal.Journal``)."""

    request_id: str
    execution_id: int | None
    invocation_seq: int | None

    def note_shipped(self) -> None: ...

    def take_unshipped(self) -> list[str]: ...

    def put_back(self, lines: list[str]) -> None: ...


def chunk_text(lines: list[str]) -> str:
    """The JSON lines as one JSON array that jsonb accepts.

    ``json.dumps`` writes NUL as ``\\u0000`` and a lone surrogate as ``\\udXXX``, both refused by
    jsonb: such a chunk is written again with that text escaped, as the engine stores it elsewhere
    (``engine.db.escape_document``). Only a chunk holding such an escape pays for the second pass.
    """
    text = "[" + ",".join(lines) + "]"
    if "\\u0000" in text or "\\ud" in text:
        return json.dumps(db.escape_document(json.loads(text)))
    return text


_starting = threading.Lock()


def _interval() -> float:
    try:
        return ship_seconds() or DEFAULT_SHIP_MS / 1000
    except ValueError:  # refused where shipping is decided; the thread keeps the default
        return DEFAULT_SHIP_MS / 1000


class Shipper:
    """The process's shipping thread and the journals it ships."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._members = threading.Lock()  # guards _journals
        self._shipping = threading.Lock()  # held by a shipment: retire waits for it
        self._wake = threading.Event()
        self._journals: list[Shipped] = []
        self._conn: psycopg.Connection[Any] | None = None

    def follow(self, journal: Shipped) -> Callable[[], None]:
        """Ship ``journal`` from now on; return what its writer calls when a first line waits."""
        with _starting:
            if self._pid != os.getpid():  # first use in this process: no thread of a parent survives a fork
                self._start()
        with self._members:
            self._journals.append(journal)
        return self._wake.set

    def retire(self, journal: Shipped) -> None:
        """Ship ``journal`` no more, once a shipment of it under way (if any) is done."""
        acquired = self._shipping.acquire(timeout=RETIRE_WAIT_SECONDS)
        try:
            with self._members:
                self._journals = [j for j in self._journals if j is not journal]
        finally:
            if acquired:
                self._shipping.release()

    def ship(self) -> int:
        """Send each followed journal's lines written since its last chunk; return the chunks sent."""
        sent = 0
        with self._shipping:
            with self._members:
                journals = list(self._journals)
            for journal in journals:
                lines = journal.take_unshipped()
                if lines and self._send(journal, lines):
                    sent += 1
        return sent

    def _start(self) -> None:
        self._pid, self._conn = os.getpid(), None
        self._members, self._shipping, self._wake = threading.Lock(), threading.Lock(), threading.Event()
        self._journals = []
        threading.Thread(target=self._run, name="durable-journal-shipper", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(_interval())  # lines gather for one interval: one chunk, one round trip
            self._wake.clear()  # before taking the lines: a line written after this wakes us again
            try:
                self.ship()
            except Exception:  # this thread must outlive any failure; the lines stay in the file
                log.exception("shipping the journal failed")

    def _send(self, journal: Shipped, lines: list[str]) -> bool:
        if journal.execution_id is None or journal.invocation_seq is None:
            return False
        try:
            # Said in the file first: whoever ingests it then deletes this invocation's chunks.
            journal.note_shipped()
            self._connection().execute(
                Q.ship_journal_chunk,
                {
                    "request_id": journal.request_id,
                    "execution_id": journal.execution_id,
                    "invocation_seq": journal.invocation_seq,
                    "entries": chunk_text(lines),
                },
            )
        except (psycopg.Error, OSError) as exc:
            log.warning("could not ship the journal of %s (%s); trying again", journal.request_id, exc)
            journal.put_back(lines)
            self._drop_connection()
            self._wake.set()  # the lines wait in the buffer: try again after an interval
            return False
        return True

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                db.dsn(),
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="durable-journal-shipper",
            )
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                log.debug("closing the shipper's connection failed", exc_info=True)


shipper = Shipper()

# Processes that run invocations whose handler runs elsewhere (a runtime process, engine/runtimes)
# never pass a Timeout to the journal; such a worker process opts in with ``ship_from_this_process``.
_enabled_in: int | None = None


def ship_from_this_process() -> None:
    """Ship the journals of every invocation this process runs (a worker process calls this)."""
    global _enabled_in
    _enabled_in = os.getpid()


def shipping_here(may_be_killed: bool) -> bool:
    """Whether this process ships its journals: a worker child (it may be killed: it runs with a
    Timeout) or a process that opted in; never the in-process dispatchers of tests and benchmarks."""
    return (may_be_killed or _enabled_in == os.getpid()) and ship_seconds() is not None


def shipped_entries(request_id: str) -> list[dict[str, Any]]:
    """Every entry shipped for the invocation, in the order written."""
    with db.connection() as conn:
        rows = conn.execute(Q.journal_chunks, {"request_id": request_id}).fetchall()
    return [entry for row in rows for entry in row["entries"]]


def delete_chunks(request_id: str) -> None:
    """Delete the invocation's chunks, its record having been ingested; a failure leaves them to
    the execution's purge (they cascade with it) rather than failing the duty that ingested it."""
    try:
        with db.connection() as conn:
            conn.execute(Q.delete_journal_chunks, {"request_id": request_id})
    except psycopg.Error as exc:
        log.warning("could not delete the shipped journal of %s (%s)", request_id, exc)
