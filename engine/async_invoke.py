"""Plain (non-durable) function invocations, as Lambda runs them: async retries and a dead-letter queue.

An ``Event`` invocation is queued and answered 202 at once. When the handler raises, Lambda
retries the event twice by default (``MaximumRetryAttempts`` 0-2), waiting one minute before
the first retry and two before the second; after the last failure the event goes to the
function's dead-letter queue, from which it can be inspected and redriven. A
``RequestResponse`` invocation runs once and its error goes back to the caller: it is never
retried. Durable Lab keeps every plain invocation in ``durable_async_invocation`` so both
cases can be shown; the retry delays are multiplied by the invocation's ``TimeScale``.

The row is the source of truth and the queue message carries only its id: a duplicate or
redelivered message finds the row already claimed (or not yet due) and does nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from psycopg.types.json import Jsonb

from engine import db, registry
from engine.duties.loops import is_outage, through_outages
from engine.duties.tokens import function_arn
from engine.duties.unit import current_dispatcher, utcnow
from engine.errors import InvalidParameterValueException, ResourceNotFoundException
from engine.invoker import call_plain_handler, error_object
from engine.sql import Q
from engine.store import store

log = logging.getLogger(__name__)

# Lambda's asynchronous retry delays: one minute before the first retry, two before the second.
RETRY_DELAYS_SECONDS = (60.0, 120.0)
LEASE_GRACE = timedelta(seconds=5)
# A message may arrive a little before its countdown (clock skew between processes).
EARLY_TOLERANCE = timedelta(milliseconds=250)
DEAD_LETTERED = "DEAD_LETTERED"
# A dead-lettered event whose redrive succeeded: it has left the queue (as SQS moves a redriven message).
REDRIVEN = "REDRIVEN"


@dataclass(frozen=True)
class PlainContext:
    """The part of Lambda's context a plain handler reads; the request id is kept across retries."""

    aws_request_id: str
    function_name: str
    deadline: datetime
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self.function_name)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - utcnow()).total_seconds() * 1000))


def retry_delay(attempt: int, time_scale: float = 1.0) -> float:
    """Seconds to wait after failed ``attempt`` (1-based) before the next one, scaled."""
    index = min(attempt, len(RETRY_DELAYS_SECONDS)) - 1
    return RETRY_DELAYS_SECONDS[index] * time_scale


def _insert(conn: Any, fn: dict[str, Any], payload: str | None, **values: Any) -> dict[str, Any]:
    row = conn.execute(
        Q.insert_async_invocation,
        {"request_id": str(uuid.uuid4()), "function_name": fn["name"], "payload": payload, **values},
    ).fetchone()
    assert row is not None
    return dict(row)


def enqueue(fn: dict[str, Any], payload: str | None, time_scale: float = 1.0) -> dict[str, Any]:
    """Accept an ``Event`` invocation of a plain function; return its row (the 202 answer)."""
    _dispatcher()  # refuse before accepting: an event nobody can run must not be answered 202
    with db.transaction() as conn:
        row = _enqueue_txn(conn, fn, payload, time_scale, None)
    _dispatch(row["id"], 0.0)
    return row


def _enqueue_txn(
    conn: Any, fn: dict[str, Any], payload: str | None, time_scale: float, redrive_of: int | None
) -> dict[str, Any]:
    return _insert(
        conn,
        fn,
        payload,
        invocation_type="Event",
        time_scale=time_scale,
        status="QUEUED",
        max_attempts=1 + int(fn.get("maximum_retry_attempts", 2)),
        now=utcnow(),
        redrive_of=redrive_of,
    )


def call_sync(fn: dict[str, Any], payload: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """Run a ``RequestResponse`` invocation once; return (JSON result, None) or (None, error). Never retried."""
    now = utcnow()
    with db.transaction() as conn:
        row = _insert(
            conn,
            fn,
            payload,
            invocation_type="RequestResponse",
            time_scale=1.0,
            status="RUNNING",
            max_attempts=1,
            now=now,
            redrive_of=None,
        )
        conn.execute(Q.count_first_attempt, {"id": row["id"]})
    attempt = _run_handler(fn, {**row, "attempt_count": 1})
    with db.transaction() as conn:
        status = "SUCCEEDED" if attempt.error is None else "FAILED"
        _record_attempt(conn, row["id"], attempt, status=status)
    return attempt.result, attempt.error


# --- running attempts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    number: int
    started_at: datetime
    ended_at: datetime
    result: str | None
    error: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "outcome": "succeeded" if self.error is None else "failed",
            "error": _short_error(self.error),
        }


