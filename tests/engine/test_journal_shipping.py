"""The replay record survives host loss (issue 19 point 3): a worker ships its invocation's journal
to PostgreSQL while it runs; a lost host's invocation is recorded from what was shipped, marked
"record incomplete: host lost" on the timeline; an ingested record's chunks are deleted.

Real PostgreSQL throughout; the shipping itself is seen in a real Celery worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.test import Client
from django.urls import reverse

import engine
from engine import db, journal, journal_shipping, timeline
from engine.duties.claim import Ticket, claim_invocation
from engine.duties.end import close_invocation
from engine.duties.unit import guarded_unit_of_work, save_execution
from engine.store import store
from executions import charts
from tests.conftest import TEMP_DIR, Stack, wait_until
from tests.dashboard.support import _real_database, make_user  # noqa: F401  (_real_database: a fixture)
from tests.engine.support import Recorder, Register, execution_row, invocations, start, terminal

ROOT = Path(__file__).resolve().parents[2]
SLOW = "tests.handlers.shipping.slow"
ECHO = "tests.handlers.engine_sdk.echo"
LOST = {"ErrorType": "Runtime.ExitError", "ErrorMessage": "Runtime exited without providing a reason"}


def chunks(execution_id: int) -> list[dict[str, Any]]:
    with db.connection() as conn:
        return conn.execute(
            "SELECT request_id, invocation_seq, entries, shipped_at FROM durable_journal_chunk"
            " WHERE execution_id = %s ORDER BY id",
            (execution_id,),
        ).fetchall()


def shipped(execution_id: int) -> list[dict[str, Any]]:
    return [entry for chunk in chunks(execution_id) for entry in chunk["entries"]]


def log_messages(execution_id: int) -> list[str]:
    with db.connection() as conn:
        rows = conn.execute("SELECT message FROM durable_log WHERE execution_id = %s ORDER BY id", (execution_id,))
        return [row["message"] for row in rows]


def body_runs(execution_id: int) -> list[dict[str, Any]]:
    with db.connection() as conn:
        return conn.execute(
            "SELECT name, outcome, invocation_seq FROM durable_body_run WHERE execution_id = %s ORDER BY id",
            (execution_id,),
        ).fetchall()


# --- in a real worker ------------------------------------------------------------------------------


@pytest.fixture
def gate() -> Iterator[Path]:
    path = TEMP_DIR / f"gate-{uuid.uuid4().hex}"
    yield path
    path.touch()  # a handler still waiting goes on and ends


def test_a_worker_ships_the_running_invocations_journal_within_a_second_and_deletes_it_after(
    stack: Stack, client: engine.LambdaClient, functions: Register, gate: Path, tmp_path: Path
) -> None:
    arn = start(client, functions(SLOW), json.dumps({"gate": str(gate)}))
    execution_id = execution_row(arn)["id"]
    # The step waits for the gate: everything seen here was shipped while the invocation ran.
    found = wait_until(lambda: _shipped_nul_line(execution_id), timeout=30, interval=0.05, message="a shipped chunk")
    assert invocations(arn)[0]["ended_at"] is None and not gate.exists()
    entries = shipped(execution_id)
    assert [e["t"] for e in entries if e["t"] == "body_start"] == ["body_start"]
    assert next(e for e in entries if e["t"] == "body_start")["name"] == "slow"
    # Within a second of being written (one 300 ms interval and a round trip, on a busy machine).
    chunk = next(c for c in chunks(execution_id) if found in c["entries"])
    assert (chunk["shipped_at"] - datetime.fromisoformat(found["at"])).total_seconds() < 1.0
    assert {c["request_id"] for c in chunks(execution_id)} == {invocations(arn)[0]["request_id"]}
    with pytest.MonkeyPatch.context() as elsewhere:
        # A dashboard on another host has no journal file: it shows the live body run from the chunks.
        elsewhere.setenv("DURABLE_DATA_DIR", str(tmp_path))
        wait_until(lambda: _live_run_of(arn, "slow"), timeout=10, message="the live body run from the chunks")

    gate.touch()
    assert terminal(client, arn)["Status"] == "SUCCEEDED"
    wait_until(lambda: not chunks(execution_id), timeout=10, message="the chunks to be deleted")
    assert [(run["name"], run["outcome"]) for run in body_runs(execution_id)] == [("slow", "succeeded")]
    assert "shipped a\\u0000b" in log_messages(execution_id)  # the file's record, ingested as before


def _live_run_of(arn: str, name: str) -> bool:
    operations = timeline.execution_timeline(arn)["operations"]
    runs = [run for op in operations if op["name"] == name for run in op["body_runs"]]
    return any(run.get("live") and run["outcome"] == "running" for run in runs)


def _shipped_nul_line(execution_id: int) -> dict[str, Any] | None:
    # A NUL byte, which jsonb refuses, arrives as the visible escape the engine stores elsewhere.
    return next((e for e in shipped(execution_id) if e.get("message") == "shipped a\\u0000b"), None)


def test_the_parent_that_records_a_killed_child_deletes_the_chunks_the_child_shipped(
    stack: Stack, client: engine.LambdaClient, functions: Register, gate: Path
) -> None:
    arn = start(client, functions(SLOW), json.dumps({"gate": str(gate)}))
    execution_id = execution_row(arn)["id"]
    wait_until(lambda: _shipped_nul_line(execution_id), timeout=30, interval=0.05, message="a shipped chunk")
    first = invocations(arn)[0]
    assert first["pid"] in stack.worker_pids()
    os.kill(first["pid"], signal.SIGKILL)  # the worker's parent records it crashed, from the file
    wait_until(lambda: invocations(arn)[0]["ended_at"] is not None, timeout=30, message="the crash to be recorded")
    wait_until(lambda: not [c for c in chunks(execution_id) if c["invocation_seq"] == 1], timeout=10)
    recorded = invocations(arn)[0]
    assert recorded["outcome"] == "crashed" and "RecordIncomplete" not in recorded["error"]  # its file was whole
    gate.touch()
    assert terminal(client, arn)["Status"] == "SUCCEEDED"
    assert next((run["name"], run["outcome"]) for run in body_runs(execution_id)) == ("slow", "interrupted")


# --- a lost host's invocation, recorded from its chunks ---------------------------------------------


@pytest.fixture
def claimed(
    client: engine.LambdaClient, functions: Register, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Ticket]]:
    """(ARN, the ticket of its claimed, running invocation); the test plays the worker, and ships
    when it says (``shipper.ship()``): the shipper's own thread waits a minute between shipments."""
    monkeypatch.setenv("DURABLE_JOURNAL_SHIP_MS", "60000")
    arn = start(client, functions(ECHO))
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None
    yield arn, ticket
    journal.discard(ticket.request_id)


