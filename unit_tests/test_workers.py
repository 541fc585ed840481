"""The worker registry on the memory store (issue 19): the lease, a replaced child, a clean stop,
and which invocations of other hosts the recovery sweep records lost."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest

from engine import db, journal
from engine.duties.claim import claim_invocation
from engine.duties.sweep import recover_lost_invocations
from engine.store import memory, store
from unit_tests.scenarios import Driver

HANDLER = "unit_tests.handlers.answered_while_running"
LEASE = 10.0  # engine.workers' default


def _worker(database: memory.MemoryDatabase, host: str) -> dict[str, Any]:
    return {"host_id": host, "hostname": f"celery@{host}", "since": database.clock.now()}


def _register(database: memory.MemoryDatabase, worker: dict[str, Any], pid: int, role: str) -> None:
    with db.transaction() as conn:
        store.register_worker(conn, worker, pid, role, database.clock.now())


def _rows(database: memory.MemoryDatabase, host: str) -> dict[int, dict[str, Any]]:
    return {row["pid"]: row for row in database.tables.workers.values() if row["host_id"] == host}


def test_a_beat_renews_live_processes_and_stops_a_replaced_child(database: memory.MemoryDatabase) -> None:
    worker = _worker(database, "h1")
    for pid, role in ((100, "main"), (101, "pool"), (102, "pool")):
        _register(database, worker, pid, role)
    database.clock.advance(3)
    with db.transaction() as conn:
        store.renew_workers(conn, worker, [100, 102], timedelta(seconds=2.5))
    rows = _rows(database, "h1")
    assert rows[100]["heartbeat_at"] == rows[102]["heartbeat_at"] == database.clock.now()
    assert [pid for pid, row in rows.items() if row["stopped_at"] is not None] == [101]
    with db.transaction() as conn:
        assert store.lost_hosts(conn, ["h1"], timedelta(seconds=LEASE)) == {}
        store.stop_workers(conn, worker)
        # Stopped cleanly is not live either: a registered host with no live process is lost.
        assert store.lost_hosts(conn, ["h1"], timedelta(seconds=LEASE)) == {"h1": {100, 101, 102}}
    assert all(row["stopped_at"] is not None for row in _rows(database, "h1").values())


def test_a_child_registered_after_the_parent_listed_its_processes_is_not_stopped(
    database: memory.MemoryDatabase,
) -> None:
    worker = _worker(database, "h1")
    _register(database, worker, 100, "main")
    _register(database, worker, 103, "pool")  # forked after the parent's /proc listing
    with db.transaction() as conn:
        store.renew_workers(conn, worker, [100], timedelta(seconds=2.5))
    assert _rows(database, "h1")[103]["stopped_at"] is None


def _claimed_on(run: Driver, monkeypatch: pytest.MonkeyPatch, host: str) -> int:
    """An execution whose invocation was claimed by this process as host ``host`` (and never run)."""
    run.start(run.register(f"on-{host}", HANDLER))
    execution_id = run.dispatcher.owed.pop()
    with monkeypatch.context() as patch:
        patch.setenv("DURABLE_HOST_ID", host)
        assert claim_invocation(execution_id) is not None
    return execution_id


def _outcome(database: memory.MemoryDatabase, execution_id: int) -> str | None:
    outcome: str | None = database.tables.invocations[(execution_id, 1)]["outcome"]
    return outcome


def test_an_invocation_of_a_lost_host_is_recorded_crashed_and_invoked_again(
    run: Driver, database: memory.MemoryDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = _claimed_on(run, monkeypatch, "far")
    never_registered = _claimed_on(run, monkeypatch, "web")
    _register(database, _worker(database, "far"), os.getpid(), "pool")
    assert recover_lost_invocations() == 0  # its lease is current
    database.clock.advance(LEASE + 0.5)
    # The lost host's record is the part shipped to PostgreSQL (engine.journal_shipping), which
    # the memory store does not model: here it is empty, and the sweep must ask for it.
    asked: list[tuple[str, bool]] = []
    monkeypatch.setattr(
        journal, "read_entries", lambda request_id, *, host_lost=False: asked.append((request_id, host_lost)) or []
    )
    assert recover_lost_invocations() == 1
    assert asked == [(database.tables.invocations[(lost, 1)]["request_id"], True)]
    invocation = database.tables.invocations[(lost, 1)]
    assert invocation["outcome"] == "crashed" and invocation["error"]["ErrorType"] == "Runtime.ExitError"
    assert run.dispatcher.owed == [lost]  # invoked again at once
    assert all(row["lost_at"] == database.clock.now() for row in _rows(database, "far").values())
    # A host that never registered a worker (an in-process run) waits for its deadline instead.
    assert _outcome(database, never_registered) is None
    assert recover_lost_invocations() == 0


def test_an_invocation_whose_process_is_not_a_registered_worker_waits_for_its_deadline(
    run: Driver, database: memory.MemoryDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id = _claimed_on(run, monkeypatch, "far")
    _register(database, _worker(database, "far"), os.getpid() + 1, "pool")
    database.clock.advance(LEASE + 0.5)
    assert recover_lost_invocations() == 0
    assert _outcome(database, execution_id) is None


def test_messages_a_lost_host_may_have_taken_are_sent_again_once(run: Driver, database: memory.MemoryDatabase) -> None:
    """A host lost with messages in its prefetch (taken, never started): no invocation of its is
    running, so only the loss itself says those messages must be sent again: every message sent
    before the loss was found (the generation check drops the older copies), once: a host already
    marked lost does not send them again."""
    run.start(run.register("taken-by-far", HANDLER))
    taken = run.dispatcher.owed.pop()
    _register(database, _worker(database, "far"), 4242, "pool")
    database.clock.advance(LEASE + 0.5)
    run.start(run.register("sent-after", HANDLER))
    sent_after = run.dispatcher.owed.pop()
    assert recover_lost_invocations() == 0  # nothing was running
    assert run.dispatcher.owed == [taken, sent_after]  # both sent before the loss was found
    assert database.tables.executions[taken]["redispatches"] == 1
    assert all(row["lost_at"] == database.clock.now() for row in _rows(database, "far").values())
    run.dispatcher.owed.clear()
    database.clock.advance(1)
    assert recover_lost_invocations() == 0
    assert run.dispatcher.owed == []  # marked lost: found once


def test_a_host_whose_last_worker_stopped_cleanly_is_not_lost(run: Driver, database: memory.MemoryDatabase) -> None:
    """A worker killed while another of its host ran leaves rows that never renew. When the last
    worker then says goodbye, the host was shut down, not lost: no message is sent again."""
    killed, last = _worker(database, "h1"), _worker(database, "h1") | {"hostname": "celery@h1-b"}
    _register(database, killed, 200, "main")
    _register(database, last, 300, "main")
    database.clock.advance(LEASE + 0.5)
    with db.transaction() as conn:
        store.renew_workers(conn, last, [300], timedelta(seconds=2.5))
        store.stop_workers(conn, last)
    run.start(run.register("waits-for-a-worker", HANDLER))
    run.dispatcher.owed.clear()
    database.clock.advance(LEASE + 0.5)
    with db.connection() as conn:
        assert store.newly_lost_hosts(conn, timedelta(seconds=LEASE)) == []
    assert recover_lost_invocations() == 0
    assert run.dispatcher.owed == []
    # The same host dying later, without a goodbye, is lost.
    again = _worker(database, "h1") | {"hostname": "celery@h1-c"}
    _register(database, again, 400, "main")
    database.clock.advance(LEASE + 0.5)
    with db.connection() as conn:
        assert store.newly_lost_hosts(conn, timedelta(seconds=LEASE)) == ["h1"]
