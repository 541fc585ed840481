"""The invocation journal's fault hooks: a fault armed while an invocation runs is seen at its next hook."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import engine
from engine import faults, journal
from tests.engine import support
from tests.engine.support import Recorder, Register

HANDLER = "tests.handlers.engine_sdk.echo"
ROOT = Path(__file__).resolve().parents[2]


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
    client: engine.LambdaClient,
    functions: Register,
    recorder: Recorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A folder of this test's own: the worker's control-channel listener touches the shared
    # signal file when it hears of a fault armed, at a moment of its choosing, which would
    # make the "unchanged" signal below change.
    monkeypatch.setenv("DURABLE_DATA_DIR", str(tmp_path))
    with running_journal(client, functions, recorder) as (arn, running, signal):
        faults.arm(arn, "A", "body_start")
        old = time.time_ns() - 10**9
        os.utime(signal, ns=(old, old))  # armed long enough ago to trust the mtime
        assert running.fault_due("A", "body_start") is not None
        assert running._signal_seen == old
        faults.arm(arn, "B", "body_start")
        os.utime(signal, ns=(old, old))  # as if no touch had happened: the stat finds no change
        assert running.fault_due("B", "body_start") is None


# --- the Timeout watchdog: one thread per process ------------------------------------------------

_WATCHED = """
import os, sys, threading, time
os.environ["DURABLE_DATA_DIR"] = sys.argv[1]
from engine import journal
for seconds in (30.0, 0.05, 0.05):  # earlier deadlines than one already armed; each disarmed in time
    with journal.recording("watched-ok", [], seconds):
        pass
time.sleep(0.3)  # past every disarmed deadline
threads = [t.name for t in threading.enumerate()].count("durable-timeout-watchdog")
with journal.recording("watched-late", [], 0.2):
    print(threads, flush=True)
    time.sleep(30)
"""


def test_the_watchdog_kills_the_process_only_when_an_armed_deadline_passes(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _WATCHED, str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert result.stdout.strip() == "1"  # one thread served all four invocations
    assert time.monotonic() - started < 20  # the last deadline (0.2 s), not the 30 s sleep
    assert (tmp_path / "journal" / "watched-late.jsonl").read_text().count('"t": "timeout"') == 1
    assert "timeout" not in (tmp_path / "journal" / "watched-ok.jsonl").read_text()
