"""Read-only queries for the dashboard: each page asks a fixed number of indexed questions."""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict
from urllib.parse import urlencode

from aws_durable_execution_sdk_python.exceptions import SerDesError
from aws_durable_execution_sdk_python.serdes import deserialize
from django.db import connection
from django.db.models import Count, Min, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

import engine.invariants
import engine.timeline
from engine import rows, validation
from engine.contrib.django.models import Effect, Event, Execution, Function, LogLine, Operation, Timer
from engine.errors import ResourceNotFoundException
from engine.rows import ExecutionStatus
from engine.timeline_types import Attempt, Counters, InvocationView, OperationBase, Timeline
from executions.models import AuditEntry

PAGE_SIZE = 50
# The statuses an execution can be seen in (DELETING never is), in AWS's order.
STATUSES = tuple(status.value for status in ExecutionStatus if status is not ExecutionStatus.DELETING)
# A paused execution's status column stays RUNNING; its pause_state says PAUSING or PAUSED.
PAUSE_STATES = tuple(status.value for status in ExecutionStatus if status in rows.PAUSE_STATES)
EVENT_GROUPS = ("Execution", "Step", "Wait", "Callback", "Context", "ChainedInvoke", "Invocation")
HISTORY_PAGE = 200
LOG_LIMIT = 5000
RECENT_PER_FUNCTION = 5
LIST_COLUMNS = (
    "id",
    "arn",
    "function_name",
    "name",
    "status",
    "pause_state",
    "started_at",
    "ended_at",
    "counters",
    "error",
)


# --- executions list ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionFilters:
    status: str = ""
    function: str = ""
    name: str = ""
    q: str = ""
    started_after: datetime | None = None
    started_before: datetime | None = None
    quarantined: bool = False

    def is_empty(self) -> bool:
        return not any(
            (self.status, self.function, self.name, self.q, self.started_after, self.started_before, self.quarantined)
        )


