"""The invocation journal's fault hooks: a fault armed while an invocation runs is seen at its next hook."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import engine
from engine import faults, journal
from tests.engine import support
from tests.engine.support import Recorder, Register

HANDLER = "tests.handlers.engine_sdk.echo"


@contextmanager
def running_journal(
    client: engine.LambdaClient, functions: Register, recorder: Recorder
) -> Iterator[tuple[str, journal.Journal, Path]]:
    """(ARN, the journal of an invocation of it, its fault-signal file); the journal is removed after."""
    arn = support.start(client, functions(HANDLER))
    execution_id = recorder.invoked[-1]
    running = journal.Journal(f"test-{uuid.uuid4().hex}", [], False, execution_id)
    try:
        yield arn, running, journal.fault_signal_path(execution_id)
    finally:
        running.close()
        journal.discard(running.request_id)


def test_a_fault_armed_after_the_invocation_began_is_seen_at_the_next_hook(
    client: engine.LambdaClient, functions: Register, recorder: Recorder
) -> None:
    with running_journal(client, functions, recorder) as (arn, running, _):
        assert running.fault_due("B", "body_start") is None
        faults.arm(arn, "B", "after_body")
        fault = running.fault_due("B", "after_body")
        assert fault is not None and fault["step_name"] == "B"
        assert running.fault_due("B", "after_body") is None  # fired once


def test_a_second_fault_within_the_same_file_time_tick_is_seen_too(
    client: engine.LambdaClient, functions: Register, recorder: Recorder
) -> None:
    # File mtimes come from a coarse clock: a second touch within the tick of the first leaves
    # the mtime as it was. Simulated here by putting the first touch's mtime back.
    with running_journal(client, functions, recorder) as (arn, running, signal):
        faults.arm(arn, "A", "body_start")
        first_touch = time.time_ns()
        os.utime(signal, ns=(first_touch, first_touch))
        assert running.fault_due("A", "body_start") is not None
        faults.arm(arn, "B", "body_start")
        os.utime(signal, ns=(first_touch, first_touch))
        assert running.fault_due("B", "body_start") is not None


def test_a_signal_is_trusted_once_it_is_older_than_a_file_time_tick(tmp_path: Path) -> None:
    signal = tmp_path / "faults-1.signal"
    assert journal._signal_mark(str(signal)) == 0
    signal.touch()
    assert journal._signal_mark(str(signal)) == -1
    old = time.time_ns() - 10**9
    os.utime(signal, ns=(old, old))
    assert journal._signal_mark(str(signal)) == old


def test_an_unchanged_signal_is_only_looked_at(
    client: engine.LambdaClient, functions: Register, recorder: Recorder
) -> None:
    with running_journal(client, functions, recorder) as (arn, running, signal):
        faults.arm(arn, "A", "body_start")
        old = time.time_ns() - 10**9
        os.utime(signal, ns=(old, old))  # armed long enough ago to trust the mtime
        assert running.fault_due("A", "body_start") is not None
        assert running._signal_seen == old
        faults.arm(arn, "B", "body_start")
        os.utime(signal, ns=(old, old))  # as if no touch had happened: the stat finds no change
        assert running.fault_due("B", "body_start") is None