def _short_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"ErrorType": error.get("ErrorType", ""), "ErrorMessage": str(error.get("ErrorMessage", ""))[:2000]}


def run_attempt(invocation_id: int) -> bool:
    """Run the invocation's due attempt; return False when there is none (a duplicate message)."""
    row = _claim(invocation_id)
    if row is None:
        return False
    try:
        fn = registry.get_function_row(row["function_name"])
    except ResourceNotFoundException as exc:
        now = utcnow()
        attempt = Attempt(row["attempt_count"], now, now, None, error_object(exc))
    else:
        attempt = _run_handler(fn, row)
    through_outages(partial(_settle_or_record_failure, row, attempt), f"recording plain invocation {row['id']}")
    return True


def _settle_or_record_failure(row: dict[str, Any], attempt: Attempt) -> None:
    """``_settle``; if the attempt's outcome cannot be stored, it is recorded as failed with
    why, rather than left RUNNING for nobody to settle."""
    try:
        _settle(row, attempt)
    except Exception as exc:
        if is_outage(exc):
            raise
        log.exception("the outcome of plain invocation %s could not be stored", row["id"])
        error = {"ErrorType": "Durable.UnstorableOutcome", "ErrorMessage": f"The outcome could not be stored: {exc}"}
        _settle(row, replace(attempt, result=None, error=error))


def _claim(invocation_id: int) -> dict[str, Any] | None:
    """Take the attempt if it is due; a RUNNING row whose lease ran out lost its worker and is due too."""
    now = utcnow()
    with db.transaction() as conn:
        row = conn.execute(Q.lock_async_invocation_with_timeout, {"id": invocation_id}).fetchone()
        if row is None or not _due(row, now):
            return None
        lease = now + timedelta(seconds=float(row["timeout"] or 3)) + LEASE_GRACE
        claimed = conn.execute(
            Q.claim_async_attempt, {"lease_until": lease, "now": now, "id": invocation_id}
        ).fetchone()
    return dict(claimed) if claimed else None


def _due(row: dict[str, Any], now: datetime) -> bool:
    if row["status"] in {"QUEUED", "RETRY_SCHEDULED"}:
        return row["next_attempt_at"] is None or row["next_attempt_at"] <= now + EARLY_TOLERANCE
    return (
        row["status"] == "RUNNING"
        and row["lease_until"] is not None
        and row["lease_until"] < now
        and row["attempt_count"] < row["max_attempts"]
    )


def _run_handler(fn: dict[str, Any], row: dict[str, Any]) -> Attempt:
    started = utcnow()
    context = PlainContext(row["request_id"], fn["name"], started + timedelta(seconds=float(fn["timeout"])))
    result, error = call_plain_handler(fn, row["payload"], context, row["request_id"])
    return Attempt(row["attempt_count"], started, utcnow(), result, error)


def _settle(row: dict[str, Any], attempt: Attempt) -> None:
    """Record the attempt, then succeed, schedule the next retry, or dead-letter the event."""
    delay: float | None = None
    with db.transaction() as conn:
        if attempt.error is None:
            _record_attempt(conn, row["id"], attempt, status="SUCCEEDED")
            if row["redrive_of_id"] is not None:
                conn.execute(
                    Q.mark_redriven,
                    {
                        "status": REDRIVEN,
                        "now": attempt.ended_at,
                        "id": row["redrive_of_id"],
                        "expected_status": DEAD_LETTERED,
                    },
                )
        elif attempt.number < row["max_attempts"]:
            delay = retry_delay(attempt.number, row["time_scale"])
            due = attempt.ended_at + timedelta(seconds=delay)
            _record_attempt(conn, row["id"], attempt, status="RETRY_SCHEDULED", next_attempt_at=due)
        else:
            _record_attempt(conn, row["id"], attempt, status=DEAD_LETTERED, dead_lettered_at=attempt.ended_at)
    if delay is not None:
        _dispatch(row["id"], delay)