@dataclass(frozen=True)
class Cursor:
    """A keyset position: (started_at, id) of a row, opaque in URLs."""

    started_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.started_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor | None:
        """Return the cursor, or None for a token that was not made by ``encode``."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            stamp, ident = raw.split("|")
            # A forged stamp may carry an offset PostgreSQL refuses (+23:59) or overflow in UTC.
            moment = validation.check_aware_datetime(datetime.fromisoformat(stamp), "Cursor")
            return cls(moment, int(ident)) if validation.is_ascii_digits(ident) and len(ident) <= 18 else None
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return None


@dataclass
class ExecutionPage:
    rows: list[Execution]
    newer: str | None = None
    older: str | None = None
    any_running: bool = False


def execution_list(
    *, filters: ExecutionFilters, after: Cursor | None = None, before: Cursor | None = None, limit: int = PAGE_SIZE
) -> ExecutionPage:
    """Return one page, newest first, keyset-paged on (started_at, id) so deep pages stay fast.

    ``after`` pages to older rows (past that cursor), ``before`` to newer ones.
    """
    qs = _filtered(Execution.objects.only(*LIST_COLUMNS), filters)
    if before is not None:
        rows = list(_newer_than(qs, before).order_by("started_at", "id")[: limit + 1])
        more_newer = len(rows) > limit
        rows = rows[:limit][::-1]
        page = ExecutionPage(rows, newer=_cursor_of(rows[0]) if more_newer and rows else None)
        page.older = _cursor_of(rows[-1]) if rows else None
    else:
        if after is not None:
            qs = _older_than(qs, after)
        rows = list(qs.order_by("-started_at", "-id")[: limit + 1])
        more_older = len(rows) > limit
        rows = rows[:limit]
        page = ExecutionPage(rows, older=_cursor_of(rows[-1]) if more_older and rows else None)
        page.newer = _cursor_of(rows[0]) if after is not None and rows else None
    _annotate_rows(page.rows)
    page.any_running = any(row.status == "RUNNING" for row in page.rows)
    return page


def quarantined_count() -> int:
    """Executions the background loops have quarantined (a partial index holds just these)."""
    count: int = Execution.objects.filter(quarantined_at__isnull=False).count()
    return count


def _filtered(qs: QuerySet[Execution], filters: ExecutionFilters) -> QuerySet[Execution]:
    if filters.quarantined:
        qs = qs.filter(quarantined_at__isnull=False)
    if filters.status in PAUSE_STATES:
        qs = qs.filter(status="RUNNING", pause_state=filters.status)
    elif filters.status == "RUNNING":  # as AWS lists it: running and not paused
        qs = qs.filter(status="RUNNING", pause_state__isnull=True)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.function:
        qs = qs.filter(function_name=filters.function)
    if filters.name:
        qs = qs.filter(name__startswith=filters.name)
    if filters.q:
        # The ARN holds function name, execution name and id, so one column answers a free search.
        qs = qs.filter(arn__icontains=filters.q)
    if filters.started_after:
        qs = qs.filter(started_at__gte=filters.started_after)
    if filters.started_before:
        qs = qs.filter(started_at__lt=filters.started_before)
    return qs


def _older_than(qs: QuerySet[Execution], cursor: Cursor) -> QuerySet[Execution]:
    # The plain "started_at <= x" conjunct lets PostgreSQL range-scan the (started_at, id) index.
    return qs.filter(started_at__lte=cursor.started_at).filter(
        Q(started_at__lt=cursor.started_at) | Q(id__lt=cursor.id)
    )


def _newer_than(qs: QuerySet[Execution], cursor: Cursor) -> QuerySet[Execution]:
    return qs.filter(started_at__gte=cursor.started_at).filter(
        Q(started_at__gt=cursor.started_at) | Q(id__gt=cursor.id)
    )


def _cursor_of(row: Execution) -> str:
    return Cursor(row.started_at, row.id).encode()


def _annotate_rows(rows: list[Execution]) -> None:
    """Attach attempts and side-effect counts to a page of rows: two grouped queries, whatever the page size."""
    ids = [row.id for row in rows]
    attempts = _attempt_counts(ids) if ids else {}
    effects = _effect_counts(ids) if ids else {}
    now = timezone.now()
    for row in rows:
        counters = row.counters or {}
        row.invocation_count = counters.get("invocations", 0)
        row.attempt_count, row.failed_attempt_count = attempts.get(row.id, (0, 0))
        row.effect_count, row.duplicate_count = effects.get(row.id, (0, 0))
        row.duration = (row.ended_at or now) - row.started_at


def _attempt_counts(ids: list[int]) -> dict[int, tuple[int, int]]:
    rows = (
        Event.objects.filter(execution_id__in=ids, event_type__in=("StepStarted", "StepFailed"))
        .values("execution_id")
        .annotate(
            started=Count("id", filter=Q(event_type="StepStarted")),
            failed=Count("id", filter=Q(event_type="StepFailed")),
        )
    )
    return {row["execution_id"]: (row["started"], row["failed"]) for row in rows}


def _effect_counts(ids: list[int]) -> dict[int, tuple[int, int]]:
    rows = (
        Effect.objects.filter(execution_id__in=ids)
        .values("execution_id")
        .annotate(total=Count("id"), duplicates=Count("id", filter=Q(duplicate=True)))
    )
    return {row["execution_id"]: (row["total"], row["duplicates"]) for row in rows}


def function_names() -> list[str]:
    return list(Function.objects.order_by("name").values_list("name", flat=True))


# --- one execution --------------------------------------------------------------------------


def execution_get(*, pk: int) -> Execution:
    try:
        execution: Execution = Execution.objects.get(pk=pk)
    except Execution.DoesNotExist as exc:
        raise Http404("No such execution.") from exc
    return execution


def execution_id_for_arn(*, arn: str) -> int | None:
    pk: int | None = Execution.objects.filter(arn=arn).values_list("id", flat=True).first()
    return pk


ROWS_PER_PAGE = 150  # rows drawn on the timeline and listed in the operations table at a time
ROW_PAGE_SIZES = (150, 500, 1000)


class Pager(TypedDict):
    """What the page needs to draw "rows 151 to 300 of 10,000", the neighbour links and the page sizes."""

    first: int
    last: int
    total: int
    paged: bool
    prev: str | None
    next: str | None
    sizes: list[tuple[int, str, bool]]  # (rows, query, chosen)
    query: str


@dataclass(frozen=True)
class RowWindow:
    """Which rows of a long execution the page shows: ``?from=`` (0-based) and ``?rows=`` (page size)."""

    offset: int = 0
    size: int = ROWS_PER_PAGE

    @classmethod
    def parse(cls, offset: str, size: str) -> RowWindow:
        """Read the query parameters; anything unexpected falls back to the first page of 150."""
        # Not str.isdigit(): "²" is a digit to it and a ValueError to int().
        rows = int(size) if validation.is_ascii_digits(size) and int(size) in ROW_PAGE_SIZES else ROWS_PER_PAGE
        if size == "all":  # links from before paging drew every row; the largest page stands in
            rows = ROW_PAGE_SIZES[-1]
        start = int(offset) if validation.is_ascii_digits(offset) and len(offset) < 10 else 0
        return cls(start, rows)

    def query(self, offset: int | None = None, size: int | None = None) -> str:
        """The query string for this window (or a neighbour), empty for the default first page."""
        params: dict[str, int] = {}
        if (offset if offset is not None else self.offset) > 0:
            params["from"] = offset if offset is not None else self.offset
        if (size or self.size) != ROWS_PER_PAGE:
            params["rows"] = size or self.size
        return urlencode(params)

    def pager(self, total: int) -> Pager:
        """What the page needs to draw "rows 151 to 300 of 10,000", the neighbour links and the page sizes."""
        last = min(total, self.offset + self.size)
        return {
            "first": min(self.offset + 1, total),
            "last": last,
            "total": total,
            "paged": total > self.size or self.offset > 0,
            "prev": self.query(max(0, self.offset - self.size)) if self.offset > 0 else None,
            "next": self.query(self.offset + self.size) if last < total else None,
            "sizes": [(size, self.query(0, size), size == self.size) for size in ROW_PAGE_SIZES],
            "query": self.query(),
        }


class TimelinePage(Timeline):
    """The execution page's model: the engine's timeline with its counters counted up to now,
    and what the page adds to it."""

    version: str  # changes whenever anything drawn changes (timeline_version)
    violations: list[str]  # the rules the record breaks (engine.invariants), shown on the page
    invocation_running: bool  # an invocation still runs (it can outlive its execution)


def execution_timeline_data(
    *, execution: Execution, offset: int = 0, limit: int | None = ROWS_PER_PAGE
) -> TimelinePage:
    """The engine's replay record for one window of rows, with counters over the whole execution.

    Only the window's operations are read in detail, so the cost does not grow with the
    execution beyond a five-column outline of its operations. The engine's timeline is read,
    not changed: the page is a new dict around it.
    """
    data = engine.timeline.execution_timeline(execution.arn, offset=max(0, offset), limit=limit)
    shown: Timeline = {**data, "counters": _counters_so_far(data)}
    return {
        **shown,
        "version": timeline_version(shown),
        # Shown on the page when not empty: a picture that breaks its own rules must say so.
        "violations": engine.invariants.violations(shown),
        "invocation_running": any(i["ended_at"] is None for i in shown["invocations"]),
    }


def _counters_so_far(data: Timeline) -> Counters:
    """Billed time grows while an invocation runs, wall and suspended time while the execution
    runs: the header counts them up to now, not up to the last invocation that ended. Returns
    the timeline's counters when nothing runs, else new ones."""
    execution = data["execution"]
    now = timezone.now()
    running = [i for i in data["invocations"] if i["ended_at"] is None]
    counters = data["counters"]
    if execution["ended_at"] is not None and not running:
        return counters
    billed = counters.get("billed_seconds", 0.0) + sum((now - i["started_at"]).total_seconds() for i in running)
    # Something still runs (the execution, or an invocation being cut short after it ended):
    # wall time runs to now, as billed time does.
    wall = (now - execution["started_at"]).total_seconds()
    idle = wall - billed - counters.get("reinvoke_seconds", 0.0) - counters.get("queued_seconds", 0.0)
    return {
        **counters,
        "billed_seconds": round(billed, 3),
        "wall_seconds": round(wall, 3),
        "suspended_seconds": round(max(0.0, idle), 3),
    }


