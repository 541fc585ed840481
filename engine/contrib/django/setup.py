"""Wiring between Django and the engine core."""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import make_conninfo


def dsn_from_settings(database: dict[str, Any]) -> str:
    """Return a libpq connection string for Django's ``DATABASES['default']``."""
    params = {
        "dbname": database.get("NAME"),
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": str(database.get("PORT")) if database.get("PORT") else None,
    }
    # dj-database-url puts query parameters such as ?host=/socket/dir in OPTIONS.
    options = {k: str(v) for k, v in (database.get("OPTIONS") or {}).items() if isinstance(v, str | int)}
    return make_conninfo(**{k: v for k, v in params.items() if v}, **options)
