"""The timer and recovery loop: fires due timers, recovers lost invocations, re-queues strays.

Timers live in PostgreSQL (never in a broker message), so waits of days survive restarts of
every process. The loop sleeps until the next due timer or a NOTIFY that a new one was set.

Nothing stops the loop but ``stop``: an item a duty fails on is counted and, failing again,
quarantined (``engine.duties.loops.guarded``); a database outage is waited out with a growing pause, and
the LISTEN connection is opened again once the server is back.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import psycopg

from engine import db, store
from engine.duties.loops import is_outage
from engine.duties.sweep import purge_expired, recover_lost_invocations, redispatch_stranded
from engine.duties.timers import fire_due_timers, next_timer_due
from engine.duties.unit import utcnow
from engine.sql import Q

log = logging.getLogger(__name__)
MAX_SLEEP = store.SCHEDULER_LOOKS_EVERY.total_seconds()  # timers due later are set without a NOTIFY
# A running invocation fires its own operation timers when it checkpoints or ends; the loop
# fires them only if they are still there this long after they came due (a stuck or busy
# invocation). Firing them at once made the ending invocation wait on the loop's row lock.
# At least MAX_SLEEP: a checkpoint does not wake the loop for the timers it holds back.
RUNNING_GRACE = store.SCHEDULER_LOOKS_EVERY
RECOVERY_EVERY = 0.5
REDISPATCH_EVERY = 10.0
PURGE_EVERY = 300.0
# Pauses between tries while the database cannot be reached: doubled from the first to the last.
OUTAGE_FIRST_PAUSE = 0.5
OUTAGE_LONGEST_PAUSE = 5.0


class Outage:
    """One database outage as the loop sees it: logged once as it starts and once as it ends."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.pause = OUTAGE_FIRST_PAUSE

    def failed(self, exc: BaseException) -> float:
        """Note a failed try; return how long to pause before the next one."""
        if self.since is None:
            self.since = time.monotonic()
            log.error("database unavailable, waiting for it: %s", str(exc).strip() or type(exc).__name__)
        pause, self.pause = self.pause, min(self.pause * 2, OUTAGE_LONGEST_PAUSE)
        return pause

    def succeeded(self) -> None:
        if self.since is not None:
            log.warning("database available again after %.1f s", time.monotonic() - self.since)
        self.since, self.pause = None, OUTAGE_FIRST_PAUSE


class _Duty:
    """A duty of the loop run every ``every`` seconds; a failure of the whole duty (not of an
    item, which the duty itself handles) is logged and tried again at its next turn."""

    def __init__(self, name: str, every: float, run: Callable[[], object]) -> None:
        self.name, self.every, self.run = name, every, run
        self.last = 0.0

    def run_if_due(self, now: float) -> None:
        if now - self.last < self.every:
            return
        self.last = now
        try:
            self.run()
        except Exception as exc:
            if is_outage(exc):
                raise
            log.exception("%s failed; trying again in %.1f s", self.name, self.every)


def run_forever(
    stop: threading.Event | None = None, extra_duties: Sequence[tuple[str, float, Callable[[], object]]] = ()
) -> None:
    """Run the loop until ``stop`` is set (or forever), with the embedding application's own
    ``extra_duties`` (name, seconds between runs, function) after the engine's."""
    stop = stop or threading.Event()
    duties = [
        _Duty("firing of due timers", 0.0, tick),
        _Duty("recovery of lost invocations", RECOVERY_EVERY, recover_lost_invocations),
        _Duty("re-dispatch", REDISPATCH_EVERY, redispatch_stranded),
        _Duty("purge of expired executions", PURGE_EVERY, purge_expired),
        *(_Duty(name, every, run) for name, every, run in extra_duties),
    ]
    outage = Outage()
    listener: psycopg.Connection | None = None
    try:
        while not stop.is_set():
            try:
                listener = listener or _listen()
                _turn(duties, listener)
            except Exception as exc:
                _close_quietly(listener)
                listener = None
                stop.wait(_pause_after(exc, outage))
                continue
            outage.succeeded()
    finally:
        _close_quietly(listener)


def _pause_after(exc: Exception, outage: Outage) -> float:
    """How long to pause after a turn failed: an outage backs off; anything else (a bug, not an
    item's fault: those the duties handle) is logged and the loop goes on after a second."""
    if is_outage(exc):
        db.drop_broken_connections()
        return outage.failed(exc)
    log.exception("the scheduler's turn failed; going on")
    return 1.0


def _turn(duties: list[_Duty], listener: psycopg.Connection) -> None:
    """One turn of the loop: the duties that are due, then sleep until a timer is due."""
    now = time.monotonic()
    for duty in duties:
        duty.run_if_due(now)
    _sleep_until_next(listener)


def _listen() -> psycopg.Connection:
    listener = psycopg.connect(db.dsn(), autocommit=True, connect_timeout=5)
    listener.execute(Q.listen_for_timers)
    return listener


def _close_quietly(listener: psycopg.Connection | None) -> None:
    """Close the LISTEN connection, which may be broken already."""
    if listener is not None:
        try:
            listener.close()
        except Exception:  # already broken: nothing to close cleanly
            log.debug("closing the LISTEN connection failed", exc_info=True)


def tick() -> int:
    try:
        return fire_due_timers(running_grace=RUNNING_GRACE)
    except psycopg.errors.SerializationFailure:
        return 0


def _sleep_until_next(listener: psycopg.Connection) -> None:
    due = next_timer_due(RUNNING_GRACE)
    timeout = MAX_SLEEP
    if due is not None:
        timeout = max(0.0, min(MAX_SLEEP, (due - utcnow()) / timedelta(seconds=1)))
    if timeout <= 0:
        return
    if select.select([listener.fileno()], [], [], timeout)[0]:
        for _ in listener.notifies(timeout=0):
            pass