def timeline_version(data: Timeline) -> str:
    """A short digest that changes whenever anything drawn on the page changes.

    Every operation change writes a history event, so the last EventId stands for the rows
    outside the window; journal records (body runs, effects) and faults are counted apart.
    """
    parts = [
        data["execution"]["status"],
        # Clock-driven counters (wall, suspended) change every poll: leave them out.
        sorted((k, v) for k, v in data["counters"].items() if not k.endswith("_seconds")),
        data.get("last_event_id", 0),
        data.get("operation_count", len(data["operations"])),
        [(op["status"], len(op["attempts"]), len(op.get("body_runs") or [])) for op in data["operations"]],
        [(i["seq"], i["outcome"]) for i in data["invocations"]],
        [(f.get("id"), f.get("fired_at")) for f in data.get("faults") or []],
    ]
    return hashlib.sha1(json.dumps(parts, default=str).encode(), usedforsecurity=False).hexdigest()[:16]


def step_names(*, execution: Execution, limit: int = 500) -> list[str]:
    """Distinct step names, in first-seen order, for the "arm a kill at step" field."""
    rows = (
        Operation.objects.filter(execution_id=execution.id, type="STEP")
        .exclude(name__isnull=True)
        .values("name")
        .annotate(first=Min("ordinal"))
        .order_by("first")
        .values_list("name", flat=True)
    )
    return list(rows[:limit])


