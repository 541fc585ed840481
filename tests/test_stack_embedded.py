"""The embedded PostgreSQL's and broker's leftovers: a stale lock, pid list or socket never stops
the next start, and the stop always stops (private folders, never the machine's servers)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from durable_site import embedded, supervisor
from tests.browser.fixtures import _free_port

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


# --- the embedded broker ----------------------------------------------------------------------


@pytest.fixture
def private_broker_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="durable-broker-"))
    monkeypatch.setattr(embedded, "BROKER_DIR", folder / "broker")
    try:
        yield folder
    finally:
        embedded.stop_embedded_broker()
        shutil.rmtree(folder, ignore_errors=True)


def test_broker_comes_back_after_a_kill_and_keeps_what_was_queued(private_broker_dir: Path) -> None:
    import redis

    url = embedded.embedded_broker_url()
    client = redis.Redis(unix_socket_path=str(embedded.broker_socket()))
    client.lpush("durable", "queued before the crash")
    time.sleep(1.5)  # appendfsync everysec: on disk within a second
    client.close()
    embedded.broker_process().kill()
    time.sleep(0.5)
    # The killed server left its socket and pid file: neither may pass for a running server.
    assert embedded.broker_socket().exists() and (embedded.BROKER_DIR / "valkey.pid").exists()
    assert not embedded.broker_answers()
    assert embedded.embedded_broker_url() == url
    client = redis.Redis(unix_socket_path=str(embedded.broker_socket()))
    assert client.lrange("durable", 0, -1) == [b"queued before the crash"]
    client.close()


def test_processes_starting_at_once_share_one_broker(private_broker_dir: Path) -> None:
    env = {**os.environ, "DURABLE_DATA_DIR": str(private_broker_dir), "PYTHONPATH": str(embedded.BASE_DIR)}
    code = "from durable_site import embedded; print(embedded.embedded_broker_url())"
    starts = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE) for _ in range(4)]
    urls = {proc.communicate(timeout=60)[0].decode().strip() for proc in starts}
    assert urls == {f"redis+socket://{embedded.broker_socket().resolve()}"}
    servers = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "valkey-server"]
    assert sum(1 for p in servers if p.cwd() == str(embedded.BROKER_DIR.resolve())) == 1


def test_stop_stops_the_broker_and_removes_its_socket(private_broker_dir: Path) -> None:
    embedded.embedded_broker_url()
    assert embedded.broker_process() is not None
    embedded.stop_embedded_broker()
    assert embedded.broker_process() is None
    assert not embedded.broker_socket().exists()
    assert not embedded.broker_answers()


# --- a fresh clone's `make run` ------------------------------------------------------------------

CLONE_VARIABLES = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "DURABLE_DATA_DIR",
    "DJANGO_SETTINGS_MODULE",
    "DURABLE_HANDLER_PATHS",
}


def test_a_fresh_clone_runs_and_leaves_nothing_outside_data() -> None:
    """`make run`'s command in a fresh clone, nothing configured: a demo runs, and afterwards the
    clone holds nothing new but ``.data/`` (``git status`` clean) and no process of it is left."""
    folder = Path(tempfile.mkdtemp(prefix="durable-clone-"))
    folder.chmod(0o755)  # pgserver's own user must reach the clone's .data/postgres
    clone = folder / "app"
    subprocess.run(["git", "clone", "--quiet", str(embedded.BASE_DIR), str(clone)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in CLONE_VARIABLES}
    env.update({"PYTHONPATH": str(clone), "PYTHONUNBUFFERED": "1"})
    port = _free_port()
    log = folder / "run.log"
    run = subprocess.Popen(
        [sys.executable, "manage.py", "durable_up", "--port", str(port)],
        cwd=clone,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while "Durable Lab is up" not in log.read_text(errors="replace"):
            assert run.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        payload = '{"name": "clone", "wait_seconds": 1}'
        invoke = ["durable", "invoke", "--function-name", "hello-steps", "--payload", payload]
        answer = subprocess.run(
            [sys.executable, "manage.py", *invoke, "--invocation-type", "RequestResponse"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert '"StatusCode": 200' in answer.stdout and "FunctionError" not in answer.stdout, answer
        run.send_signal(signal.SIGINT)
        run.wait(timeout=60)
        assert "Durable Lab stopped." in log.read_text(errors="replace")
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, capture_output=True, text=True
        )
        assert status.stdout == "", f"make run left files in the clone:\n{status.stdout}"
        assert not (clone / "control").exists()
        time.sleep(1)
        left = [p for p in psutil.process_iter(["cmdline"]) if str(clone) in " ".join(p.info["cmdline"] or [])]
        assert not left, [" ".join(p.info["cmdline"])[:150] for p in left]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from durable_site import embedded as e; e.stop_embedded_broker(); e.stop_embedded_database()",
                ],
                cwd=clone,
                env=env,
                timeout=60,
            )
        shutil.rmtree(folder, ignore_errors=True)


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
