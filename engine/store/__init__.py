"""Where the engine keeps its rows: the ``Store`` interface the duties write through, and which
store is in use.

Two stores implement it:

- ``engine.store.postgres``: the real one, every function a named query of ``engine/sql/`` run
  on the caller's psycopg connection (inside the caller's transaction);
- ``engine.store.memory``: the same functions over Python dicts, with a fake clock, so the state
  machine and the duties are unit-tested without PostgreSQL (``tests/engine/unit/``);
  ``tests/engine/test_store_contract.py`` runs one set of scenarios on both and compares them.

Callers write ``from engine.store import store`` and call ``store.load_ops(conn, ...)``: ``store``
is whichever is in use (PostgreSQL unless ``engine.store.memory.install`` put the memory store
in its place), and ``conn`` comes from ``engine.db.connection()`` / ``engine.db.transaction()``,
which follow the same switch. What both stores share (numbering rows, the timer constants) is in
``engine.store.records``; the constants are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from engine.rows import DueTimer, Execution, ExecutionRow, Invocation, OperationDoc
from engine.store.records import OWN_TIMER_KINDS, SCHEDULER_LOOKS_EVERY, Sequences, ms_to_datetime

__all__ = ["OWN_TIMER_KINDS", "SCHEDULER_LOOKS_EVERY", "Sequences", "Store", "ms_to_datetime", "store", "use"]

Row = dict[str, Any]
# A psycopg connection (engine.db.Conn) for the PostgreSQL store, a memory.Connection for the
# memory store: each store only ever receives its own.
Connection = Any


class Store(Protocol):
    """Everything the engine reads and writes. Each call is one statement of the caller's
    transaction; the PostgreSQL store's docstrings say what each one does and why."""

    # functions and their code
    def get_function(self, conn: Connection, name: str) -> Row | None: ...
    def list_functions(self, conn: Connection, *, after: str, limit: int) -> list[Row]: ...
    def upsert_function(self, conn: Connection, fn: Mapping[str, Any]) -> Row: ...
    def store_code(self, conn: Connection, sha256: str, zip_bytes: bytes, now: Any) -> None: ...
    def get_code(self, conn: Connection, sha256: str) -> bytes | None: ...

    # executions
    def insert_started_execution(
        self, conn: Connection, values: Mapping[str, Any], op: Row, event: Row, timeout_at: datetime
    ) -> ExecutionRow | None: ...
    def execution_by_name(self, conn: Connection, function_name: str, name: str) -> ExecutionRow | None: ...
    def execution_by_arn(self, conn: Connection, arn: str, *, lock: bool = False) -> ExecutionRow | None: ...
    def execution_at(self, conn: Connection, arn: str) -> Execution | None: ...
    def execution_by_id(self, conn: Connection, execution_id: int, *, lock: bool = False) -> ExecutionRow | None: ...
    def list_function_executions(
        self, conn: Connection, filters: Mapping[str, Any], *, oldest_first: bool, limit: int
    ) -> list[Execution]: ...
    def update_execution(self, conn: Connection, execution_id: int, **values: Any) -> None: ...
    def has_pending_work(self, conn: Connection, execution_id: int) -> bool: ...

    # operations and history
    def load_ops(
        self, conn: Connection, execution_id: int, op_ids: Iterable[str] | None = None
    ) -> dict[str, OperationDoc]: ...
    def ops_touched_since(self, conn: Connection, execution_id: int, seq: int) -> list[OperationDoc]: ...
    def defer_outcome(self, conn: Connection, execution_id: int, op_id: str, outcome: Mapping[str, Any]) -> None: ...
    def take_deferred_outcomes(
        self, conn: Connection, execution_id: int
    ) -> list[tuple[OperationDoc, dict[str, Any]]]: ...
    def execution_by_callback(self, conn: Connection, callback_id: str) -> Row | None: ...
    def callback_heartbeat_timeout(self, conn: Connection, execution_id: int, op_id: str) -> int | None: ...
    def read_events(
        self, conn: Connection, execution_id: int, *, after: int, limit: int, reverse: bool
    ) -> list[Row]: ...

    # timers
    def set_timer(self, conn: Connection, execution_id: int, kind: str, op_id: str, due: datetime) -> None: ...
    def execution_timeout_due(self, conn: Connection, execution_id: int) -> datetime | None: ...
    def announce_timers(self, conn: Connection, execution_id: int) -> None: ...
    def cancel_all_timers_and_announce_done(self, conn: Connection, execution_id: int, arn: str) -> None: ...
    def take_due_timers(
        self, conn: Connection, now: datetime, limit: int, execution_id: int | None = None
    ) -> list[DueTimer]: ...
    def due_timer_executions(
        self, conn: Connection, now: datetime, limit: int, running_grace: timedelta | None = None
    ) -> list[int]: ...
    def next_timer_due(
        self, conn: Connection, now: datetime, running_grace: timedelta | None = None
    ) -> datetime | None: ...

    # invocations
    def insert_invocation(self, conn: Connection, values: Mapping[str, Any]) -> None: ...
    def claim_invocation(self, conn: Connection, values: Mapping[str, Any]) -> Row | None: ...
    def unclaimed_execution(self, conn: Connection, execution_id: int, generation: int | None) -> Row | None: ...
    def get_invocation(self, conn: Connection, execution_id: int, seq: int) -> Invocation | None: ...
    def execution_with_invocation(
        self, conn: Connection, execution_id: int, seq: int
    ) -> tuple[ExecutionRow | None, Invocation | None]: ...
    def killed_now(self, conn: Connection, execution_id: int, seq: int) -> bool: ...
    def invocation_run_by(self, conn: Connection, execution_id: int, worker: str, pid: int) -> int | None: ...
    def running_invocations(self, conn: Connection, now: datetime, limit: int) -> list[Invocation]: ...
    def end_invocation(
        self,
        conn: Connection,
        execution_id: int,
        seq: int,
        end: Mapping[str, Any],
        body_runs: list[Row],
        log_lines: list[Row],
    ) -> None: ...

    # re-dispatch and quarantine
    def presumed_lost(
        self,
        conn: Connection,
        now: datetime,
        after: timedelta,
        backstop: timedelta,
        limit: int,
        taken_before: datetime | None = None,
    ) -> list[Row]: ...
    def mark_redispatched(self, conn: Connection, execution_id: int, now: datetime) -> Row | None: ...
    def mark_undispatched(self, conn: Connection, execution_ids: list[int]) -> None: ...
    def quarantine(self, conn: Connection, execution_id: int, note: Mapping[str, Any], now: datetime) -> None: ...
    def release_quarantine(self, conn: Connection, arn: str) -> Row | None: ...

    # the replay record's faults
    def armed_faults(self, conn: Connection, execution_id: int) -> list[Row]: ...
    def mark_fault_fired(self, conn: Connection, fault_id: int, at: datetime | str, invocation_seq: int) -> None: ...

    # the duties' guarded writes
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
    ) -> tuple[Sequences, bool, bool]: ...
    def end_invocation_guarded(
        self,
        conn: Connection,
        execution: Mapping[str, Any],
        seq: int,
        guard: Mapping[str, int],
        ending: Mapping[str, Any],
        journal: tuple[list[Row], list[Row]],
    ) -> tuple[Row | None, Sequences]: ...
    def lock_if_unchanged(self, conn: Connection, seen: Mapping[str, Any]) -> ExecutionRow | None: ...
    def read_checkpoint_snapshot(self, conn: Connection, arn: str, op_ids: list[str], now: datetime) -> Row | None: ...

    # retention
    def purge_expired(self, conn: Connection, limit: int) -> int: ...
    def purge_executions(self, conn: Connection, ids: list[int]) -> None: ...

    # worker processes and the control channel to them (issue 19); ``worker`` names one Celery
    # worker's rows: its host_id, hostname (node name) and since (its parent's start). Heartbeats
    # and the lease are on the store's own clock, not the host's: hosts' clocks may disagree.
    def register_worker(
        self, conn: Connection, worker: Mapping[str, Any], pid: int, role: str, started_at: datetime
    ) -> int: ...
    def renew_workers(self, conn: Connection, worker: Mapping[str, Any], pids: list[int], beat: timedelta) -> None: ...
    def stop_workers(self, conn: Connection, worker: Mapping[str, Any]) -> None: ...
    def lost_hosts(self, conn: Connection, hosts: list[str], lease: timedelta) -> dict[str, set[int]]: ...
    def worker_process_state(self, conn: Connection, host_id: str, pid: int, lease: timedelta) -> Row: ...
    def newly_lost_hosts(self, conn: Connection, lease: timedelta) -> list[str]: ...
    def mark_host_lost(self, conn: Connection, host_id: str) -> None: ...
    def notify_control(self, conn: Connection, message: Mapping[str, Any]) -> None: ...


class _StoreInUse:
    """Forwards each call to the store in use, looked up at call time, so that modules that
    imported ``store`` once follow a switch made later (a test installing the memory store)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_in_use, name)


def _postgres() -> Store:
    from engine.store import postgres

    return postgres  # mypy checks here that the module has every function of the interface


_in_use: Store = _postgres()
store: Store = cast(Store, _StoreInUse())


def use(chosen: Store | None) -> Store:
    """Make ``chosen`` the store in use (None: PostgreSQL again); return the one it replaces."""
    global _in_use
    previous, _in_use = _in_use, chosen if chosen is not None else _postgres()
    return previous
