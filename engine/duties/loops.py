"""What keeps the background loops going: a failing execution is counted and, after
QUARANTINE_AFTER failures in a row, quarantined; a database outage is waited out.

The failure counts are per process on purpose: each loop process judges what it saw itself.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from engine import db
from engine.duties.unit import ExecutionContended, utcnow
from engine.errors import InvalidParameterValueException, ResourceNotFoundException
from engine.store import store

log = logging.getLogger(__name__)
T = TypeVar("T")

QUARANTINE_AFTER = 3


# (loop, execution id) -> failures in a row and when the first of them happened, in this process.
_failures: dict[tuple[str, int], tuple[int, datetime]] = {}


# Errors that mean the database cannot serve anyone for now, whatever the work: connection
# failures (class 08), a server shutting down or starting (57P01-03), insufficient resources such
# as too many connections (class 53).
_OUTAGE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable, rather than that the work is bad."""
    if isinstance(exc, PoolTimeout | psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    sqlstate = exc.sqlstate
    return sqlstate is None or sqlstate.startswith(_OUTAGE_SQLSTATES)


# How long a worker that has run a handler waits for the database to record its outcome.
OUTCOME_PATIENCE = 120.0


def through_outages(work: Callable[[], T], what: str, patience: float = OUTCOME_PATIENCE) -> T:
    """Return ``work()``, tried again with a growing pause while the database cannot be reached,
    for up to ``patience`` seconds. For work that must not be lost once done, such as recording
    the outcome of a handler that has already run."""
    give_up = time.monotonic() + patience
    pause = 0.5
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() + pause > give_up:
                raise
            log.warning("database unavailable while %s (%s); trying again in %.1f s", what, exc, pause)
        time.sleep(pause)
        db.drop_broken_connections()
        pause = min(pause * 2, 10.0)


def guarded(kind: str, execution_id: int, work: Callable[[], int]) -> int:
    """Run a background loop's ``work`` on one execution; return what it returns, or 0 if it failed.

    A failure is logged and counted, never raised, so that the loop goes on with the other
    executions; after ``QUARANTINE_AFTER`` failures in a row the execution is quarantined
    (marked, shown on its page, and left alone by the loops). A database outage is raised: the
    loop waits it out. A serialization failure or deadlock is left to the next round.
    """
    try:
        done = work()
    except Exception as exc:
        if is_outage(exc):
            raise
        if isinstance(exc, psycopg.errors.TransactionRollback | ExecutionContended):
            log.info("%s of execution %s: %s; trying again next round", kind, execution_id, exc)
            return 0
        _failed(kind, execution_id, exc)
        return 0
    _failures.pop((kind, execution_id), None)
    return done


def _failed(kind: str, execution_id: int, exc: Exception) -> None:
    failures, first = _failures.get((kind, execution_id), (0, utcnow()))
    failures += 1
    log.error(
        "%s failed on execution %s (%d of %d tries)", kind, execution_id, failures, QUARANTINE_AFTER, exc_info=exc
    )
    if failures < QUARANTINE_AFTER:
        _failures[(kind, execution_id)] = (failures, first)
        return
    _failures.pop((kind, execution_id), None)
    error = "".join(traceback.format_exception(exc)[-3:])[-4000:]
    note = {"loop": kind, "failures": failures, "first_failed_at": first.isoformat(), "error": error}
    try:
        with db.connection() as conn:
            store.quarantine(conn, execution_id, note, utcnow())
    except Exception:  # not recorded: counted again from zero, and tried again
        log.exception("could not quarantine execution %s", execution_id)
        return
    log.error("execution %s quarantined after %d failures of the %s loop: %s", execution_id, failures, kind, error)


def release_quarantine(arn: str) -> dict[str, Any]:
    """Release a quarantined execution: the background loops take it again at their next round.

    Only the quarantine is cleared (and this process's failure counts for it): the execution's
    state is as the loops left it. Return the quarantine note it had.
    """
    with db.connection() as conn:
        released = store.release_quarantine(conn, arn)
        if released is None:
            if store.execution_by_arn(conn, arn) is None:
                raise ResourceNotFoundException(f"Durable execution not found: {arn}")
            raise InvalidParameterValueException("Durable execution is not quarantined; there is nothing to release.")
    for key in [key for key in _failures if key[1] == released["id"]]:
        del _failures[key]
    log.warning("execution %s released from quarantine", released["id"])
    return {"QuarantinedAt": released["quarantined_at"], "Quarantine": released["quarantine"]}
