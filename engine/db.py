"""Connections for the engine core: a psycopg 3 pool per process, created lazily after fork."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import orjson
import psycopg
from psycopg.adapt import Dumper
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)
_lock = threading.Lock()
_dsn: str | None = None
# The engine's connections hand out rows as dicts (the pool's ``row_factory``); every store
# function takes one, so mypy checks each row's use against ``dict[str, Any]``, not a tuple.
Conn = psycopg.Connection[DictRow]
_pool: ConnectionPool[Conn] | None = None
_pool_pid: int | None = None
_lock_held_across_fork = False


def hold_lock_across_fork() -> None:
    """Fork only while this module's lock is free (the at-fork idiom): a process whose threads
    use the engine while another thread forks (a Celery worker's parent recording a kill while
    it forks a pool child) would otherwise hand the child the lock held, and the child would
    hang at its first query. Idempotent."""
    global _lock_held_across_fork
    if not _lock_held_across_fork:
        os.register_at_fork(before=_lock.acquire, after_in_parent=_lock.release, after_in_child=_lock.release)
        _lock_held_across_fork = True


def configure(dsn: str) -> None:
    """Point the engine at a PostgreSQL database (a libpq URL or key=value string)."""
    global _dsn, _pool
    with _lock:
        if dsn != _dsn and _pool is not None and _pool_pid == os.getpid():
            _pool.close()
            _pool = None
        _dsn = dsn


def dsn() -> str:
    if _dsn is None:
        raise RuntimeError("engine is not configured: call engine.configure(dsn=...) first")
    return _dsn


def _json_loads(data: bytes | str) -> Any:
    """Parse a json/jsonb column: orjson is 3-4x faster than ``json.loads`` on a replay's documents.

    What orjson refuses (lone surrogates, numbers out of float range) goes to ``json.loads``,
    which gives the stdlib's answer. One difference remains: an integer beyond 64 bits comes back
    as a float. The engine's documents hold none (payloads are stored as JSON strings).
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


# Types orjson would write its own way where ``json.dumps`` raises: they keep raising.
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _json_dumps(obj: Any) -> bytes | str:
    """Write a json/jsonb parameter: orjson takes ~2 µs where ``json.dumps`` takes ~17 µs for a
    checkpoint's documents, and every step writes some.

    What orjson refuses (non-string keys, integers beyond 64 bits, the types passed through
    above) goes to ``json.dumps``, which gives the stdlib's answer or its error.
    One difference remains: NaN and infinities become ``null``, where ``json.dumps`` wrote tokens
    PostgreSQL rejects. Text jsonb cannot hold (NUL, lone surrogates) is written escaped (see
    ``escape_untranslatable``): one bytes search of the output is all the common case pays.
    """
    try:
        data = orjson.dumps(obj, option=_ORJSON_STRICT)
    except TypeError:  # orjson also raises this for a lone surrogate, which jsonb refuses too
        return _json_dumps_escaped(obj)
    if b"\\u0000" in data:  # how orjson writes NUL, which jsonb refuses
        return _json_dumps_escaped(obj)
    return data


def _json_dumps_escaped(obj: Any) -> bytes | str:
    escaped = escape_document(obj)
    if escaped != obj:
        log.warning("stored text escaped: it held NUL bytes or lone surrogates, which PostgreSQL cannot store")
    try:
        return orjson.dumps(escaped, option=_ORJSON_STRICT)
    except TypeError:
        return json.dumps(escaped)