def _record_attempt(
    conn: Any,
    invocation_id: int,
    attempt: Attempt,
    *,
    status: str,
    next_attempt_at: datetime | None = None,
    dead_lettered_at: datetime | None = None,
) -> None:
    """Append the attempt and set ``status``; ``next_attempt_at`` and ``dead_lettered_at`` are
    written only when given."""
    conn.execute(
        Q.record_async_attempt,
        {
            "status": status,
            "attempt": Jsonb([attempt.as_json()]),
            "result": attempt.result,
            "error": Jsonb(_short_error(attempt.error)) if attempt.error else None,
            "now": attempt.ended_at,
            "id": invocation_id,
            "next_attempt_at": next_attempt_at,
            "dead_lettered_at": dead_lettered_at,
        },
    )


def _dispatcher() -> Callable[[int, float], None]:
    run_later = getattr(current_dispatcher(), "run_async_invocation", None)
    if run_later is None:
        raise InvalidParameterValueException("No worker is configured to run asynchronous invocations.")
    return run_later  # type: ignore[no-any-return]


def _dispatch(invocation_id: int, countdown: float) -> None:
    _dispatcher()(invocation_id, countdown)


# --- the dead-letter queue --------------------------------------------------------------------


def get(invocation_id: int) -> dict[str, Any]:
    """Return one plain invocation's row (attempts, status, result or error)."""
    with db.transaction() as conn:
        row = conn.execute(Q.async_invocation_by_id, {"id": invocation_id}).fetchone()
    if row is None:
        raise ResourceNotFoundException(f"Asynchronous invocation not found: {invocation_id}")
    return dict(row)


def get_by_request_id(request_id: str) -> dict[str, Any]:
    with db.transaction() as conn:
        row = conn.execute(Q.async_invocation_by_request_id, {"request_id": request_id}).fetchone()
    if row is None:
        raise ResourceNotFoundException(f"Asynchronous invocation not found: {request_id}")
    return dict(row)


def dead_letters(
    *, function_name: str | None = None, include_redriven: bool = True, limit: int = 200
) -> list[dict[str, Any]]:
    """Events in the dead-letter queue, newest first."""
    params = {
        "status": DEAD_LETTERED,
        "function_name": function_name or None,
        "include_redriven": include_redriven,
        "limit": limit,
    }
    with db.transaction() as conn:
        rows = conn.execute(Q.dead_letters, params).fetchall()
    return [dict(row) for row in rows]


def redrive(invocation_id: int) -> dict[str, Any]:
    """Send a dead-lettered event to its function again (as a new Event invocation); return the new row.

    Redriving twice returns the first redrive: a double click sends the event once.
    """
    _dispatcher()
    with db.transaction() as conn:
        dead = conn.execute(Q.lock_async_invocation, {"id": invocation_id}).fetchone()
        if dead is None:
            raise ResourceNotFoundException(f"Asynchronous invocation not found: {invocation_id}")
        if dead["status"] != DEAD_LETTERED:
            raise InvalidParameterValueException(
                f"Only dead-lettered events can be redriven (this one is {dead['status']})."
            )
        again = conn.execute(Q.redrive_of, {"id": invocation_id}).fetchone()
        if again is not None:
            return dict(again)
        fn = store.get_function(conn, dead["function_name"])
        if fn is None:
            raise ResourceNotFoundException(f"Function not found: {function_arn(dead['function_name'])}")
        # Inserted under the dead row's lock, so a concurrent second redrive finds this one.
        row = _enqueue_txn(conn, fn, dead["payload"], dead["time_scale"], invocation_id)
        conn.execute(Q.mark_dead_letter_redriven, {"redriven_at": row["created_at"], "id": invocation_id})
    _dispatch(row["id"], 0.0)
    return row
