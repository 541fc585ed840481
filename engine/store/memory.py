"""An in-memory store and a fake clock, for unit tests of the state machine and the duties.

``install()`` puts a ``MemoryDatabase`` in PostgreSQL's place (the store, the connections the
duties open and the clock they read) until ``uninstall()``; the duties run unchanged. Each
function mirrors the named query the PostgreSQL store runs, including the guards the duties
rely on; where a statement's result depends on PostgreSQL's snapshot rules (a data-modifying
WITH sees the tables as they were when the statement began), the function reads before it writes
in the same order. ``tests/engine/test_store_contract.py`` runs one set of scenarios on both
stores and compares what they leave behind, so this file cannot drift from the SQL unnoticed.

What it does not model: the async-invoke queue, fault arming, effects and the timeline read
model run their own SQL and stay PostgreSQL's. One lock serialises every statement and every
transaction (a transaction holds it from begin to commit), which is the strictest isolation
there is: the duties' guards are tested for what they decide, not for races.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from engine import clock, db
from engine.machine import PENDING_STATUSES
from engine.rows import DueTimer, Execution, ExecutionRow, Invocation, OperationDoc, execution_row
from engine.store import records, use
from engine.store.records import OWN_TIMER_KINDS, SCHEDULER_LOOKS_EVERY, Sequences, numbered, op_record

Row = dict[str, Any]
EXECUTION_DEFAULTS: Row = {
    "status": "RUNNING",
    "result": None,
    "error": None,
    "ended_at": None,
    "invocation_seq": 0,
    "token_seq": 0,
    "running": False,
    "lease_until": None,
    "needs_invoke": True,
    "invoke_reason": "start",
    "consecutive_failures": 0,
    "op_seq": 1,
    "seen_seq": 0,
    "event_seq": 1,
    "counters": {},
    "pending_finish": None,
    "pause_state": None,
    "pause": None,
    "redispatches": 0,
    "quarantined_at": None,
    "quarantine": None,
}
ARMED_PHASES = ("body_start", "after_body")


class FakeClock:
    """The time the duties see: it moves only when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> datetime:
        self.moment += timedelta(seconds=seconds)
        return self.moment


@dataclass
class Tables:
    """The engine's tables as Python values, keyed as their unique indexes are."""

    functions: dict[str, Row] = field(default_factory=dict)
    code: dict[str, bytes] = field(default_factory=dict)
    executions: dict[int, Row] = field(default_factory=dict)
    operations: dict[int, dict[str, Row]] = field(default_factory=dict)  # execution id -> op id -> row
    events: dict[int, list[Row]] = field(default_factory=dict)
    timers: dict[tuple[int, str, str], datetime] = field(default_factory=dict)
    invocations: dict[tuple[int, int], Row] = field(default_factory=dict)
    body_runs: list[Row] = field(default_factory=list)
    logs: list[Row] = field(default_factory=list)
    faults: dict[int, Row] = field(default_factory=dict)
    workers: dict[int, Row] = field(default_factory=dict)  # durable_worker, by id
    next_id: int = 1


class MemoryDatabase:
    """One in-memory database: its tables, its clock, and the notifications it would have sent."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.tables = Tables()
        self.notifications: list[tuple[str, str]] = []
        self.lock = threading.RLock()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        yield Connection(self)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Every statement inside sees and makes one consistent state; an exception undoes them."""
        with self.lock:
            saved = copy.deepcopy(self.tables), len(self.notifications)
            try:
                yield Connection(self)
            except BaseException:
                self.tables, kept = saved
                del self.notifications[kept:]  # NOTIFY is sent only at commit
                raise

    def new_id(self) -> int:
        self.tables.next_id += 1
        return self.tables.next_id


@dataclass(frozen=True)
class Connection:
    database: MemoryDatabase


def _copy(row: Mapping[str, Any] | None) -> Row | None:
    """What a query hands back is the caller's to change: never the stored row itself."""
    return None if row is None else copy.deepcopy(dict(row))


def _execution(row: Mapping[str, Any]) -> ExecutionRow:
    return copy.deepcopy(execution_row(row))


def _invocation(row: Mapping[str, Any]) -> Invocation:
    return Invocation(**{field.name: copy.deepcopy(row[field.name]) for field in fields(Invocation)})


