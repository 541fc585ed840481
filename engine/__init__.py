"""Durable Lab's engine: the service side of AWS Lambda durable executions on PostgreSQL.

Callers import only these names::

    import engine
    engine.configure(dsn="postgresql://…")

A process that runs invocations (the Celery worker does) may also make the SDK cheaper::

    from engine import speedups
    speedups.install()  # never done by ``import engine``: see engine/speedups.py
    lam = engine.client()
    lam.invoke(FunctionName="orders", InvocationType="Event", Payload=b'{"id": 1}')
"""

from __future__ import annotations

from engine import errors
from engine import handler_paths as _handler_paths
from engine.api import LambdaClient, client, wait_for_execution
from engine.db import configure as _configure_db
from engine.duties.loops import release_quarantine
from engine.duties.unit import Dispatcher, set_dispatcher


def configure(
    *, dsn: str | None = None, dispatcher: Dispatcher | None = None, handler_paths: list[str] | None = None
) -> None:
    """Point the engine at its database, at the dispatcher that queues invocations, and at the
    directories handlers may come from (engine/handler_paths.py: nothing else is accepted)."""
    if dsn is not None:
        _configure_db(dsn)
    if dispatcher is not None:
        set_dispatcher(dispatcher)
    if handler_paths is not None:
        _handler_paths.configure(handler_paths)


__all__ = ["Dispatcher", "LambdaClient", "client", "configure", "errors", "release_quarantine", "wait_for_execution"]