class TimedAttempt(Attempt):
    duration: timedelta | None  # None while the attempt runs


class PanelOperation(OperationBase):
    """The operation as its panel shows it: the timeline's row, each attempt with its duration."""

    attempts: list[TimedAttempt]


class EventRow(TypedDict):
    """A history event as the history table and the operation panel list it."""

    decoded: str | None  # its result as the handler sees it (sdk_decoded), if it has one
    EventId: int
    EventType: str
    EventTimestamp: datetime
    Id: str | None
    Name: str | None
    ParentId: str | None
    SubType: str | None
    invocation_seq: int | None
    details_key: str
    details: str  # the details as indented JSON


class OperationPanel(TypedDict):
    """One operation's panel: its timeline row, its document's outcome and its events."""

    operation: PanelOperation
    doc: dict[str, Any]
    children: int
    events: list[EventRow]
    details_key: str  # the document's ``…Details`` key ("" if it has none)
    result: str | None  # the checkpointed result payload, as stored
    result_decoded: str | None
    error: dict[str, Any] | None


def _timed(attempt: Attempt) -> TimedAttempt:
    ended = attempt["ended_at"]
    return {**attempt, "duration": ended - attempt["started_at"] if ended else None}


def operation_detail(*, execution: Execution, op_id: str) -> OperationPanel:
    """One operation: its row on the timeline, its outcome (result or error), its events."""
    try:
        detail = engine.timeline.operation_detail(execution.arn, op_id)
    except ResourceNotFoundException as exc:
        raise Http404("No such operation in this execution.") from exc
    operation = detail["operation"]
    doc = detail["doc"] or {}
    details_key = next((key for key in doc if key.endswith("Details")), "")
    outcome = doc.get(details_key) or {}
    result = outcome.get("Result")
    return {
        "operation": {**operation, "attempts": [_timed(attempt) for attempt in operation["attempts"]]},
        "doc": detail["doc"],
        "children": detail["children"],
        "events": [_event_row(row, arn=execution.arn) for row in detail["events"]],
        "details_key": details_key,
        "result": result,
        "result_decoded": sdk_decoded(result, op_id=op_id, arn=execution.arn),
        "error": outcome.get("Error"),
    }


