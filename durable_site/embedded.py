"""Zero-configuration back ends: an embedded PostgreSQL and a file-system broker.

When neither DATABASE_URL nor CELERY_BROKER_URL is set, Durable Lab runs on a
PostgreSQL server started from pip's ``pgserver`` in ``.data/postgres`` and on
kombu's ``filesystem://`` transport in ``.data/broker``: nothing to install.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DURABLE_DATA_DIR", BASE_DIR / ".data"))
PG_DIR = DATA_DIR / "postgres"
BROKER_DIR = DATA_DIR / "broker"
EMBEDDED_DB_NAME = "durable_lab"


def embedded_database_url() -> str:
    """Start (or reuse) the embedded PostgreSQL server and return its URL.

    Safe to call again: it looks at the server afresh and starts it if it has stopped.
    """
    if running_server_ready():
        # Up already (`make run`): no pgserver handle, no psql call. That costs a CLI command
        # about 0.3 s, and pgserver's exit line, on every call.
        return _database_url()
    import pgserver
    from pgserver.postgres_server import PostgresServer

    PG_DIR.parent.mkdir(parents=True, exist_ok=True)
    with PostgresServer._lock:  # pgserver's own lock: no other process is starting the server
        clear_stale_state()
    # pgserver caches the handle per process and would not notice a server that stopped since.
    PostgresServer._instances.pop(PG_DIR.resolve(), None)
    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DB_NAME}'")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DB_NAME}")
    return _database_url()


def _database_url() -> str:
    return f"postgresql://postgres@/{EMBEDDED_DB_NAME}?host={PG_DIR}"


def running_server_ready() -> bool:
    """True if the embedded server runs and accepts connections, by its ``postmaster.pid``.

    PostgreSQL writes "ready" on the lock file's eighth line once it accepts connections; the
    pid must still be a postmaster of this data folder (not a stale file's pid reused). The
    database is there too: the start that created the server created it before returning.
    """
    try:
        lines = (PG_DIR / "postmaster.pid").read_text().splitlines()
        postmaster = psutil.Process(int(lines[0]))
        ready = len(lines) > 7 and lines[7].strip() == "ready"
        return ready and postmaster.name() == "postgres" and str(PG_DIR.resolve()) in postmaster.cmdline()
    except (OSError, ValueError, IndexError, psutil.Error):
        return False


def server_process() -> psutil.Process | None:
    """Return the embedded server's postmaster if it runs, whatever ``postmaster.pid`` says.

    Only the postmaster carries the data folder on its command line (``postgres -D <dir>``).
    """
    pgdata = str(PG_DIR.resolve())
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and pgdata in (proc.info["cmdline"] or []):
            return proc
    return None


def clear_stale_state() -> None:
    """Forget what a server that is gone left behind, so the next start does not trust it.

    A ``postmaster.pid`` whose pid now belongs to another process makes pgserver report a
    running server that is not there (and PostgreSQL refuse to start); pgserver's list of
    client pids (``.handle_pids.json``) keeps the pids of processes long gone.
    """
    if server_process() is None:
        (PG_DIR / "postmaster.pid").unlink(missing_ok=True)
    handles = PG_DIR / ".handle_pids.json"
    with contextlib.suppress(OSError, ValueError):
        pids = json.loads(handles.read_text())
        handles.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


def stop_embedded_database(timeout: float = 30) -> None:
    """Stop the embedded server if it runs: ``pg_ctl stop``, then signals if that fails.

    Done without pgserver's handle, which would start a stopped server first and skips the
    stop while its list of client pids is not empty.
    """
    if not (PG_DIR / "PG_VERSION").exists():
        return
    with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pg_ctl(["-w", "-t", str(int(timeout)), "-m", "fast", "stop"], timeout=timeout + 5)
    postmaster = server_process()
    if postmaster is not None:  # pg_ctl could not stop it (lost postmaster.pid, stuck shutdown)
        with contextlib.suppress(psutil.Error):
            postmaster.terminate()
            try:
                postmaster.wait(10)
            except psutil.TimeoutExpired:
                postmaster.kill()
    if server_process() is None:
        (PG_DIR / "postmaster.pid").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (PG_DIR / ".handle_pids.json").write_text("[]")


def pg_ctl(args: list[str], timeout: float) -> None:
    """Run pgserver's ``pg_ctl`` on the embedded data folder (as its own user when this is root)."""
    from pgserver import _commands

    user = "pgserver" if os.geteuid() == 0 else None  # PostgreSQL refuses to run as root
    _commands.pg_ctl(args, pgdata=PG_DIR.resolve(), user=user, timeout=timeout)


def filesystem_broker_options() -> dict[str, str]:
    """Return kombu transport options that keep queued messages in ``.data/broker``."""
    queue_dir = BROKER_DIR / "queue"
    processed_dir = BROKER_DIR / "processed"
    queue_dir.mkdir(parents=True, exist_ok=True)
    processed_dir.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queue_dir),
        "data_folder_out": str(queue_dir),
        "processed_folder": str(processed_dir),
        "store_processed": False,
        # kombu's default is a "control" folder in the current directory (the checkout).
        "control_folder": str(BROKER_DIR / "control"),
    }
