"""The embedded PostgreSQL's leftovers: a stale lock or pid list never stops the next start, and
the stop always stops (private pgserver folders, never the machine's PostgreSQL)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from durable_site import embedded, supervisor

pytestmark = pytest.mark.slow


@pytest.fixture
def private_pg_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="durable-embedded-"))
    folder.chmod(0o755)  # pgserver's own user must reach it
    monkeypatch.setattr(embedded, "PG_DIR", folder / "postgres")
    try:
        yield embedded.PG_DIR
    finally:
        embedded.stop_embedded_database()
        shutil.rmtree(folder, ignore_errors=True)


def test_stop_stops_the_server_whatever_pgservers_pid_list_says(private_pg_dir: Path) -> None:
    url = embedded.embedded_database_url()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # Processes long gone and this one: pgserver alone would not stop a server "still in use".
    (private_pg_dir / ".handle_pids.json").write_text(json.dumps([2**22 + 17, os.getpid()]))
    embedded.stop_embedded_database()
    assert embedded.server_process() is None
    assert not (private_pg_dir / "postmaster.pid").exists()
    assert json.loads((private_pg_dir / ".handle_pids.json").read_text()) == []


def test_start_ignores_a_stale_lock_whose_pid_is_now_another_process(private_pg_dir: Path) -> None:
    embedded.embedded_database_url()
    pid_file = (private_pg_dir / "postmaster.pid").read_text().splitlines()
    embedded.stop_embedded_database()
    # The server died without removing its lock, and its pid now belongs to another process.
    (private_pg_dir / "postmaster.pid").write_text("\n".join([str(os.getpid()), *pid_file[1:]]) + "\n")
    (private_pg_dir / ".handle_pids.json").write_text(json.dumps([2**22 + 17]))
    url = embedded.embedded_database_url()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert embedded.server_process() is not None
    assert 2**22 + 17 not in json.loads((private_pg_dir / ".handle_pids.json").read_text())


def test_supervisor_backs_off_doubling_and_says_so(tmp_path: Path) -> None:
    lines: list[str] = []
    crash = supervisor.Part("crasher", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    stack = supervisor.Supervisor([crash], tmp_path / "run.json", lines.append, tmp_path)
    stack.start_all()
    now = 0.0
    for expected_delay in (1, 2, 4, 8, 16, 30, 30):
        assert crash.process is not None
        crash.process.wait(timeout=30)
        stack.poll(now)
        assert crash.restart_at == now + expected_delay
        now += expected_delay
        stack.poll(now)  # due: started again
    assert lines[:3] == [
        "crasher exited (code 3); restart 1 in 1 s",
        "crasher exited (code 3); restart 2 in 2 s",
        "crasher exited (code 3); restart 3 in 4 s",
    ]
    status = json.loads((tmp_path / "run.json").read_text())
    assert status["parts"]["crasher"]["restarts"] == 7
    assert status["parts"]["crasher"]["last_exit_code"] == 3
    stack.stop_all()
    assert json.loads((tmp_path / "run.json").read_text())["supervisor_pid"] is None


def test_supervisor_forgives_a_part_that_ran_stably(tmp_path: Path) -> None:
    sleeper = supervisor.Part("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ))
    stack = supervisor.Supervisor([sleeper], tmp_path / "run.json", lambda line: None, tmp_path)
    stack.start_all()
    try:
        sleeper.delay = 16.0  # after a run of crashes
        stack.poll(sleeper.started_at + supervisor.STABLE_AFTER)
        assert sleeper.delay == supervisor.FIRST_DELAY
    finally:
        stack.stop_all()
    assert sleeper.process is None


def test_supervisor_retries_a_part_that_cannot_start(tmp_path: Path) -> None:
    lines: list[str] = []
    missing = supervisor.Part("missing", [str(tmp_path / "no-such-program")], dict(os.environ))
    stack = supervisor.Supervisor([missing], tmp_path / "run.json", lines.append, tmp_path)
    stack.start_all()
    assert missing.process is None and missing.restart_at is not None
    assert lines[0].startswith("missing could not start (") and lines[0].endswith("retry in 1 s")
    stack.stop_all()


def test_a_running_server_is_found_without_pgserver(private_pg_dir: Path) -> None:
    """A CLI call with `make run` up imports no pgserver and runs no psql (~0.3 s a call) and
    leaves no pgserver exit line; a stopped server is started as before."""
    url = embedded.embedded_database_url()
    script = (
        "import sys; from durable_site import embedded; "
        "print(embedded.embedded_database_url()); print('pgserver' in sys.modules)"
    )
    env = {**os.environ, "DURABLE_DATA_DIR": str(private_pg_dir.parent), "PYTHONPATH": str(embedded.BASE_DIR)}
    found = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert found.stdout.split() == [url, "False"] and found.stderr == "", found
    embedded.stop_embedded_database()
    assert not embedded.running_server_ready()
    started = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert started.stdout.split() == [url, "True"], started
    assert embedded.running_server_ready()