def shipping_journal(ticket: Ticket) -> journal.Journal:
    return journal.Journal(ticket.request_id, [], False, ticket.execution_id, ticket.seq, ship=True)


def record_host_lost(ticket: Ticket) -> None:
    """What the sweep does for an invocation of a lost host (engine.duties.sweep), its recovery
    aside: read the shipped record and close the invocation with it."""
    entries = journal.read_entries(ticket.request_id, host_lost=True)
    with db.connection() as conn:
        seen, invocation = store.execution_with_invocation(conn, ticket.execution_id, ticket.seq)
    assert seen is not None and invocation is not None
    with guarded_unit_of_work(seen) as (work, execution):
        close_invocation(work, execution, invocation, "crashed", dict(LOST), entries)
        save_execution(work.conn, execution)


def test_a_lost_hosts_record_is_read_from_its_chunks_with_a_marker_even_without_its_file(
    claimed: tuple[str, Ticket],
) -> None:
    _, ticket = claimed
    running = shipping_journal(ticket)
    running.write({"t": "body_start", "op_id": "op-1", "name": "charge", "attempt": 1})
    running.log("INFO", "handler", "before the loss \x00 with a NUL")
    assert journal_shipping.shipper.ship() == 1
    running.log("INFO", "handler", "written after the last shipment")  # lost with the host
    journal.journal_path(ticket.request_id).unlink()  # the host and its disk are gone
    entries = journal.read_entries(ticket.request_id, host_lost=True)
    assert [e["t"] for e in entries] == ["body_start", "log", "record_incomplete"]
    assert entries[1]["message"] == "before the loss \\u0000 with a NUL"
    assert entries[-1]["reason"] == "host lost" and entries[-1]["last_shipped_at"] == entries[1]["at"]
    assert journal.read_entries(ticket.request_id) == []  # the file's record: nothing on this host
    running.close()


