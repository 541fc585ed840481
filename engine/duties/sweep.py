"""Duties of the background loops: record invocations whose process died or outlived its
Timeout, queue again messages presumed lost, and delete executions past their retention."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg

from engine import db, journal
from engine.duties import unit
from engine.duties.claim import LEASE_GRACE
from engine.duties.end import apply_pending_finish, close_invocation, unstorable_journal_entry
from engine.duties.loops import guarded
from engine.duties.pause import settle_pause
from engine.duties.recovery import schedule_recovery
from engine.duties.transition import apply_deferred_outcomes
from engine.duties.unit import (
    guarded_unit_of_work,
    mark_undispatched,
    optimistically,
    save_execution,
    timeout_seconds,
    utcnow,
)
from engine.rows import Invocation
from engine.store import store
from engine.workers import host_id, lease_seconds

log = logging.getLogger(__name__)

REDISPATCH_AFTER = timedelta(seconds=30)


# A message not seen taken from the queue is sent again after this (doubled by each resend).
REDISPATCH_BACKSTOP = timedelta(minutes=5)


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Whether the process has died but its parent has not collected it yet (Linux).

    A Celery worker's parent collects a dead pool child only at its next pool maintenance, up
    to 5 s later; until then the signal test above finds the dead child alive."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state …": comm may hold spaces and parentheses, the state follows the last ")".
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def recover_lost_invocations(limit: int = 200) -> int:
    """Find invocations whose process died, whose host was lost, or that outlived their Timeout;
    record and fence them.

    A process of this host is checked by its pid. One of another host is lost with its host: one
    that registered worker processes (``durable_worker``) of which none renewed its lease, and
    the invocation's pid was one of them. An invocation of a host that never registered (an
    in-process run elsewhere) is left to its deadline. Several hosts may run this at once: the
    record is guarded (``_record_lost_once``), so an invocation is recorded lost once."""
    now, lease = utcnow(), timedelta(seconds=lease_seconds())
    host = host_id()
    with db.transaction() as conn:
        running = store.running_invocations(conn, now, limit)
        lost = _lost_hosts(conn, running, host, lease)
        # Every lost host with an invocation here still has unmarked rows, so it is among these.
        newly_lost = store.newly_lost_hosts(conn, lease)
    if newly_lost:
        # Before the records: a lost host is marked by the time its first invocation reads lost.
        _mark_hosts_lost(newly_lost)
        _resend_messages_taken_by_lost_hosts(newly_lost, now)
    recovered = 0
    for invocation in running:
        timed_out = now >= invocation.deadline + LEASE_GRACE
        crashed = invocation.worker == host and not _pid_alive(invocation.pid)
        host_lost = invocation.pid in lost.get(invocation.worker, ())
        if timed_out or crashed or host_lost:
            outcome = "timed_out" if timed_out and not (crashed or host_lost) else "crashed"
            record = partial(_record_lost, invocation.execution_id, invocation.seq, outcome, host_lost=host_lost)
            recovered += guarded("recovery", invocation.execution_id, record)
    return recovered


def _lost_hosts(conn: Any, running: list[Invocation], host: str, lease: timedelta) -> dict[str, set[int]]:
    """The other hosts of ``running`` that are lost, with their workers' pids; no query at all
    while every invocation runs on this host (one machine)."""
    others = sorted({i.worker for i in running if i.worker and i.worker != host})
    if not others:
        return {}
    return store.lost_hosts(conn, others, lease)


def _mark_hosts_lost(hosts: list[str]) -> None:
    """Note when a lost host was found gone (its rows' lost_at), for the workers page."""
    with db.transaction() as conn:
        for host in hosts:
            store.mark_host_lost(conn, host)


def _resend_messages_taken_by_lost_hosts(hosts: list[str], now: datetime) -> None:
    """A lost host may have taken messages into its prefetch without starting them; the broker
    gives them back only when its visibility timeout runs out (an hour on Redis). Every message
    sent before the loss was found is sent again now: the generation check drops the older copy
    wherever it is, so a message a live host still holds costs one message, not a second run."""
    sent = redispatch_stranded(now=now, taken_before=now)
    log.warning(
        "host(s) %s lost: their invocations are recorded and %s waiting message(s) sent again", ", ".join(hosts), sent
    )


def mark_invocation_lost(execution_id: int, seq: int, outcome: str) -> int:
    """Record a known-dead invocation at once (a kill the engine itself sent)."""
    return _record_lost(execution_id, seq, outcome)


def mark_process_lost(execution_id: int, pid: int) -> int:
    """Record the execution's invocation lost if process ``pid`` of this host was running it.

    Called by a Celery worker's parent process as soon as the pool child running the invocation
    is gone (a kill, a crash, the Timeout's watchdog), so the crash is recorded, and the function
    invoked again, at once, as Lambda reports a dead sandbox; the journal then says whether it was
    killed, timed out or crashed. The scheduler's liveness check remains the backstop (a whole
    worker lost, another host's worker).
    """
    with db.connection() as conn:
        seq = store.invocation_run_by(conn, execution_id, host_id(), pid)
    return 0 if seq is None else _record_lost(execution_id, seq, "crashed")


def _record_lost(execution_id: int, seq: int, outcome: str, *, host_lost: bool = False) -> int:
    """``host_lost``: the invocation's host is gone, so its replay record is the part shipped to
    PostgreSQL (``journal.read_entries``), not a file of this host."""
    try:
        return _record_lost_with(execution_id, seq, outcome, None, host_lost)
    except psycopg.DataError as exc:
        log.error("the journal of execution %s's invocation %s could not be stored: %s", execution_id, seq, exc)
        return _record_lost_with(execution_id, seq, outcome, [unstorable_journal_entry(exc)], host_lost)


def _record_lost_with(
    execution_id: int, seq: int, outcome: str, entries: list[dict[str, Any]] | None, host_lost: bool
) -> int:
    record = partial(_record_lost_once, execution_id, seq, outcome, entries, host_lost)
    return optimistically("record of a lost invocation", f"execution {execution_id}", record)


def _record_lost_once(
    execution_id: int, seq: int, outcome: str, entries: list[dict[str, Any]] | None, host_lost: bool, _attempt: int
) -> int:
    with db.connection() as conn:
        seen, invocation = store.execution_with_invocation(conn, execution_id, seq)
        if seen is None or invocation is None or invocation.ended_at is not None:
            return 0
        # The worker's parent may see the SIGKILL of "kill now" before kill_now records it.
        if outcome == "crashed" and store.killed_now(conn, execution_id, seq):
            outcome = "killed"
    if entries is None:
        entries = journal.read_entries(invocation.request_id, host_lost=host_lost)
    with guarded_unit_of_work(seen) as (work, execution):
        kinds = {entry.get("t") for entry in entries}
        if "fault" in kinds:
            outcome = "killed"
        elif "timeout" in kinds or (outcome == "crashed" and work.now >= invocation.deadline):
            outcome = "timed_out"
        error = LOST_ERRORS[outcome]
        close_invocation(work, execution, invocation, outcome, dict(error), entries)
        if not apply_pending_finish(work, execution) and execution["status"] == "RUNNING":
            apply_deferred_outcomes(work, execution)
            schedule_recovery(work, execution, dict(error))
            settle_pause(work, execution)
        save_execution(work.conn, execution)
    return 1


LOST_ERRORS = {
    "timed_out": {"ErrorType": "Sandbox.Timedout", "ErrorMessage": "Task timed out"},
    "crashed": {"ErrorType": "Runtime.ExitError", "ErrorMessage": "Runtime exited without providing a reason"},
    "killed": {"ErrorType": "Runtime.ExitError", "ErrorMessage": "Invocation was killed by fault injection"},
}


def redispatch_stranded(limit: int = 100, now: datetime | None = None, taken_before: datetime | None = None) -> int:
    """Queue again the invocations whose message is presumed lost (``store.presumed_lost``); return
    how many were sent. Each waiting invocation has at most one message presumed in flight: a
    slow queue is not flooded. A message carries its generation; the worker drops one that a
    newer message for the same invocation has superseded."""
    with db.connection() as conn:
        rows = store.presumed_lost(conn, now or utcnow(), REDISPATCH_AFTER, REDISPATCH_BACKSTOP, limit, taken_before)
    return sum(guarded("redispatch", row["id"], partial(_redispatch, row["id"])) for row in rows)


def _redispatch(execution_id: int) -> int:
    dispatcher = unit.current_dispatcher()
    if dispatcher is None:
        return 0
    with db.connection() as conn:
        marked = store.mark_redispatched(conn, execution_id, utcnow())
    if marked is None:
        return 0
    resend = getattr(dispatcher, "redispatch", None)
    timeout = timeout_seconds(marked["fn_timeout"])
    try:
        if resend is not None:
            resend(execution_id, timeout, marked["redispatches"])
        else:
            dispatcher.invoke(execution_id, timeout)
    except Exception as exc:  # the broker is down: not this execution's fault
        log.warning("could not queue an invocation of execution %s again (%s)", execution_id, exc)
        mark_undispatched([execution_id])
        return 0
    return 1


def purge_expired(limit: int = 500) -> int:
    """Delete executions whose retention period has passed since they ended (frees their names)."""
    with db.transaction() as conn:
        return store.purge_expired(conn, limit)
