"""Unit tests of the state machine and the duties, on the memory store and a fake clock.

No PostgreSQL, no broker, no worker: ``engine.store.memory`` takes PostgreSQL's place, the
dispatcher queues invocations in a list, and the ``Driver`` runs each owed invocation in this
process with the real SDK, one after another. These tests sit outside ``tests/`` so that
``pytest unit_tests`` starts none of the integration suite's servers; ``make test`` runs both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import handler_paths
from engine.store import memory
from unit_tests.scenarios import START, Driver, inline_dispatch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def database(tmp_path: Path) -> Iterator[memory.MemoryDatabase]:
    """A fresh memory database in PostgreSQL's place; the real store and wall clock come back after."""
    os.environ.setdefault("DURABLE_DATA_DIR", str(tmp_path))  # the replay record's journal files
    installed = memory.install(memory.MemoryDatabase(memory.FakeClock(START)))
    handler_paths.allow(ROOT / "demos", ROOT / "conformance", ROOT / "unit_tests")  # added to, never replaced
    try:
        yield installed.database
    finally:
        memory.uninstall(installed)


@pytest.fixture
def run(database: memory.MemoryDatabase) -> Iterator[Driver]:
    """A scenario driver on the memory database, with invocations run inline."""
    with inline_dispatch() as dispatcher:
        yield Driver(dispatcher, database.clock)
