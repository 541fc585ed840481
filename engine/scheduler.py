"""The timer and recovery loop: fires due timers, recovers lost invocations, re-queues strays.

Timers live in PostgreSQL (never in a broker message), so waits of days survive restarts of
every process. The loop sleeps until the next due timer or a NOTIFY that a new one was set.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from datetime import timedelta

import psycopg

from engine import db, service, store

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


def run_forever(stop: threading.Event | None = None) -> None:
    """Run the loop until ``stop`` is set (or forever)."""
    stop = stop or threading.Event()
    listener = psycopg.connect(db.dsn(), autocommit=True)
    listener.execute("LISTEN durable_timers")
    last_recovery = last_redispatch = last_purge = 0.0
    try:
        while not stop.is_set():
            tick()
            now = time.monotonic()
            if now - last_recovery >= RECOVERY_EVERY:
                service.recover_lost_invocations()
                last_recovery = now
            if now - last_redispatch >= REDISPATCH_EVERY:
                service.redispatch_stranded()
                last_redispatch = now
            if now - last_purge >= PURGE_EVERY:
                service.purge_expired()
                last_purge = now
            _sleep_until_next(listener)
    finally:
        listener.close()


def tick() -> int:
    try:
        return service.fire_due_timers(running_grace=RUNNING_GRACE)
    except psycopg.errors.SerializationFailure:
        return 0


def _sleep_until_next(listener: psycopg.Connection) -> None:
    due = service.next_timer_due(RUNNING_GRACE)
    timeout = MAX_SLEEP
    if due is not None:
        timeout = max(0.0, min(MAX_SLEEP, (due - service.utcnow()) / timedelta(seconds=1)))
    if timeout <= 0:
        return
    if select.select([listener.fileno()], [], [], timeout)[0]:
        for _ in listener.notifies(timeout=0):
            pass
