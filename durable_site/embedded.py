"""Zero-configuration back ends: an embedded PostgreSQL and a file-system broker.

When neither DATABASE_URL nor CELERY_BROKER_URL is set, Durable Lab runs on a
PostgreSQL server started from pip's ``pgserver`` in ``.data/postgres`` and on
kombu's ``filesystem://`` transport in ``.data/broker``: nothing to install.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DURABLE_DATA_DIR", BASE_DIR / ".data"))
PG_DIR = DATA_DIR / "postgres"
BROKER_DIR = DATA_DIR / "broker"
EMBEDDED_DB_NAME = "durable_lab"


def embedded_database_url() -> str:
    """Start (or reuse) the embedded PostgreSQL server and return its URL."""
    import pgserver

    PG_DIR.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DB_NAME}'")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DB_NAME}")
    return f"postgresql://postgres@/{EMBEDDED_DB_NAME}?host={PG_DIR}"


def stop_embedded_database() -> None:
    """Stop the embedded server if it is running (``make run`` calls this on exit)."""
    import contextlib
    import subprocess

    import pgserver
    from pgserver._commands import pg_ctl  # runs pg_ctl as pgserver's own system user (root cannot)

    if not (PG_DIR / "postmaster.pid").exists():
        return
    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PG_DIR, user=server.system_user)


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
    }