def test_a_record_marked_incomplete_is_stored_shown_on_the_timeline_and_its_chunks_deleted(
    claimed: tuple[str, Ticket],
) -> None:
    arn, ticket = claimed
    running = shipping_journal(ticket)
    running.write({"t": "body_start", "op_id": "op-1", "name": "charge", "attempt": 1})
    assert journal_shipping.shipper.ship() == 1
    journal.journal_path(ticket.request_id).unlink()
    record_host_lost(ticket)  # journals_done: discard deletes the chunks it read
    assert chunks(ticket.execution_id) == []

    recorded = invocations(arn)[0]
    assert recorded["outcome"] == "crashed" and recorded["error"]["RecordIncomplete"] == "host lost"
    assert [(run["name"], run["outcome"]) for run in body_runs(ticket.execution_id)] == [("charge", "interrupted")]
    assert any(m.startswith("record incomplete: host lost;") for m in log_messages(ticket.execution_id))
    data = timeline.execution_timeline(arn)
    assert data["invocations"][0]["record_incomplete"] == "host lost"
    figure = charts.timeline_figure(data, now=datetime.now(UTC))
    hovers = [str(h) for trace in figure["data"] for h in _as_list(trace.get("hovertext"))]
    assert any("record incomplete: host lost" in hover for hover in hovers)
    viewer = Client()
    viewer.force_login(make_user(staff=True))
    page = viewer.get(reverse("executions:detail", args=[ticket.execution_id])).content.decode()
    assert "record incomplete: host lost" in page
    running.close()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def test_a_whole_record_is_not_marked() -> None:
    from engine.duties.end import journal_record

    whole = journal_record([{"t": "log", "at": "x", "level": "INFO", "logger": "l", "message": "m"}])
    assert whole.incomplete is None and len(whole.log_lines) == 1
    marked = journal_record([{"t": "record_incomplete", "reason": "host lost", "at": "y", "last_shipped_at": None}])
    assert marked.incomplete == "host lost"
    assert marked.log_lines[0]["message"].startswith("record incomplete: host lost; none of it reached")


def test_an_ended_invocation_takes_no_more_chunks(claimed: tuple[str, Ticket]) -> None:
    """A host cut off by a partition and recorded lost must not ship into the ingested record."""
    _, ticket = claimed
    running = shipping_journal(ticket)
    record_host_lost(ticket)
    running.write({"t": "body_start", "op_id": "op-1", "name": "late", "attempt": 1})
    journal_shipping.shipper.ship()
    assert chunks(ticket.execution_id) == []
    running.close()


def test_a_closed_journal_ships_nothing_more(claimed: tuple[str, Ticket]) -> None:
    _, ticket = claimed
    running = shipping_journal(ticket)
    running.write({"t": "body_start", "op_id": "op-1", "name": "charge", "attempt": 1})
    running.close()  # the invocation ended: its file is the record, ingested now
    assert journal_shipping.shipper.ship() == 0
    assert chunks(ticket.execution_id) == []


def test_shipping_is_off_in_process_and_on_in_a_worker_child(claimed: tuple[str, Ticket]) -> None:
    _, ticket = claimed
    args = (ticket.request_id, [], None, ticket.execution_id, ticket.seq)
    with journal.recording(*args) as in_process:
        in_process.write({"t": "log", "message": "x"})
        assert in_process.take_unshipped() == []  # B1's path: nothing kept, nothing shipped
    with journal.recording(ticket.request_id, [], 60.0, ticket.execution_id, ticket.seq) as in_a_child:
        in_a_child.write({"t": "log", "message": "y"})
        assert [json.loads(line)["message"] for line in in_a_child.take_unshipped()] == ["y"]


def test_a_failed_shipment_keeps_its_lines_for_the_next(claimed: tuple[str, Ticket]) -> None:
    _, ticket = claimed
    running = shipping_journal(ticket)
    running.write({"t": "log", "message": "first"})
    lines = running.take_unshipped()
    running.write({"t": "log", "message": "second"})
    running.put_back(lines)
    assert [json.loads(line)["message"] for line in running.take_unshipped()] == ["first", "second"]
    running.close()


@pytest.mark.parametrize("text", ["a\x00b", "\ud800 alone", "plain ✓ 😀"])
def test_every_chunk_is_valid_jsonb(text: str) -> None:
    line = json.dumps({"t": "log", "message": text})
    with db.connection() as conn:
        stored = conn.execute("SELECT %s::jsonb AS j", (journal_shipping.chunk_text([line]),)).fetchone()
    assert stored is not None and stored["j"][0]["message"] == db.escape_untranslatable(text)


