"""The memory store is a faithful stand-in for PostgreSQL's: each scenario of
``unit_tests/scenarios.py`` runs on both, from the same fake moment, and must leave the same
record (execution row, operations, history, invocations, the execution's deadline), read
through the same ``Store`` interface. The unit tests' verdicts hold for PostgreSQL because of this.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from engine import clock, db
from engine.store import memory, store
from unit_tests.scenarios import SCENARIOS, START, Driver, InlineDispatcher, inline_dispatch, record


@pytest.fixture
def inline() -> Iterator[InlineDispatcher]:
    with inline_dispatch() as dispatcher:
        yield dispatcher


def _purge(arn: str) -> None:
    """The scenarios run at a fake moment years ahead: left in the shared database, their rows
    would look like the latest activity to the live sweeps (re-dispatch, recovery) of later tests."""
    with db.transaction() as conn:
        execution = store.execution_by_arn(conn, arn)
        assert execution is not None
        store.purge_executions(conn, [execution["id"]])


def _run(scenario: str, dispatcher: InlineDispatcher, fake: memory.FakeClock, suffix: str) -> dict[str, Any]:
    saved_clock = clock.set_clock(fake.now)
    try:
        arn = SCENARIOS[scenario](Driver(dispatcher, fake, suffix=suffix))
        assert not dispatcher.owed, "the scenario left invocations unrun"
        recorded = record(arn)
        _purge(arn)
        return recorded
    finally:
        clock.set_clock(saved_clock)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_memory_store_leaves_what_postgresql_leaves(scenario: str, inline: InlineDispatcher) -> None:
    suffix = f"-{uuid.uuid4().hex[:8]}"  # PostgreSQL keeps functions between tests
    on_postgresql = _run(scenario, inline, memory.FakeClock(START), suffix)
    installed = memory.install(memory.MemoryDatabase(memory.FakeClock(START)))
    try:
        in_memory = _run(scenario, inline, installed.database.clock, suffix)
    finally:
        memory.uninstall(installed)
    for part in on_postgresql:
        assert in_memory[part] == on_postgresql[part], f"{scenario}: the stores disagree on {part}"
    assert on_postgresql["execution"]["status"] in {"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"}
