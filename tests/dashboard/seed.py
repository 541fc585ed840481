"""Seed engine tables directly (Django ORM / one SQL statement) for pages that must stay fast at scale.

The engine's models refuse writes through ``objects`` and ``save()``; seeds stand in for the
engine, so they write through each model's plain ``_base_manager`` (``insert``/``writable``).

Real executions are used wherever behaviour matters; seeds only stand in for volume: 1,000+
operations in one execution, 100,000 executions in the list.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

from engine.contrib.django.models import Event, Execution, Invocation, Operation

ACCOUNT = "123456789012"


def insert(model: Any, **fields: Any) -> Any:
    """One engine row, written as the engine would have written it; returned with its id."""
    return model._base_manager.bulk_create([model(**fields)])[0]


def writable(model: Any) -> Any:
    """A writable queryset over an engine table, for seeds and their clean-up."""
    return model._base_manager.all()


def arn_for(function: str, name: str) -> str:
    ident = uuid.uuid4()
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}:$LATEST/durable-execution/{name}/{ident}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def seed_execution(
    *,
    function: str,
    operations: int,
    status: str = "SUCCEEDED",
    invocations: int = 3,
    started_at: datetime | None = None,
    name: str | None = None,
) -> Execution:
    """One execution with ``operations`` steps (1 failed attempt each third one), events and invocations."""
    start = started_at or datetime.now(UTC) - timedelta(minutes=5)
    name = name or uuid.uuid4().hex[:12]
    ended = start + timedelta(seconds=operations * 0.01 + 2) if status != "RUNNING" else None
    execution = insert(
        Execution,
        arn=arn_for(function, name),
        function_name=function,
        name=name,
        input='{"seeded": true}',
        status=status,
        result='"ok"' if status == "SUCCEEDED" else None,
        started_at=start,
        ended_at=ended,
        execution_timeout=3600,
        counters={"invocations": invocations, "checkpoints": operations},
    )
    writable(Invocation).bulk_create(_invocations(execution, start, invocations, operations))
    ops, events = _operations_and_events(execution, start, operations)
    writable(Operation).bulk_create(ops, batch_size=2000)
    writable(Event).bulk_create(events, batch_size=2000)
    return execution


def _invocations(execution: Execution, start: datetime, count: int, operations: int) -> list[Invocation]:
    span = timedelta(seconds=operations * 0.01 + 2) / max(count, 1)
    rows = []
    for seq in range(1, count + 1):
        began = start + span * (seq - 1) + timedelta(milliseconds=50)
        rows.append(
            Invocation(
                execution=execution,
                seq=seq,
                request_id=str(uuid.uuid4()),
                reason="start" if seq == 1 else "retry_due",
                started_at=began,
                ended_at=began + span / 2,
                deadline=began + timedelta(seconds=30),
                outcome="succeeded" if seq == count else "suspended",
                worker="seed",
                pid=1,
            )
        )
    return rows


def _operations_and_events(execution: Execution, start: datetime, count: int) -> tuple[list[Operation], list[Event]]:
    ops: list[Operation] = []
    events = [
        Event(
            execution=execution,
            event_id=1,
            event_type="ExecutionStarted",
            timestamp=start,
            doc={
                "EventType": "ExecutionStarted",
                "Id": "exec",
                "Name": execution.name,
                "ExecutionStartedDetails": {"Input": {"Payload": execution.input, "Truncated": False}},
            },
        )
    ]
    for index in range(count):
        op_id = uuid.uuid4().hex
        began = start + timedelta(milliseconds=60 + 10 * index)
        name = f"step-{index}"
        ops.append(
            Operation(
                execution=execution,
                op_id=op_id,
                ordinal=index + 1,
                name=name,
                type="STEP",
                sub_type="Step",
                status="SUCCEEDED",
                attempt=1,
                started_at=began,
                ended_at=began + timedelta(milliseconds=5),
                doc={
                    "Id": op_id,
                    "Name": name,
                    "Type": "STEP",
                    "SubType": "Step",
                    "Status": "SUCCEEDED",
                    "StartTimestamp": _ms(began),
                    "StepDetails": {"Attempt": 1, "Result": str(index)},
                },
            )
        )
        events += _step_events(execution, op_id, name, began, len(events) + 1, failed_first=index % 3 == 0)
    return ops, events


def _step_events(
    execution: Execution, op_id: str, name: str, at: datetime, first_id: int, *, failed_first: bool
) -> list[Event]:
    base: dict[str, Any] = {"Id": op_id, "Name": name, "SubType": "Step"}
    kinds: list[tuple[str, dict[str, Any]]] = []
    if failed_first:
        kinds += [
            ("StepStarted", {}),
            (
                "StepFailed",
                {
                    "Error": {
                        "Payload": {"ErrorType": "SeedError", "ErrorMessage": "first attempt fails"},
                        "Truncated": False,
                    },
                    "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 1},
                },
            ),
        ]
    kinds += [
        ("StepStarted", {}),
        (
            "StepSucceeded",
            {
                "Result": {"Payload": "1", "Truncated": False},
                "RetryDetails": {"CurrentAttempt": 2 if failed_first else 1},
            },
        ),
    ]
    return [
        Event(
            execution=execution,
            event_id=first_id + offset,
            event_type=kind,
            op_id=op_id,
            invocation_seq=1,
            timestamp=at + timedelta(milliseconds=offset),
            doc={"EventType": kind, **base, f"{kind}Details": details},
        )
        for offset, (kind, details) in enumerate(kinds)
    ]


def bulk_executions(*, function: str, count: int, newest: datetime | None = None) -> None:
    """``count`` finished executions of ``function``, one a second back from ``newest``, in one statement."""
    newest = newest or datetime.now(UTC) - timedelta(hours=1)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO durable_execution (arn, function_name, name, input, status, result, started_at, ended_at,
                execution_timeout, retention_days, time_scale, invocation_type, invocation_seq, token_seq, running,
                needs_invoke, invoke_reason, consecutive_failures, op_seq, seen_seq, event_seq, counters)
            SELECT %(prefix)s || g || '/' || md5(g::text), %(function)s, 'bulk-' || g, '{}',
                (ARRAY['SUCCEEDED','FAILED','STOPPED','TIMED_OUT'])[1 + g %% 4], NULL,
                %(newest)s - make_interval(secs => g), %(newest)s - make_interval(secs => g) + interval '2 seconds',
                3600, 1, 1.0, 'Event', 1, 1, false, false, 'start', 0, 0, 0, 0, '{"invocations": 1}'::jsonb
            FROM generate_series(1, %(count)s) AS g
            """,
            {
                "prefix": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}:$LATEST/durable-execution/bulk-",
                "function": function,
                "newest": newest,
                "count": count,
            },
        )


def delete_function_executions(function: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM durable_execution WHERE function_name = %s", [function])