def sdk_decoded(payload: Any, *, op_id: str, arn: str) -> str | None:
    """A checkpointed value as the handler sees it, as indented JSON; None if it is not a string.

    Steps checkpoint their results in the SDK's typed envelope (``{"t":"m","v":{…}}``); the
    SDK's own ``deserialize`` turns them back into values. Plain JSON (a callback's answer)
    is left as it is.
    """
    if not isinstance(payload, str):
        return None
    try:
        value: Any = deserialize(None, payload, op_id, arn)
    except SerDesError:
        try:
            value = json.loads(payload)
        except ValueError:
            return payload
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=_readable)


def _readable(value: Any) -> Any:
    """What JSON cannot hold, as a person reads it: the SDK's own ``to_dict`` for its results
    (a map's or parallel's BatchResult), enum values, and the text of decimals, datetimes and UUIDs."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


# --- history --------------------------------------------------------------------------------


@dataclass
class HistoryPage:
    events: list[EventRow]
    next_after: int | None = None
    group: str = ""
    types: list[str] = field(default_factory=list)


def history_page(*, execution: Execution, group: str = "", after: int = 0, limit: int = HISTORY_PAGE) -> HistoryPage:
    """Events in EventId order, optionally one family (``Step``, ``Callback`` …), keyset-paged."""
    qs = Event.objects.filter(execution_id=execution.id, event_id__gt=after)
    if group in EVENT_GROUPS:
        qs = qs.filter(event_type__startswith=group)
    rows = list(
        qs.order_by("event_id").values("event_id", "event_type", "timestamp", "invocation_seq", "doc")[: limit + 1]
    )
    events = [_event_row(row, arn=execution.arn) for row in rows[:limit]]
    next_after = rows[limit - 1]["event_id"] if len(rows) > limit else None
    return HistoryPage(events, next_after, group if group in EVENT_GROUPS else "")


def _event_row(row: Mapping[str, Any], arn: str = "") -> EventRow:
    doc = row["doc"] or {}
    details_key = f"{row['event_type']}Details"
    payload = ((doc.get(details_key) or {}).get("Result") or {}).get("Payload")
    return {
        "decoded": sdk_decoded(payload, op_id=doc.get("Id") or "", arn=arn) if payload is not None else None,
        "EventId": row["event_id"],
        "EventType": row["event_type"],
        "EventTimestamp": row["timestamp"],
        "Id": doc.get("Id"),
        "Name": doc.get("Name"),
        "ParentId": doc.get("ParentId"),
        "SubType": doc.get("SubType"),
        "invocation_seq": row["invocation_seq"],
        "details_key": details_key,
        "details": json.dumps(doc.get(details_key) or {}, indent=2, sort_keys=True, default=str),
    }


class HistoryExport(TypedDict):
    """``GetDurableExecutionHistory``'s answer. Each event is its stored document, whose keys
    depend on its type (``StepSucceededDetails`` …), with its ``EventId`` and ``EventTimestamp``."""

    DurableExecutionArn: str
    Events: list[dict[str, Any]]


def history_export(*, execution: Execution) -> HistoryExport:
    """The whole history in ``GetDurableExecutionHistory`` shape (with payloads), in one query."""
    rows = (
        Event.objects.filter(execution_id=execution.id).order_by("event_id").values_list("event_id", "timestamp", "doc")
    )
    events = [
        {**(doc or {}), "EventId": event_id, "EventTimestamp": timestamp.isoformat()}
        for event_id, timestamp, doc in rows.iterator(chunk_size=2000)
    ]
    return {"DurableExecutionArn": execution.arn, "Events": events}


# --- invocations and logs -------------------------------------------------------------------


class LogEntry(TypedDict):
    """A line the function logged (SDK logger or handler output)."""

    invocation_seq: int
    at: datetime
    level: str
    logger: str
    message: str
    op_id: str | None


def invocation_logs(*, execution: Execution) -> list[LogEntry]:
    """The execution's log lines (SDK logger and handler output), oldest first, each with its invocation."""
    rows = LogLine.objects.filter(execution_id=execution.id).order_by("at", "id")
    lines: list[LogEntry] = list(rows.values("invocation_seq", "at", "level", "logger", "message", "op_id")[:LOG_LIMIT])
    return lines