def escape_untranslatable(text: str) -> str:
    """``text`` with what PostgreSQL cannot store in text or jsonb written as visible escapes:
    NUL becomes the six characters ``\\u0000``, a lone surrogate ``\\udXXX``. Anything else is kept.
    """
    text = text.replace("\x00", "\\u0000")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def is_storable(text: str) -> bool:
    """Whether PostgreSQL can store ``text`` as it is (cheap for the ASCII text most of it is)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escape_document(obj: Any) -> Any:
    """A JSON-like document (dicts, lists, strings) with every string, keys too, made storable."""
    if isinstance(obj, str):
        return obj if is_storable(obj) else escape_untranslatable(obj)
    if isinstance(obj, dict):
        return {escape_document(key): escape_document(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [escape_document(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(escape_document(item) for item in obj)
    return obj


class _StorableStrDumper(Dumper):
    """psycopg's dumper of ``str`` parameters (sent as unknown-typed text), with what PostgreSQL
    cannot store escaped instead of refused (NUL: a ``DataError`` before sending; a lone
    surrogate: ``UnicodeEncodeError``). Costs a Python call per string parameter."""

    oid = 0

    def dump(self, obj: str) -> bytes:
        try:
            data = obj.encode("utf-8")
        except UnicodeEncodeError:
            data = b"\x00"  # take the escaping path below
        if b"\x00" in data:
            log.warning("stored text escaped: it held NUL bytes or lone surrogates, which PostgreSQL cannot store")
            data = escape_untranslatable(obj).encode("utf-8")
        return data


def _configure(conn: Conn) -> None:
    set_json_loads(_json_loads, conn)
    set_json_dumps(_json_dumps, conn)
    conn.adapters.register_dumper(str, _StorableStrDumper)


def pool() -> ConnectionPool[Conn]:
    """Return this process's pool; a forked child gets a fresh one (sockets are not shared)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ConnectionPool[Conn](
                dsn(),
                min_size=1,
                max_size=int(os.environ.get("DURABLE_DB_POOL_SIZE", "8")),
                kwargs={"autocommit": True, "row_factory": dict_row},
                configure=_configure,
                open=True,
                name="durable-engine",
            )
            _pool_pid = os.getpid()
        return _pool


# A host framework may lend its own connection for read models: the Django adapter lends Django's
# for the length of a request, so a page reads through one connection, counted with its queries.
# A context variable, not a global: other threads and callers outside a request keep the pool.
Reader = Callable[[], AbstractContextManager[Any]]
_reader: ContextVar[Reader | None] = ContextVar("durable_engine_reader", default=None)


@contextmanager
def lent(reader: Reader) -> Iterator[None]:
    """Within this block (in this thread or task), read models read through ``reader()``."""
    token = _reader.set(reader)
    try:
        yield
    finally:
        _reader.reset(token)


@contextmanager
def reading() -> Iterator[Any]:
    """Yield a connection for a read model: the lent one if any, else one of the pool's.

    Only ``execute`` and ``cursor(row_factory=...)`` may be used on it, and only to read.
    """
    reader = _reader.get()
    if reader is None:
        with transaction() as conn:
            yield conn
    else:
        with reader() as conn:
            yield conn


def load_json(data: bytes | str) -> Any:
    """How the engine parses json/jsonb columns, for a lent connection to parse them the same way."""
    return _json_loads(data)


class ConnectionSource(Protocol):
    """Where connections come from when PostgreSQL is not in use: the memory store's (unit tests)."""

    def connection(self) -> AbstractContextManager[Any]: ...

    def transaction(self) -> AbstractContextManager[Any]: ...


_source: ConnectionSource | None = None


def use_source(source: ConnectionSource | None) -> None:
    """Hand out ``source``'s connections instead of the pool's (None: the pool's again). Called by
    ``engine.store.memory.install`` together with the switch of store."""
    global _source
    _source = source


def connection() -> AbstractContextManager[Conn]:
    """A connection of the store in use, in autocommit: each statement is its own transaction."""
    return pool().connection() if _source is None else _source.connection()


@contextmanager
def transaction() -> Iterator[Conn]:
    """Yield a connection inside one transaction; commit on success, roll back on error."""
    if _source is not None:
        with _source.transaction() as conn:
            yield conn
        return
    with pool().connection() as conn, conn.transaction():
        yield conn


def drop_broken_connections() -> None:
    """Test this process's idle connections now (after a database outage), so that the next ones
    handed out work: otherwise each one left from before the outage fails once when next used."""
    with _lock:
        current = _pool if _pool_pid == os.getpid() else None
    if current is not None:
        try:
            current.check()
        except Exception:  # still down: the pool replaces them as it can
            log.debug("checking the pool's connections failed", exc_info=True)


def close() -> None:
    global _pool
    with _lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.close()
        _pool = None