def _moment(value: datetime | str | None) -> datetime | None:
    """A timestamptz parameter: PostgreSQL reads ISO 8601 text as one."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class MemoryStore:
    """The ``engine.store.Store`` interface over a ``MemoryDatabase``'s tables."""

    # --- functions ------------------------------------------------------------------------

    def get_function(self, conn: Connection, name: str) -> Row | None:
        return _copy(conn.database.tables.functions.get(name))

    def list_functions(self, conn: Connection, *, after: str, limit: int) -> list[Row]:
        names = sorted(name for name in conn.database.tables.functions if name > after)[:limit]
        return [_copy(conn.database.tables.functions[name]) or {} for name in names]

    def upsert_function(self, conn: Connection, fn: Mapping[str, Any]) -> Row:
        with conn.database.lock:
            functions = conn.database.tables.functions
            values = {key: copy.deepcopy(value) for key, value in fn.items() if key != "now"}
            existing = functions.get(fn["name"])
            created_at = existing["created_at"] if existing else fn["now"]
            functions[fn["name"]] = {**values, "created_at": created_at, "last_modified": fn["now"]}
            return _copy(functions[fn["name"]]) or {}

    def store_code(self, conn: Connection, sha256: str, zip_bytes: bytes, now: Any) -> None:
        with conn.database.lock:
            conn.database.tables.code.setdefault(sha256, bytes(zip_bytes))

    def get_code(self, conn: Connection, sha256: str) -> bytes | None:
        return conn.database.tables.code.get(sha256)

    # --- executions -----------------------------------------------------------------------

    def insert_started_execution(
        self, conn: Connection, values: Mapping[str, Any], op: Row, event: Row, timeout_at: datetime
    ) -> ExecutionRow | None:
        database = conn.database
        with database.lock:
            tables = database.tables
            if self._by(tables, function_name=values["function_name"], name=values["name"]) is not None:
                return None
            execution_id = database.new_id()
            started = values["started_at"]
            row = {**copy.deepcopy(EXECUTION_DEFAULTS), **values, "id": execution_id, "dispatched_at": started}
            tables.executions[execution_id] = row
            record = op_record(1, op)
            tables.operations[execution_id] = {}
            self._upsert_op(tables, execution_id, {**record, "started_at": started, "attempt": 0})
            tables.events[execution_id] = []
            self._record_event(tables, execution_id, 1, event, started, None)
            tables.timers[(execution_id, "execution_timeout", "")] = timeout_at
            if timeout_at < started + SCHEDULER_LOOKS_EVERY:
                database.notifications.append(("durable_timers", str(execution_id)))
            return _execution(row)

    @staticmethod
    def _by(tables: Tables, **match: Any) -> Row | None:
        return next(
            (row for row in tables.executions.values() if all(row[k] == v for k, v in match.items())),
            None,
        )

    def execution_by_name(self, conn: Connection, function_name: str, name: str) -> ExecutionRow | None:
        row = self._by(conn.database.tables, function_name=function_name, name=name)
        return None if row is None else _execution(row)

    def execution_by_arn(self, conn: Connection, arn: str, *, lock: bool = False) -> ExecutionRow | None:
        row = self._by(conn.database.tables, arn=arn)
        return None if row is None else _execution(row)

    def execution_at(self, conn: Connection, arn: str) -> Execution | None:
        row = self.execution_by_arn(conn, arn)
        return None if row is None else Execution(**row)

    def execution_by_id(self, conn: Connection, execution_id: int, *, lock: bool = False) -> ExecutionRow | None:
        row = conn.database.tables.executions.get(execution_id)
        return None if row is None else _execution(row)

    def list_function_executions(
        self, conn: Connection, filters: Mapping[str, Any], *, oldest_first: bool, limit: int
    ) -> list[Execution]:
        marker = (filters["m_started"], filters["m_id"] or 0) if filters["m_started"] is not None else None

        def wanted(row: Row) -> bool:
            key = (row["started_at"], row["id"])
            return (
                row["function_name"] == filters["function"]
                and (filters["after"] is None or row["started_at"] >= filters["after"])
                and (filters["before"] is None or row["started_at"] < filters["before"])
                and (marker is None or (key > marker if oldest_first else key < marker))
                and (filters["name"] is None or row["name"] == filters["name"])
                and (filters["statuses"] is None or (row["pause_state"] or row["status"]) in filters["statuses"])
            )

        rows = sorted(
            (row for row in conn.database.tables.executions.values() if wanted(row)),
            key=lambda row: (row["started_at"], row["id"]),
            reverse=not oldest_first,
        )
        return [Execution(**_execution(row)) for row in rows[:limit]]

    def update_execution(self, conn: Connection, execution_id: int, **values: Any) -> None:
        with conn.database.lock:
            row = conn.database.tables.executions.get(execution_id)
            if row is not None:
                row.update(copy.deepcopy(values))

    def has_pending_work(self, conn: Connection, execution_id: int) -> bool:
        ops = conn.database.tables.operations.get(execution_id, {}).values()
        return any(op["status"] in PENDING_STATUSES.get(op["type"], ()) for op in ops)

    # --- operations and history -----------------------------------------------------------

    @staticmethod
    def _ordered_ops(tables: Tables, execution_id: int) -> list[Row]:
        return sorted(tables.operations.get(execution_id, {}).values(), key=lambda op: op["ordinal"])

    def load_ops(
        self, conn: Connection, execution_id: int, op_ids: Iterable[str] | None = None
    ) -> dict[str, OperationDoc]:
        wanted = None if op_ids is None else set(op_ids)
        ops = self._ordered_ops(conn.database.tables, execution_id)
        return {op["op_id"]: copy.deepcopy(op["doc"]) for op in ops if wanted is None or op["op_id"] in wanted}

    def ops_touched_since(self, conn: Connection, execution_id: int, seq: int) -> list[OperationDoc]:
        ops = self._ordered_ops(conn.database.tables, execution_id)
        return [copy.deepcopy(op["doc"]) for op in ops if op["touch_seq"] > seq]

    def defer_outcome(self, conn: Connection, execution_id: int, op_id: str, outcome: Mapping[str, Any]) -> None:
        with conn.database.lock:
            op = conn.database.tables.operations.get(execution_id, {}).get(op_id)
            if op is not None:
                op["deferred_outcome"] = copy.deepcopy(dict(outcome))

    def take_deferred_outcomes(self, conn: Connection, execution_id: int) -> list[tuple[OperationDoc, dict[str, Any]]]:
        taken = []
        with conn.database.lock:
            for op in self._ordered_ops(conn.database.tables, execution_id):
                if op.get("deferred_outcome") is not None:
                    taken.append((copy.deepcopy(op["doc"]), op.pop("deferred_outcome")))
        return taken

    def execution_by_callback(self, conn: Connection, callback_id: str) -> Row | None:
        tables = conn.database.tables
        for execution_id, ops in tables.operations.items():
            for op in ops.values():
                if op["callback_id"] == callback_id:
                    fn = tables.functions.get(tables.executions[execution_id]["function_name"])
                    return {
                        **_execution(tables.executions[execution_id]),
                        "callback_op": copy.deepcopy(op["doc"]),
                        "fn_timeout": fn["timeout"] if fn else None,
                    }
        return None

    def callback_heartbeat_timeout(self, conn: Connection, execution_id: int, op_id: str) -> int | None:
        for event in conn.database.tables.events.get(execution_id, []):
            if event["op_id"] == op_id and event["event_type"] == "CallbackStarted":
                details = event["doc"].get("CallbackStartedDetails") or {}
                return details.get("HeartbeatTimeout")
        return None

    def read_events(self, conn: Connection, execution_id: int, *, after: int, limit: int, reverse: bool) -> list[Row]:
        events = conn.database.tables.events.get(execution_id, [])
        if reverse:
            chosen = [e for e in reversed(events) if e["event_id"] < after]
        else:
            chosen = [e for e in events if e["event_id"] > after]
        return [{key: copy.deepcopy(e[key]) for key in ("event_id", "timestamp", "doc")} for e in chosen[:limit]]

    # --- timers ---------------------------------------------------------------------------

    def set_timer(self, conn: Connection, execution_id: int, kind: str, op_id: str, due: datetime) -> None:
        database = conn.database
        with database.lock:
            database.tables.timers[(execution_id, kind, op_id)] = due
            if due < database.clock.now() + SCHEDULER_LOOKS_EVERY:
                database.notifications.append(("durable_timers", str(execution_id)))

    def execution_timeout_due(self, conn: Connection, execution_id: int) -> datetime | None:
        return conn.database.tables.timers.get((execution_id, "execution_timeout", ""))

    def announce_timers(self, conn: Connection, execution_id: int) -> None:
        database = conn.database
        if any(e == execution_id and kind in OWN_TIMER_KINDS for e, kind, _ in database.tables.timers):
            database.notifications.append(("durable_timers", str(execution_id)))

    def cancel_all_timers_and_announce_done(self, conn: Connection, execution_id: int, arn: str) -> None:
        database = conn.database
        with database.lock:
            for key in [key for key in database.tables.timers if key[0] == execution_id]:
                del database.tables.timers[key]
            database.notifications.append(("durable_done", arn))

    def take_due_timers(
        self, conn: Connection, now: datetime, limit: int, execution_id: int | None = None
    ) -> list[DueTimer]:
        with conn.database.lock:
            timers = conn.database.tables.timers
            due = sorted(
                (due_at, key)
                for key, due_at in timers.items()
                if due_at <= now and (execution_id is None or key[0] == execution_id)
            )[:limit]
            for _, key in due:
                del timers[key]
            return [DueTimer(e, kind, op_id, at) for at, (e, kind, op_id) in due]

    def _quarantined(self, tables: Tables, execution_id: int) -> bool:
        row = tables.executions.get(execution_id)
        return row is not None and row["quarantined_at"] is not None

    def due_timer_executions(
        self, conn: Connection, now: datetime, limit: int, running_grace: timedelta | None = None
    ) -> list[int]:
        tables = conn.database.tables
        first_due: dict[int, datetime] = {}
        for (execution_id, kind, _), due_at in tables.timers.items():
            if due_at > now or self._quarantined(tables, execution_id):
                continue
            if running_grace is not None:
                running = tables.executions.get(execution_id, {}).get("running")
                if running and kind in OWN_TIMER_KINDS and due_at > now - running_grace:
                    continue
            first_due[execution_id] = min(due_at, first_due.get(execution_id, due_at))
        return sorted(first_due, key=lambda execution_id: first_due[execution_id])[:limit]

    def next_timer_due(
        self, conn: Connection, now: datetime, running_grace: timedelta | None = None
    ) -> datetime | None:
        tables = conn.database.tables
        moments = []
        for (execution_id, kind, _), due_at in tables.timers.items():
            if self._quarantined(tables, execution_id):
                continue
            if running_grace is not None and due_at <= now + running_grace:
                running = tables.executions.get(execution_id, {}).get("running")
                moments.append(due_at + running_grace if running and kind in OWN_TIMER_KINDS else due_at)
            else:
                moments.append(due_at)
        return min(moments, default=None)

    # --- invocations ----------------------------------------------------------------------

    def insert_invocation(self, conn: Connection, values: Mapping[str, Any]) -> None:
        database = conn.database
        with database.lock:
            key = (values["execution_id"], values["seq"])
            row = {**values, "id": database.new_id(), "ended_at": None, "outcome": None, "error": None}
            database.tables.invocations[key] = row

    def claim_invocation(self, conn: Connection, values: Mapping[str, Any]) -> Row | None:
        database = conn.database
        with database.lock:
            tables = database.tables
            row = tables.executions.get(values["execution_id"])
            if row is None or not self._claimable(row, values["generation"]):
                return None
            fn = tables.functions.get(row["function_name"])
            if fn is None:
                return None
            now = values["now"]
            counters = dict(row["counters"] or {})
            counters["invocations"] = int(counters.get("invocations", 0)) + 1
            deadline = now + timedelta(seconds=fn["timeout"])
            row.update(
                invocation_seq=row["invocation_seq"] + 1,
                running=True,
                needs_invoke=False,
                seen_seq=row["op_seq"],
                lease_until=deadline + values["lease_grace"],
                counters=counters,
            )
            invocation = {
                "execution_id": row["id"],
                "seq": row["invocation_seq"],
                "request_id": values["request_id"],
                "reason": row["invoke_reason"],
                "started_at": now,
                "deadline": deadline,
                "worker": values["worker"],
                "pid": values["pid"],
                "dispatched_at": row["dispatched_at"],
            }
            self.insert_invocation(conn, invocation)
            ops = self._ordered_ops(tables, row["id"])
            return {
                **_execution(row),
                **{f"fn_{key}": copy.deepcopy(fn[key]) for key in ("name", "handler", "timeout", "environment")},
                "fn_runtime": fn.get("runtime"),
                "fn_code_sha256": fn.get("code_sha256"),
                "deadline": deadline,
                "ops": [copy.deepcopy(op["doc"]) for op in ops],
                "ops_seq": max((op["touch_seq"] for op in ops), default=None),
                "faults": self.armed_faults(conn, row["id"]),
            }

    @staticmethod
    def _claimable(row: Row, generation: int | None) -> bool:
        return (
            row["status"] == "RUNNING"
            and not row["running"]
            and row["needs_invoke"]
            and row["pause_state"] is None
            and row["redispatches"] <= (generation if generation is not None else row["redispatches"])
        )

    def unclaimed_execution(self, conn: Connection, execution_id: int, generation: int | None) -> Row | None:
        tables = conn.database.tables
        row = tables.executions.get(execution_id)
        if row is None:
            return None
        return {
            **_execution(row),
            "claimable": self._claimable(row, generation),
            "function_found": row["function_name"] in tables.functions,
        }

    def get_invocation(self, conn: Connection, execution_id: int, seq: int) -> Invocation | None:
        row = conn.database.tables.invocations.get((execution_id, seq))
        return None if row is None else _invocation(row)

    def execution_with_invocation(
        self, conn: Connection, execution_id: int, seq: int
    ) -> tuple[ExecutionRow | None, Invocation | None]:
        row = conn.database.tables.executions.get(execution_id)
        if row is None:
            return None, None
        return _execution(row), self.get_invocation(conn, execution_id, seq)

    def killed_now(self, conn: Connection, execution_id: int, seq: int) -> bool:
        return any(
            f["execution_id"] == execution_id
            and f["invocation_seq"] == seq
            and f["phase"] == "now"
            and f["fired_at"] is not None
            for f in conn.database.tables.faults.values()
        )

    def invocation_run_by(self, conn: Connection, execution_id: int, worker: str, pid: int) -> int | None:
        seqs = [
            seq
            for (e, seq), row in conn.database.tables.invocations.items()
            if e == execution_id and row["worker"] == worker and row["pid"] == pid and row["ended_at"] is None
        ]
        return max(seqs, default=None)

    def running_invocations(self, conn: Connection, now: datetime, limit: int) -> list[Invocation]:
        tables = conn.database.tables
        running = sorted(
            (row for row in tables.executions.values() if row["running"] and row["quarantined_at"] is None),
            key=lambda row: row["lease_until"],
        )
        keys = [(row["id"], row["invocation_seq"]) for row in running]
        return [_invocation(tables.invocations[key]) for key in keys if key in tables.invocations][:limit]

    def end_invocation(
        self,
        conn: Connection,
        execution_id: int,
        seq: int,
        end: Mapping[str, Any],
        body_runs: list[Row],
        log_lines: list[Row],
    ) -> None:
        with conn.database.lock:
            tables = conn.database.tables
            event_id, event = end["event_id"], end["event"]
            self._record_event(tables, execution_id, event_id, event, end["now"], seq, "InvocationCompleted")
            self._close_invocation(tables, execution_id, seq, end["now"], end["outcome"], end["error"])
            self._record_journal(tables, execution_id, seq, body_runs, log_lines)

    @staticmethod
    def _close_invocation(
        tables: Tables, execution_id: int, seq: int, now: datetime, outcome: str, error: Row | None
    ) -> None:
        invocation = tables.invocations.get((execution_id, seq))
        if invocation is not None and invocation["ended_at"] is None:
            invocation.update(ended_at=now, outcome=outcome, error=copy.deepcopy(error) or None)

    @staticmethod
    def _record_journal(tables: Tables, execution_id: int, seq: int, runs: list[Row], logs: list[Row]) -> None:
        for run in runs:
            tables.body_runs.append(
                {
                    "execution_id": execution_id,
                    "invocation_seq": seq,
                    **{key: run.get(key) for key in ("op_id", "name", "attempt", "outcome")},
                    "started_at": _moment(run.get("started_at")),
                    "ended_at": _moment(run.get("ended_at")),
                }
            )
        for line in logs:
            tables.logs.append(
                {
                    "execution_id": execution_id,
                    "invocation_seq": seq,
                    **{key: line.get(key) for key in ("level", "logger", "message", "op_id")},
                    "at": _moment(line.get("at")),
                }
            )

    # --- re-dispatch and quarantine -------------------------------------------------------

    def presumed_lost(
        self,
        conn: Connection,
        now: datetime,
        after: timedelta,
        backstop: timedelta,
        limit: int,
        taken_before: datetime | None = None,
    ) -> list[Row]:
        tables = conn.database.tables
        sent = [row["dispatched_at"] for row in tables.invocations.values() if row["dispatched_at"] is not None]
        consumed = max(sent, default=None)

        def lost(row: Row) -> bool:
            at = row["dispatched_at"]
            if at is None:
                return True
            overtaken = at < now - after and consumed is not None and consumed > at + after
            taken = taken_before is not None and at <= taken_before
            return bool(overtaken or taken or at < now - backstop * 2 ** min(row["redispatches"], 6))

        owed = [
            row
            for row in tables.executions.values()
            if row["needs_invoke"]
            and not row["running"]
            and row["status"] == "RUNNING"
            and row["quarantined_at"] is None
            and row["pause_state"] is None
            and lost(row)
        ]
        owed.sort(key=lambda row: (row["dispatched_at"] is not None, row["dispatched_at"] or now))
        return [{"id": row["id"], "redispatches": row["redispatches"]} for row in owed[:limit]]

    def mark_redispatched(self, conn: Connection, execution_id: int, now: datetime) -> Row | None:
        with conn.database.lock:
            tables = conn.database.tables
            row = tables.executions.get(execution_id)
            if row is None or not (
                row["needs_invoke"] and not row["running"] and row["status"] == "RUNNING" and row["pause_state"] is None
            ):
                return None
            row.update(redispatches=row["redispatches"] + 1, dispatched_at=now)
            fn = tables.functions.get(row["function_name"])
            return {"redispatches": row["redispatches"], "fn_timeout": fn["timeout"] if fn else None}

    def mark_undispatched(self, conn: Connection, execution_ids: list[int]) -> None:
        with conn.database.lock:
            for execution_id in execution_ids:
                row = conn.database.tables.executions.get(execution_id)
                if row is not None and row["needs_invoke"] and not row["running"]:
                    row["dispatched_at"] = None

    def quarantine(self, conn: Connection, execution_id: int, note: Mapping[str, Any], now: datetime) -> None:
        self.update_execution(conn, execution_id, quarantined_at=now, quarantine=dict(note))

    def release_quarantine(self, conn: Connection, arn: str) -> Row | None:
        with conn.database.lock:
            row = self._by(conn.database.tables, arn=arn)
            if row is None or row["quarantined_at"] is None:
                return None
            released = {"id": row["id"], "quarantined_at": row["quarantined_at"], "quarantine": row["quarantine"]}
            row.update(quarantined_at=None, quarantine=None)
            return released

    # --- the replay record's faults -------------------------------------------------------

    def armed_faults(self, conn: Connection, execution_id: int) -> list[Row]:
        faults = conn.database.tables.faults
        return [
            {key: faults[i][key] for key in ("id", "kind", "step_name", "phase")}
            for i in sorted(faults)
            if faults[i]["execution_id"] == execution_id
            and faults[i]["fired_at"] is None
            and faults[i]["phase"] in ARMED_PHASES
        ]

    def mark_fault_fired(self, conn: Connection, fault_id: int, at: datetime | str, invocation_seq: int) -> None:
        with conn.database.lock:
            fault = conn.database.tables.faults.get(fault_id)
            if fault is not None and fault["fired_at"] is None:
                fault.update(fired_at=_moment(at), invocation_seq=invocation_seq)

    def arm_fault(self, conn: Connection, execution_id: int, step_name: str | None, phase: str) -> int:
        """Arm a kill (what engine.faults does in SQL), for unit tests of the replay record."""
        database = conn.database
        with database.lock:
            fault_id = database.new_id()
            database.tables.faults[fault_id] = {
                "id": fault_id,
                "execution_id": execution_id,
                "kind": "kill",
                "step_name": step_name,
                "phase": phase,
                "fired_at": None,
                "invocation_seq": None,
            }
            return fault_id

    # --- the duties' guarded writes -------------------------------------------------------

    @staticmethod
    def _upsert_op(tables: Tables, execution_id: int, record: Row) -> None:
        ops = tables.operations.setdefault(execution_id, {})
        existing = ops.get(record["op_id"])
        if existing is None:
            ops[record["op_id"]] = {
                "op_id": record["op_id"],
                "ordinal": record["seq"],
                "touch_seq": record["seq"],
                **{key: record.get(key) for key in ("parent_id", "name", "type", "sub_type", "status", "attempt")},
                "started_at": _moment(record.get("started_at")),
                "ended_at": _moment(record.get("ended_at")),
                "callback_id": record.get("callback_id"),
                "doc": copy.deepcopy(record["doc"]),
            }
            return
        existing.update(
            status=record["status"],
            attempt=record["attempt"],
            touch_seq=record["seq"],
            ended_at=_moment(record.get("ended_at")),
            callback_id=existing["callback_id"] or record.get("callback_id"),
            doc=copy.deepcopy(record["doc"]),
        )

    @staticmethod
    def _record_event(
        tables: Tables,
        execution_id: int,
        event_id: int,
        doc: Row,
        now: datetime,
        invocation_seq: int | None,
        event_type: str | None = None,
    ) -> None:
        tables.events.setdefault(execution_id, []).append(
            {
                "event_id": event_id,
                "event_type": event_type or doc["EventType"],
                "timestamp": now,
                "op_id": doc.get("Id"),
                "invocation_seq": invocation_seq,
                "doc": copy.deepcopy(doc),
            }
        )

    @staticmethod
    def _any_timer_due(tables: Tables, execution_id: int, now: datetime) -> bool:
        return any(e == execution_id and due <= now for (e, _, _), due in tables.timers.items())

    @staticmethod
    def _guard_holds(row: Row | None, guard: Mapping[str, Any] | None, wake: str | None) -> bool:
        if row is None:
            return False
        if guard is None:
            return True
        sequences_hold = all(row[key] == guard[key] for key in ("token_seq", "op_seq", "event_seq"))
        if not (sequences_hold and row["status"] == "RUNNING" and row["pending_finish"] is None):
            return False
        if wake is None:  # a running invocation's own write
            return bool(row["running"]) and row["pause_state"] is None
        return bool(
            row["invocation_seq"] == guard["invocation_seq"]
            and row["running"] == guard["running"]
            and row["pause_state"] == guard["pause_state"]
        )

    def write_transition(
        self,
        conn: Connection,
        execution: Mapping[str, Any],
        ops: Sequence[Mapping[str, Any]],
        events: list[Row],
        timers: list[tuple[str, str, datetime]],
        cancel: list[tuple[str, str]],
        now: datetime,
        *,
        invocation_seq: int | None,
        mark_seen: bool,
        guard: Mapping[str, Any] | None = None,
        wake: str | None = None,
        durable: bool = True,
    ) -> tuple[Sequences, bool, bool]:
        database = conn.database
        with database.lock:
            tables = database.tables
            op_records, event_records, sequences = numbered(
                execution, ops, ((e, None) for e in events), mark_seen=mark_seen
            )
            execution_id = execution["id"]
            timers_due = self._any_timer_due(tables, execution_id, now)  # the statement's snapshot
            row = tables.executions.get(execution_id)
            written = self._guard_holds(row, guard, wake)
            if row is not None and written:
                row.update(sequences.columns(), token_seq=execution["token_seq"])
                row["counters"] = copy.deepcopy(execution["counters"])
                if wake is not None:
                    row.update(needs_invoke=True, invoke_reason=wake)
                    if not row["running"] and row["pause_state"] is None:
                        row["dispatched_at"] = now
            if not written and guard is not None:  # the guarded variants write nothing at all
                return sequences, False, timers_due
            for record in op_records:
                self._upsert_op(tables, execution_id, record)
            for record in event_records:
                self._record_event(tables, execution_id, record["event_id"], record["doc"], now, invocation_seq)
            set_keys = {(kind, op_id) for kind, op_id, _ in timers}
            for kind, op_id in cancel:
                if (kind, op_id) not in set_keys:
                    tables.timers.pop((execution_id, kind, op_id), None)
            for kind, op_id, due in timers:
                tables.timers[(execution_id, kind, op_id)] = due
            announced = [kind for kind, _, due in timers if due < now + SCHEDULER_LOOKS_EVERY]
            if guard is not None and wake is None:  # the invocation fires its own timers
                announced = [kind for kind in announced if kind not in OWN_TIMER_KINDS]
            if announced:
                database.notifications.append(("durable_timers", str(execution_id)))
            return sequences, written, timers_due

    def end_invocation_guarded(
        self,
        conn: Connection,
        execution: Mapping[str, Any],
        seq: int,
        guard: Mapping[str, int],
        ending: Mapping[str, Any],
        journal: tuple[list[Row], list[Row]],
    ) -> tuple[Row | None, Sequences]:
        database = conn.database
        with database.lock:
            tables = database.tables
            op_records, event_records, sequences = numbered(
                execution, ending["ops"], ending["events"], mark_seen=True, unseen_ops=ending["fired"]
            )
            execution_id, now, wake = execution["id"], ending["now"], ending["wake"]
            fired = {op["Id"] for op in ending["fired"]}
            finished = execution["status"] != "RUNNING"
            due = [
                kind == "wait" and op_id in fired
                for (e, kind, op_id), due_at in tables.timers.items()
                if e == execution_id and due_at <= now
            ]
            own_left = any(
                e == execution_id and kind in OWN_TIMER_KINDS and not (kind == "wait" and op_id in fired)
                for e, kind, op_id in tables.timers
            )
            row = tables.executions.get(execution_id)
            if not (
                row is not None
                and row["invocation_seq"] == seq
                and all(row[key] == guard[key] for key in ("token_seq", "op_seq", "event_seq"))
                and row["status"] == "RUNNING"
                and row["running"]
                and row["pending_finish"] is None
                and row["pause_state"] is None
                and (finished or all(due))
                and sum(due) == len(fired)
            ):
                return None, sequences
            row.update(
                status=execution["status"],
                result=execution["result"],
                error=None,
                ended_at=execution["ended_at"],
                running=False,
                lease_until=None,
                needs_invoke=wake is not None,
                invoke_reason=wake if wake is not None else row["invoke_reason"],
                dispatched_at=now if wake is not None else row["dispatched_at"],
                consecutive_failures=0,
                token_seq=execution["token_seq"],
                counters=copy.deepcopy(execution["counters"]),
                **sequences.columns(),
            )
            self._close_invocation(tables, execution_id, seq, now, ending["outcome"], None)
            for record in op_records:
                if record["op_id"] in tables.operations.get(execution_id, {}):
                    self._upsert_op(tables, execution_id, record)
            for record in event_records:
                self._record_event(tables, execution_id, record["event_id"], record["doc"], now, record["inv"])
            self._record_journal(tables, execution_id, seq, *journal)
            for key in [k for k in tables.timers if k[0] == execution_id]:
                if finished or (key[1] == "wait" and key[2] in fired):
                    del tables.timers[key]
            if finished:
                database.notifications.append(("durable_done", execution["arn"]))
            elif own_left:
                database.notifications.append(("durable_timers", str(execution_id)))
            fn = tables.functions.get(execution["function_name"])
            return {"written": True, "fn_timeout": fn["timeout"] if fn else None}, sequences

    def lock_if_unchanged(self, conn: Connection, seen: Mapping[str, Any]) -> ExecutionRow | None:
        row = conn.database.tables.executions.get(seen["id"])
        if row is None:
            return None
        same = all(row[key] == seen[key] for key in records.GUARDED_COLUMNS)
        if not same or (row["pending_finish"] is None) != (seen.get("pending_finish") is None):
            return None
        return _execution(row)

    def read_checkpoint_snapshot(self, conn: Connection, arn: str, op_ids: list[str], now: datetime) -> Row | None:
        database = conn.database
        with database.lock:
            tables = database.tables
            row = self._by(tables, arn=arn)
            if row is None:
                return None
            ops = tables.operations.get(row["id"], {})
            unseen = self.ops_touched_since(conn, row["id"], row["seen_seq"]) if row["op_seq"] > row["seen_seq"] else []
            return {
                **_execution(row),
                "referenced_ops": [copy.deepcopy(ops[op_id]["doc"]) for op_id in op_ids if op_id in ops],
                "unseen_ops": unseen,
                "timers_due": self._any_timer_due(tables, row["id"], now),
            }

    # --- retention ------------------------------------------------------------------------

    def purge_expired(self, conn: Connection, limit: int) -> int:
        now = conn.database.clock.now()
        ids = [
            row["id"]
            for row in conn.database.tables.executions.values()
            if row["ended_at"] is not None and row["ended_at"] < now - timedelta(days=row["retention_days"])
        ][:limit]
        if ids:
            self.purge_executions(conn, ids)
        return len(ids)

    def purge_executions(self, conn: Connection, ids: list[int]) -> None:
        with conn.database.lock:
            tables, gone = conn.database.tables, set(ids)
            for execution_id in gone:
                tables.executions.pop(execution_id, None)
                tables.operations.pop(execution_id, None)
                tables.events.pop(execution_id, None)
            tables.timers = {key: due for key, due in tables.timers.items() if key[0] not in gone}
            tables.invocations = {key: row for key, row in tables.invocations.items() if key[0] not in gone}
            tables.body_runs = [run for run in tables.body_runs if run["execution_id"] not in gone]
            tables.logs = [line for line in tables.logs if line["execution_id"] not in gone]
            tables.faults = {i: f for i, f in tables.faults.items() if f["execution_id"] not in gone}

    # --- worker processes and the control channel (issue 19) -------------------------------

    @staticmethod
    def _own_workers(conn: Connection, worker: Mapping[str, Any]) -> list[Row]:
        return [
            row
            for row in conn.database.tables.workers.values()
            if row["host_id"] == worker["host_id"]
            and row["hostname"] == worker["hostname"]
            and row["started_at"] >= worker["since"]
            and row["stopped_at"] is None
        ]

    def register_worker(
        self, conn: Connection, worker: Mapping[str, Any], pid: int, role: str, started_at: datetime
    ) -> int:
        with conn.database.lock:
            worker_id = conn.database.new_id()
            conn.database.tables.workers[worker_id] = {
                "id": worker_id,
                "host_id": worker["host_id"],
                "hostname": worker["hostname"],
                "pid": pid,
                "role": role,
                "started_at": started_at,
                "heartbeat_at": conn.database.clock.now(),
                "stopped_at": None,
                "lost_at": None,
            }
            return worker_id

    def renew_workers(self, conn: Connection, worker: Mapping[str, Any], pids: list[int], beat: timedelta) -> None:
        now = conn.database.clock.now()
        with conn.database.lock:
            for row in self._own_workers(conn, worker):
                if row["pid"] in pids:
                    row["heartbeat_at"] = now
                elif row["heartbeat_at"] < now - beat:
                    row["stopped_at"] = now

    def stop_workers(self, conn: Connection, worker: Mapping[str, Any]) -> None:
        now = conn.database.clock.now()
        with conn.database.lock:
            for row in self._own_workers(conn, worker):
                row["stopped_at"] = now

    def lost_hosts(self, conn: Connection, hosts: list[str], lease: timedelta) -> dict[str, set[int]]:
        now = conn.database.clock.now()
        by_host: dict[str, list[Row]] = {}
        for row in conn.database.tables.workers.values():
            if row["host_id"] in hosts:
                by_host.setdefault(row["host_id"], []).append(row)
        return {
            host: {row["pid"] for row in rows}
            for host, rows in by_host.items()
            if not any(_worker_live(row, now, lease) for row in rows)
        }

    def worker_process_state(self, conn: Connection, host_id: str, pid: int, lease: timedelta) -> Row:
        now = conn.database.clock.now()
        rows = [row for row in conn.database.tables.workers.values() if row["host_id"] == host_id]
        return {
            "registered": bool(rows),
            "live": any(_worker_live(row, now, lease) for row in rows),
            "process_running": any(row["pid"] == pid and row["stopped_at"] is None for row in rows),
        }

    def newly_lost_hosts(self, conn: Connection, lease: timedelta) -> list[str]:
        now = conn.database.clock.now()
        rows = list(conn.database.tables.workers.values())
        last_beat: dict[str, datetime] = {}
        for row in rows:
            if row["stopped_at"] is None and row["lost_at"] is None:
                last_beat[row["host_id"]] = max(row["heartbeat_at"], last_beat.get(row["host_id"], row["heartbeat_at"]))
        live = {row["host_id"] for row in rows if _worker_live(row, now, lease)}
        goodbye: dict[str, datetime] = {}
        for row in rows:
            if row["stopped_at"] is not None:
                goodbye[row["host_id"]] = max(row["stopped_at"], goodbye.get(row["host_id"], row["stopped_at"]))
        return sorted(
            host
            for host, beat in last_beat.items()
            if host not in live and (host not in goodbye or beat >= goodbye[host])
        )

    def mark_host_lost(self, conn: Connection, host_id: str) -> None:
        now = conn.database.clock.now()
        with conn.database.lock:
            for row in conn.database.tables.workers.values():
                if row["host_id"] == host_id and row["stopped_at"] is None and row["lost_at"] is None:
                    row["lost_at"] = now

    def notify_control(self, conn: Connection, message: Mapping[str, Any]) -> None:
        with conn.database.lock:
            conn.database.notifications.append(("durable_control", json.dumps(message)))


def _worker_live(row: Row, now: datetime, lease: timedelta) -> bool:
    return row["stopped_at"] is None and row["heartbeat_at"] >= now - lease


# --- putting it in PostgreSQL's place ---------------------------------------------------------


@dataclass
class Installed:
    database: MemoryDatabase
    store: MemoryStore
    previous_clock: Callable[[], datetime]


def install(database: MemoryDatabase | None = None) -> Installed:
    """Run the engine on a memory database (a new one unless given) until ``uninstall``: the store,
    the connections (``engine.db.connection`` / ``transaction``) and the duties' clock."""
    database = database or MemoryDatabase()
    memory = MemoryStore()
    use(memory)
    db.use_source(database)
    previous_clock = clock.set_clock(database.clock.now)
    return Installed(database, memory, previous_clock)


def uninstall(installed: Installed) -> None:
    use(None)
    db.use_source(None)
    clock.set_clock(installed.previous_clock)