INVOCATIONS_LISTED = 100  # the invocations table shows the first and the last this many


class InvocationRow(InvocationView):
    """An invocation as the invocations table lists it."""

    duration: timedelta  # up to now while it runs
    logs: list[LogEntry]


class SkippedRow(TypedDict):
    skipped: int  # invocations between the first and the last ones listed


def invocations_with_logs(data: Timeline, logs: list[LogEntry]) -> list[InvocationRow | SkippedRow]:
    """Invocations with their log lines and durations: all of them, or with thousands the first
    and last ``INVOCATIONS_LISTED`` and one row saying how many lie between."""
    by_seq: dict[int, list[LogEntry]] = {}
    for line in logs:
        by_seq.setdefault(line["invocation_seq"], []).append(line)
    now = timezone.now()
    invocations: list[InvocationView | None] = list(data["invocations"])
    skipped = max(0, len(invocations) - 2 * INVOCATIONS_LISTED)
    if skipped:
        invocations = [*invocations[:INVOCATIONS_LISTED], None, *invocations[-INVOCATIONS_LISTED:]]
    result: list[InvocationRow | SkippedRow] = []
    for invocation in invocations:
        if invocation is None:
            result.append({"skipped": skipped})
            continue
        duration = (invocation["ended_at"] or now) - invocation["started_at"]
        result.append({**invocation, "duration": duration, "logs": by_seq.get(invocation["seq"], [])})
    return result


# --- callbacks inbox ------------------------------------------------------------------------


def _with_deadlines(callbacks: QuerySet[Operation]) -> QuerySet[Operation]:
    """Each callback's timeout and heartbeat deadlines, from its timers (a heartbeat re-arms only its own)."""
    timers = Timer.objects.filter(execution_id=OuterRef("execution_id"), op_id=OuterRef("op_id"))
    return callbacks.annotate(
        deadline=Subquery(timers.filter(kind="callback_timeout").values("due_at")[:1]),
        heartbeat_deadline=Subquery(timers.filter(kind="callback_heartbeat").values("due_at")[:1]),
    )


def pending_callback_list(
    *, execution: Execution | None = None, function_name: str = "", limit: int = 500
) -> list[Operation]:
    """Pending callbacks (across executions, of one, or of one function), oldest first, each with
    what an operator needs to answer it (see ``_with_matter``): four queries however many wait."""
    callbacks = _open_callbacks()
    if execution is not None:
        callbacks = callbacks.filter(execution_id=execution.id)
    if function_name:
        callbacks = callbacks.filter(execution__function_name=function_name)
    rows = list(
        _with_deadlines(callbacks)
        .select_related("execution")
        .only(
            "id",
            "op_id",
            "parent_id",
            "name",
            "status",
            "started_at",
            "callback_id",
            "execution__id",
            "execution__arn",
            "execution__name",
            "execution__function_name",
            "execution__status",
            "execution__input",
            "execution__time_scale",
        )
        .order_by("started_at", "id")[:limit]
    )
    return _with_matter(rows)


def pending_callback_count() -> int:
    count: int = _open_callbacks().count()
    return count


def _open_callbacks() -> QuerySet[Operation]:
    # A parallel that completes on its first answer leaves its other callbacks STARTED after the
    # execution ends; nobody can answer those any more, so the inbox leaves them out.
    return Operation.objects.filter(type="CALLBACK", status="STARTED", execution__status="RUNNING")


def pending_callback_get(*, pk: int) -> Operation:
    try:
        callback = _with_deadlines(Operation.objects.select_related("execution")).get(pk=pk, type="CALLBACK")
    except Operation.DoesNotExist as exc:
        raise Http404("No such callback.") from exc
    return _with_matter([callback])[0]


def callback_by_id(*, callback_id: str) -> Operation | None:
    """The callback a signed link names, with what is being approved, or None when it is gone."""
    callback = (
        _with_deadlines(Operation.objects.select_related("execution"))
        .filter(type="CALLBACK", callback_id=callback_id)
        .first()
    )
    return _with_matter([callback])[0] if callback else None


