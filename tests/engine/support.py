"""Helpers of the engine's own tests: in-process dispatchers and readers of the engine tables."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import engine
from engine import db, invoker
from engine.duties.unit import PlainCall
from engine.store import store
from tests.conftest import wait_until

Row = dict[str, Any]
Register = Callable[..., str]


class ThreadDispatcher:
    """Runs each owed invocation in a thread of this process, as a worker child would."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def invoke(self, execution_id: int, timeout: float) -> None:
        self._spawn(invoker.run_invocation, execution_id)

    def call_plain(self, call: PlainCall) -> None:
        self._spawn(invoker.call_plain_function, call)

    def _spawn(self, target: Any, arg: Any) -> None:
        thread = threading.Thread(target=target, args=(arg,), daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        index = 0
        while index < len(self.threads):
            self.threads[index].join(max(0.0, deadline - time.monotonic()))
            index += 1


class Recorder:
    """A dispatcher that only records: the test claims and drives each invocation itself."""

    def __init__(self) -> None:
        self.invoked: list[int] = []

    def invoke(self, execution_id: int, timeout: float) -> None:
        self.invoked.append(execution_id)

    def call_plain(self, call: PlainCall) -> None:
        pass


def start(client: engine.LambdaClient, name: str, payload: str | None = None, **kwargs: Any) -> str:
    return client.invoke(FunctionName=name, InvocationType="Event", Payload=payload, **kwargs)["DurableExecutionArn"]


def execution_row(arn: str) -> Row:
    with db.transaction() as conn:
        row = store.execution_by_arn(conn, arn)
    assert row is not None, arn
    return row


def invocations(arn: str) -> list[Row]:
    with db.transaction() as conn:
        return conn.execute(
            """SELECT i.* FROM durable_invocation i JOIN durable_execution e ON e.id = i.execution_id
               WHERE e.arn = %s ORDER BY i.seq""",
            (arn,),
        ).fetchall()


def stored_ops(arn: str) -> dict[str, Row]:
    execution_id = execution_row(arn)["id"]
    with db.transaction() as conn:
        return store.load_ops(conn, execution_id)


def op_named(arn: str, name: str) -> Row:
    return next(op for op in stored_ops(arn).values() if op.get("Name") == name)


def timers(arn: str) -> list[Row]:
    with db.transaction() as conn:
        return conn.execute(
            """SELECT t.kind, t.op_id FROM durable_timer t JOIN durable_execution e ON e.id = t.execution_id
               WHERE e.arn = %s ORDER BY t.kind, t.op_id""",
            (arn,),
        ).fetchall()


def events(client: engine.LambdaClient, arn: str, data: bool = True) -> list[Row]:
    return client.get_durable_execution_history(DurableExecutionArn=arn, IncludeExecutionData=data)["Events"]


def event_types(client: engine.LambdaClient, arn: str) -> list[str]:
    return [e["EventType"] for e in events(client, arn, data=False)]


def settled(arn: str, timeout: float = 60) -> Row:
    """Wait until no invocation runs or is owed (the execution is terminal or suspended)."""

    def check() -> Row | None:
        row = execution_row(arn)
        return row if not row["running"] and not row["needs_invoke"] else None

    return wait_until(check, timeout=timeout, message=f"{arn} to settle")  # type: ignore[no-any-return]


def terminal(client: engine.LambdaClient, arn: str, timeout: float = 60) -> Row:
    def check() -> Row | None:
        described = client.get_durable_execution(DurableExecutionArn=arn)
        return described if described["Status"] != "RUNNING" else None

    return wait_until(check, timeout=timeout, message=f"{arn} to end")  # type: ignore[no-any-return]


def callback_ids(client: engine.LambdaClient, arn: str, count: int = 1, timeout: float = 60) -> list[str]:
    def check() -> list[str] | None:
        found = [
            e["CallbackStartedDetails"]["CallbackId"]
            for e in events(client, arn, data=False)
            if e["EventType"] == "CallbackStarted"
        ]
        return found if len(found) >= count else None

    return wait_until(check, timeout=timeout, message=f"{count} CallbackStarted")  # type: ignore[no-any-return]