def test_a_nul_escape_is_what_jsonb_refuses() -> None:
    """The check above can fail: the raw JSON of a NUL is refused."""
    with pytest.raises(psycopg.errors.UntranslatableCharacter), db.connection() as conn:
        conn.execute("SELECT %s::jsonb", ("[" + json.dumps({"m": "a\x00b"}) + "]",))


def test_the_interval_is_configurable_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLE_JOURNAL_SHIP_MS", "0")
    assert journal_shipping.ship_seconds() is None and not journal_shipping.shipping_here(True)
    monkeypatch.setenv("DURABLE_JOURNAL_SHIP_MS", "150")
    assert journal_shipping.ship_seconds() == 0.15 and journal_shipping.shipping_here(True)
    assert not journal_shipping.shipping_here(False)
    monkeypatch.setenv("DURABLE_JOURNAL_SHIP_MS", "soon")
    with pytest.raises(ValueError, match="DURABLE_JOURNAL_SHIP_MS"):
        journal_shipping.ship_seconds()


def test_shipping_takes_no_time_on_the_writers_side(claimed: tuple[str, Ticket]) -> None:
    """The handler's thread appends to a list: a write costs what it did without shipping."""
    _, ticket = claimed
    running = shipping_journal(ticket)
    started = time.perf_counter()
    for _ in range(2000):
        running.write({"t": "log", "message": "x"})
    per_write = (time.perf_counter() - started) / 2000
    running.close()
    assert per_write < 0.001  # no round trip (a shipment is ~1 ms); a file write is ~10 µs


# --- a SIGKILL loses at most the last interval ------------------------------------------------------

_WRITER = """
import os, sys, time
from engine import db, journal
db.configure(os.environ["DATABASE_URL"])
request_id, execution_id, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
running = journal.Journal(request_id, [], True, execution_id, seq, ship=True)
print("writing", flush=True)
while True:
    running.log("INFO", "writer", "tick")
    time.sleep(0.02)
"""


def test_a_killed_process_loses_at_most_the_last_interval_of_its_record(
    claimed: tuple[str, Ticket], tmp_path: Path
) -> None:
    _, ticket = claimed
    env = {**os.environ, "DURABLE_DATA_DIR": str(tmp_path), "DURABLE_JOURNAL_SHIP_MS": "300"}
    args = [ticket.request_id, str(ticket.execution_id), str(ticket.seq)]
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        time.sleep(1.5)
        killed_at = datetime.now(UTC)
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(timeout=10)
    last = datetime.fromisoformat(shipped(ticket.execution_id)[-1]["at"])
    # One interval (300 ms) and the shipment's round trip, with room for a busy machine.
    assert (killed_at - last).total_seconds() < 0.8
    assert len(shipped(ticket.execution_id)) > 20  # every interval before the kill was shipped
    journal_shipping.delete_chunks(ticket.request_id)  # nobody ingests this one


def test_the_file_says_it_was_shipped_and_its_ingestion_deletes_the_chunks(claimed: tuple[str, Ticket]) -> None:
    _, ticket = claimed
    running = shipping_journal(ticket)
    running.write({"t": "body_start", "op_id": "op-1", "name": "charge", "attempt": 1})
    assert journal_shipping.shipper.ship() == 1
    running.close()
    assert '"t": "shipped"' in journal.journal_path(ticket.request_id).read_text()
    assert [e["t"] for e in journal.read_entries(ticket.request_id)] == ["body_start"]  # never an entry
    assert chunks(ticket.execution_id)
    journal.discard(ticket.request_id)  # as after the ingestion
    assert chunks(ticket.execution_id) == []


def test_the_sweeps_record_of_a_lost_hosts_invocation_keeps_the_marker(claimed: tuple[str, Ticket]) -> None:
    """Through the sweep's own path (engine.duties.sweep), recovery included."""
    from engine.duties import sweep

    arn, ticket = claimed
    running = shipping_journal(ticket)
    running.write({"t": "body_start", "op_id": "op-1", "name": "charge", "attempt": 1})
    journal_shipping.shipper.ship()
    journal.journal_path(ticket.request_id).unlink()
    assert sweep._record_lost(ticket.execution_id, ticket.seq, "crashed", host_lost=True) == 1
    recorded = invocations(arn)[0]
    assert recorded["error"] == {**LOST, "RecordIncomplete": "host lost"}
    assert timeline.execution_timeline(arn)["invocations"][0]["record_incomplete"] == "host lost"
    assert chunks(ticket.execution_id) == []
    assert execution_row(arn)["needs_invoke"]  # invoked again, as any lost invocation
    running.close()