def execution_callback_list(*, execution: Execution) -> list[Operation]:
    """Every callback of one execution, answered or not, in the order they were created."""
    callbacks = _with_deadlines(Operation.objects.select_related("execution")).filter(
        execution_id=execution.id, type="CALLBACK"
    )
    return _with_matter(list(callbacks.order_by("ordinal", "id")))


@dataclass(frozen=True)
class Sibling:
    """Another branch of the same ``parallel``: who else was asked, and where that stands."""

    name: str
    status: str


def _with_matter(callbacks: list[Operation]) -> list[Operation]:
    """Set on each callback what is being approved: ``input_items`` (the execution's decoded input),
    ``message`` (what the submitter step sent: its result, else its log lines), ``siblings`` and
    ``channel`` (the other branches of its parallel, and its own branch's name).

    ``wait_for_callback`` nests CALLBACK and its submitter STEP in a WaitForCallback context; inside
    a ``parallel`` that context sits in a ParallelBranch context under the Parallel context. Three
    queries fetch the contexts, submitter steps and their log lines, whatever the number of callbacks.
    """
    if not callbacks:
        return callbacks
    executions = {cb.execution_id for cb in callbacks}
    parents = {cb.parent_id for cb in callbacks if cb.parent_id}
    # Contexts without their ``doc``: a context's checkpointed result can be large.
    contexts: dict[tuple[int, str], Operation] = {}
    children: dict[tuple[int, str], list[Operation]] = {}
    for op in (
        Operation.objects.filter(execution_id__in=executions, type__in=("CONTEXT", "CALLBACK"))
        .only("execution_id", "op_id", "parent_id", "name", "type", "sub_type", "status", "ordinal")
        .order_by("ordinal")
    ):
        if op.type == "CONTEXT":
            contexts[(op.execution_id, op.op_id)] = op
        children.setdefault((op.execution_id, op.parent_id or ""), []).append(op)
    submitters = {
        (op.execution_id, op.parent_id or ""): op
        for op in Operation.objects.filter(execution_id__in=executions, type="STEP", parent_id__in=parents).only(
            "execution_id", "op_id", "parent_id", "doc"
        )
    }
    logs = _submitter_logs(submitters.values())
    for cb in callbacks:
        submitter = submitters.get((cb.execution_id, cb.parent_id or ""))
        cb.input_items = decoded_input(cb.execution.input)
        cb.message = _submitter_message(submitter, logs, arn=cb.execution.arn)
        branch, others = _branch_and_siblings(cb, contexts, children)
        cb.channel = branch
        cb.siblings = others
    return callbacks


def _submitter_logs(submitters: Any) -> dict[tuple[int, str], list[str]]:
    steps = list(submitters)
    if not steps:
        return {}
    rows = LogLine.objects.filter(
        execution_id__in={s.execution_id for s in steps}, op_id__in={s.op_id for s in steps}
    ).order_by("at", "id")
    lines: dict[tuple[int, str], list[str]] = {}
    for execution_id, op_id, message in rows.values_list("execution_id", "op_id", "message")[:LOG_LIMIT]:
        lines.setdefault((execution_id, op_id), []).append(message)
    return lines


def _submitter_message(submitter: Operation | None, logs: dict[tuple[int, str], list[str]], *, arn: str) -> str:
    """What the submitter sent, as text: its step result when it returned one, else what it logged."""
    if submitter is None:
        return ""
    result = ((submitter.doc or {}).get("StepDetails") or {}).get("Result")
    decoded = sdk_decoded(result, op_id=submitter.op_id, arn=arn) if result else None
    if decoded and decoded != "null":
        value = json.loads(decoded) if decoded.startswith('"') else None
        return value if isinstance(value, str) else decoded
    # A submitter run more than once (a retry, a replayed crash) logs the same text each time.
    return "\n".join(dict.fromkeys(logs.get((submitter.execution_id, submitter.op_id), [])))


