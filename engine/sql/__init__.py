"""The engine's SQL, as named queries read once from the ``*.sql`` files beside this module.

Each file holds the statements of one area. A statement starts at a ``-- name: some_query`` line;
the comment lines right below it say why it has the shape it has (they stay here, not in the
text sent to the server); the statement runs to the next ``-- name:`` line or the end of the file.
Callers write ``conn.execute(Q.some_query, params)``: the text of a query never changes, so
psycopg prepares each one on the server once it has run a few times.

A prepared statement keeps one generic plan, planned without the parameters' values, until the
table's next ANALYZE. A statement that names one row by its key and also tests an indexed status
(``id = %(id)s AND status = 'RUNNING'``) ties on a table as small as a fresh install's: the
planner may take the status index, and then walks every RUNNING row on each call until
autovacuum analyzes the table again (a checkpoint took 1.2 ms more at 5,000 running executions:
the first minutes of a fresh install under load, every bench and test database). Such statements
write the status test as ``(status = 'RUNNING') IS TRUE``, which no index answers, so the key's
index is the only choice; ``tests/engine/test_sql_plans.py`` holds them to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from typing import LiteralString

_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


class Queries:
    """Named queries: ``Q.execution_by_arn`` is that statement's text."""

    def __init__(self, queries: dict[str, LiteralString], files: dict[str, str]) -> None:
        self._queries = queries
        self.files = files  # query name -> the file it came from, for error messages and tests

    def __getattr__(self, name: str) -> LiteralString:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(f"No query named {name!r} in engine/sql/*.sql") from None

    def __iter__(self) -> Iterator[tuple[str, LiteralString]]:
        return iter(self._queries.items())

    def __len__(self) -> int:
        return len(self._queries)


def parse(text: str, filename: str = "<string>") -> dict[str, LiteralString]:
    """Split one file into its named statements; a name given twice, or text before the first
    name, is an error, so that no statement is silently lost."""
    parts = _HEADER.split(text)
    if _statement(parts[0]):
        raise ValueError(f"{filename}: SQL before the first '-- name:' line")
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        statement = _statement(body)
        if not statement:
            raise ValueError(f"{filename}: query {name!r} is empty")
        if name in queries:
            raise ValueError(f"{filename}: query {name!r} is defined twice")
        # Text of the package's own files, trusted as literal SQL (mypy reads LiteralString as str).
        queries[name] = statement
    return queries


def _statement(body: str) -> str:
    """The statement without the comment lines above it and the blank lines around it."""
    lines = body.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip().rstrip(";")


def load() -> Queries:
    queries: dict[str, LiteralString] = {}
    files: dict[str, str] = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, statement in parse(entry.read_text(encoding="utf-8"), entry.name).items():
            if name in queries:
                raise ValueError(f"{entry.name}: query {name!r} is also defined in {files[name]}")
            queries[name] = statement
            files[name] = entry.name
    return Queries(queries, files)


Q = load()