def _branch_and_siblings(
    cb: Operation,
    contexts: dict[tuple[int, str], Operation],
    children: dict[tuple[int, str], list[Operation]],
) -> tuple[str, list[Sibling]]:
    waiter = contexts.get((cb.execution_id, cb.parent_id or ""))
    branch = contexts.get((cb.execution_id, waiter.parent_id or "")) if waiter else None
    if branch is None or branch.sub_type != "ParallelBranch":
        return "", []
    others = [
        Sibling(name=op.name or op.op_id, status=_answer_status(op, children))
        for op in children.get((cb.execution_id, branch.parent_id or ""), [])
        if op.op_id != branch.op_id and op.type == "CONTEXT"
    ]
    return branch.name or "", others


def _answer_status(branch: Operation, children: dict[tuple[int, str], list[Operation]]) -> str:
    """A sibling branch's state as its callback has it (TIMED_OUT reads better than the branch's
    FAILED); the branch's own status when it holds no callback."""
    pending = [branch]
    while pending:
        op = pending.pop()
        if op.type == "CALLBACK":
            status: str = op.status
            return status
        pending.extend(children.get((op.execution_id, op.op_id), []))
    own: str = branch.status
    return own


def decoded_input(text: str | None) -> list[tuple[str, str]]:
    """An execution's input as (key, value) pairs for a small list; a non-object is one pair."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return [("input", text)]
    if not isinstance(value, dict):
        return [("input", json.dumps(value, ensure_ascii=False))]
    return [(str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in value.items()]


# --- functions ------------------------------------------------------------------------------


def function_list() -> list[dict[str, Any]]:
    """Registered functions, each with its latest executions and running count (two queries)."""
    functions = list(Function.objects.order_by("name"))
    recent = _recent_by_function(RECENT_PER_FUNCTION)
    running = dict(
        Execution.objects.filter(status="RUNNING")
        .values("function_name")
        .annotate(n=Count("id"))
        .values_list("function_name", "n")
    )
    cards: list[dict[str, Any]] = [
        {"function": fn, "recent": recent.get(fn.name, []), "running": running.get(fn.name, 0)} for fn in functions
    ]
    return cards


def _recent_by_function(per_function: int) -> dict[str, list[dict[str, Any]]]:
    # LATERAL walks the (function_name, started_at) index once per function instead of sorting the table.
    sql = """
        SELECT f.name AS function_name, e.id, e.name, e.status, e.started_at, e.ended_at
        FROM durable_function f
        CROSS JOIN LATERAL (
            SELECT id, name, status, started_at, ended_at FROM durable_execution
            WHERE function_name = f.name ORDER BY started_at DESC LIMIT %s
        ) e
        ORDER BY f.name, e.started_at DESC
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [per_function])
        columns = [col[0] for col in cursor.description]
        rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
    result: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        result.setdefault(row["function_name"], []).append(row)
    return result


def function_get(*, name: str) -> Function:
    try:
        function: Function = Function.objects.get(name=name)
    except Function.DoesNotExist as exc:
        raise Http404("No such function.") from exc
    return function


def function_status_counts(*, name: str) -> dict[str, int]:
    rows = Execution.objects.filter(function_name=name).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


# --- audit ----------------------------------------------------------------------------------


def audit_list(*, before_id: int | None = None, limit: int = 100) -> tuple[list[AuditEntry], int | None]:
    qs = AuditEntry.objects.select_related("user").order_by("-id")
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    rows = list(qs[: limit + 1])
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def audit_for_execution(*, execution: Execution, limit: int = 50) -> list[AuditEntry]:
    return list(AuditEntry.objects.select_related("user").filter(execution_pk=execution.id).order_by("-id")[:limit])


def time_range_start(since: str, now: datetime | None = None) -> datetime | None:
    """Quick ranges of the list filter: '15m', '1h', '24h', '7d'."""
    spans = {
        "15m": timedelta(minutes=15),
        "1h": timedelta(hours=1),
        "24h": timedelta(hours=24),
        "7d": timedelta(days=7),
    }
    return (now or timezone.now()) - spans[since] if since in spans else None
