"""The timeline read model against its written contract (engine/timeline_types.py and the
dashboard's page types in executions/selectors.py), on real executions.

A handful of executions run on the real stack (worker, scheduler, PostgreSQL), chosen so that
every part of the model holds something: retries and a wait, a callback with a deadline, a pause,
an invocation killed after a step's body (side effects, a fired fault, runs cut short), log lines,
and a step body read live from a running invocation's journal. Every dict the timeline returns is
then checked against its ``TypedDict``: each declared key is there (``__required_keys__``), no
key is undeclared, and each value has the declared run-time type (``typing.get_type_hints``),
recursively. A key added to the code and not to the contract, or the other way round, fails here.
"""

from __future__ import annotations

import copy
import json
import types
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

import engine
import engine.timeline
from engine import faults, timeline
from engine.timeline_types import LogLine, OperationDetail, Timeline
from tests.conftest import Stack, wait_until
from tests.engine.support import event_types, settled, start, terminal

# --- the check -------------------------------------------------------------------------------


@dataclass
class Seen:
    """Which TypedDicts the check met with a value, and which of their NotRequired keys."""

    types: set[type] = field(default_factory=set)
    optional_keys: set[tuple[str, str]] = field(default_factory=set)


def breaches(value: object, hint: Any, path: str, seen: Seen | None = None) -> list[str]:
    """Where ``value`` departs from the type ``hint``: one sentence per departure, with its path."""
    if hint is Any:
        return []
    if hint is type(None):
        return [] if value is None else [f"{path}: {value!r} is not None"]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [arm for arm in args if arm is not type(None)]
        if value is None:
            return [] if len(arms) < len(args) else [f"{path}: None is not a {hint}"]
        if len(arms) == 1:  # X | None: say what is wrong inside X
            return breaches(value, arms[0], path, seen)
        fitting = next((arm for arm in arms if not breaches(value, arm, path)), None)
        if fitting is None:
            return [f"{path}: {value!r} is none of {hint}"]
        return breaches(value, fitting, path, seen)
    if origin is typing.Literal:
        return (
            []
            if any(type(value) is type(arg) and value == arg for arg in args)
            else [f"{path}: {value!r} not in {args}"]
        )
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, not a list"]
        return [
            found for index, item in enumerate(value) for found in breaches(item, args[0], f"{path}[{index}]", seen)
        ]
    if origin is tuple:
        if not isinstance(value, tuple) or len(value) != len(args):
            return [f"{path}: {value!r} is not a tuple of {len(args)}"]
        return [
            found for index, item in enumerate(value) for found in breaches(item, args[index], f"{path}[{index}]", seen)
        ]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not a dict"]
        return [
            found
            for key, item in value.items()
            for found in [
                *breaches(key, args[0], f"{path} key", seen),
                *breaches(item, args[1], f"{path}[{key!r}]", seen),
            ]
        ]
    if typing.is_typeddict(hint):
        return _typeddict_breaches(value, hint, path, seen)
    if not isinstance(hint, type) or origin is not None:
        raise TypeError(f"{path}: the check does not know the annotation {hint!r}: teach it")
    if hint is bool:
        fits = type(value) is bool
    elif hint is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:  # an int is a float to a type checker (PEP 484's numeric tower)
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:  # a status declared as one of engine.rows' enums must be a member, not its bare string
        fits = isinstance(value, hint)
    return [] if fits else [f"{path}: {value!r} ({type(value).__name__}) is not a {hint.__name__}"]


def _typeddict_breaches(value: object, hint: Any, path: str, seen: Seen | None) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: {type(value).__name__}, not a {hint.__name__}"]
    declared = typing.get_type_hints(hint)
    found = [f"{path}: {hint.__name__} lacks {key!r}" for key in sorted(hint.__required_keys__ - value.keys())]
    found += [f"{path}: {key!r} is not declared in {hint.__name__}" for key in sorted(value.keys() - declared.keys())]
    if seen is not None and not found:
        seen.types.add(hint)
        seen.optional_keys |= {(hint.__name__, key) for key in hint.__optional_keys__ & value.keys()}
    for key in declared.keys() & value.keys():
        found += breaches(value[key], declared[key], f"{path}.{key}", seen)
    return found


def typeddicts_under(*roots: Any) -> dict[str, type]:
    """Every TypedDict a value of ``roots`` can hold, by name."""
    found: dict[str, type] = {}
    pending = list(roots)
    while pending:
        hint = pending.pop()
        if typing.is_typeddict(hint):
            if hint.__name__ not in found:
                found[hint.__name__] = hint
                pending.extend(typing.get_type_hints(hint).values())
        else:
            pending.extend(typing.get_args(hint))
    return found


# --- the executions --------------------------------------------------------------------------


@dataclass
class Records:
    arns: dict[str, str]  # what each execution is there to show -> its ARN, all ended
    live: Timeline  # read while a step's body ran in a running invocation
    live_page: dict[str, Any]  # the dashboard's page model read at the same moment
    live_engine: tuple[Timeline, Timeline]  # the engine's timeline behind that page, and a copy taken before


def _register(client: engine.LambdaClient, handler: str, timeout: int = 30) -> str:
    name = f"tl-{handler.rsplit('.', 1)[1].replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    config = {"ExecutionTimeout": 300, "RetentionPeriodInDays": 1}
    client.create_function(FunctionName=name, Handler=handler, Timeout=timeout, DurableConfig=config)
    return name


def _no_invocation_runs(arn: str) -> bool:
    return all(i["ended_at"] is not None for i in timeline.execution_timeline(arn)["invocations"])


def _live_page(arn: str, django_db_blocker: Any) -> tuple[dict[str, Any], Timeline, Timeline] | None:
    """The page model while a step's body runs (None before it does), with the engine's timeline
    it was built on and a copy of that timeline taken as the engine returned it."""
    from engine.contrib.django.models import Execution
    from executions import selectors

    calls: list[tuple[Timeline, Timeline]] = []
    read = engine.timeline.execution_timeline

    def recording(*args: Any, **kwargs: Any) -> Timeline:
        data = read(*args, **kwargs)
        calls.append((data, copy.deepcopy(data)))
        return data

    engine.timeline.execution_timeline = recording  # type: ignore[assignment]
    try:
        with django_db_blocker.unblock():
            page = selectors.execution_timeline_data(execution=Execution.objects.get(arn=arn))
    finally:
        engine.timeline.execution_timeline = read  # type: ignore[assignment]
    live = any(run.get("live") for op in page["operations"] for run in op["body_runs"])
    return (dict(page), *calls[0]) if live and page["invocation_running"] else None


@pytest.fixture(scope="module")
def records(stack: Stack, django_db_blocker: Any) -> Records:
    client = engine.client()
    with django_db_blocker.unblock():
        slow = _register(client, "tests.dashboard.handlers.slow_step")
        flaky = _register(client, "tests.dashboard.handlers.flaky")
        parked = _register(client, "tests.handlers.engine_pg.parked")
        waiting = _register(client, "tests.handlers.engine_pg.long_wait")
    arns = {
        "live body run, then killed": start(client, slow, json.dumps({"seconds": 3})),
        "retries and a wait": start(client, flaky, json.dumps({"fail_times": 1, "wait_seconds": 1})),
        "callback deadline": start(client, parked, json.dumps({"timeout": 1})),
        "pause": start(client, waiting, json.dumps({"seconds": 2})),
        # Demos registered by migrate: a kill after the charge's body (effects, a fired fault,
        # runs cut short), and log lines.
        "kill after body": start(client, "idempotency-keys", json.dumps({"order": f"o-{uuid.uuid4().hex[:8]}"})),
        "log lines": start(client, "replay-not-retry", json.dumps({"sleep": 0})),
    }
    live_page, live_data, as_returned = wait_until(
        lambda: _live_page(arns["live body run, then killed"], django_db_blocker),
        timeout=90,
        message="a step's body to run inside a running invocation",
    )
    # Killed mid-body: that run has no end of its own, and is cut short with its invocation.
    faults.kill_now(arns["live body run, then killed"], user="test_timeline_types")
    wait_until(lambda: "WaitStarted" in event_types(client, arns["pause"]), message="the wait to start")
    settled(arns["pause"])
    client.pause_durable_execution(DurableExecutionArn=arns["pause"])
    client.resume_durable_execution(DurableExecutionArn=arns["pause"])
    for arn in arns.values():
        terminal(client, arn, timeout=120)
        wait_until(lambda arn=arn: _no_invocation_runs(arn), timeout=60, message=f"{arn}'s last invocation to end")
    return Records(arns, live_data, live_page, (live_data, as_returned))


def _timelines(records: Records) -> Iterator[tuple[str, Timeline]]:
    for what, arn in records.arns.items():
        yield what, timeline.execution_timeline(arn)
        yield f"{what}, second row on", timeline.execution_timeline(arn, offset=1, limit=1)
    yield "live body run, while it ran", records.live


# --- the tests -------------------------------------------------------------------------------


def test_every_timeline_keeps_the_written_contract_and_exercises_all_of_it(records: Records) -> None:
    seen = Seen()
    for what, data in _timelines(records):
        assert breaches(data, Timeline, "timeline", seen) == [], what
        for op in data["operations"]:
            detail = timeline.operation_detail(data["execution"]["arn"], op["op_id"])
            assert breaches(detail, OperationDetail, f"operation_detail({op['name']})", seen) == [], what
    for arn in records.arns.values():
        assert breaches(timeline.invocation_logs(arn), list[LogLine], "invocation_logs", seen) == []
    # Every part of the contract was met with a value, so none of it was checked vacuously.
    contract = typeddicts_under(Timeline, OperationDetail, LogLine)
    assert sorted(contract.keys() - {t.__name__ for t in seen.types}) == []
    optional = {(name, key) for name, hint in contract.items() for key in hint.__optional_keys__}
    assert sorted(optional - seen.optional_keys) == []


def test_the_timelines_hold_what_the_executions_were_chosen_for(records: Records) -> None:
    """The executions really show what they are there for (else the contract check above
    proves less than it says)."""
    data = {what: timeline.execution_timeline(arn) for what, arn in records.arns.items()}
    attempts = [a for op in data["retries and a wait"]["operations"] for a in op["attempts"]]
    assert any(a["retrying"] and a["error"] and a["next_attempt_delay"] is not None for a in attempts)
    assert any(op["deadline"] for op in data["retries and a wait"]["operations"] if op["type"] == "WAIT")
    assert any(op["callback_id"] and op["deadline"] for op in data["callback deadline"]["operations"])
    assert [w["resumed_at"] is not None for w in data["pause"]["pauses"]] == [True]
    killed = data["kill after body"]
    assert killed["effects"] and any(f["fired_at"] for f in killed["faults"])
    assert any(
        s["outcome"] == "cut_short" for op in killed["operations"] for a in op["attempts"] for s in a["segments"]
    )
    cut = data["live body run, then killed"]
    assert any(run.get("cut_short") for op in cut["operations"] for run in op["body_runs"])
    assert timeline.invocation_logs(records.arns["log lines"])
    assert any(run.get("live") for op in records.live["operations"] for run in op["body_runs"])


def test_the_dashboard_pages_keep_their_contract_and_leave_the_timeline_as_it_was(
    records: Records, django_db_blocker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.contrib.django.models import Execution
    from executions import selectors

    # While an invocation ran, the page counted its billed time up to now in new counters.
    engine_data, as_returned = records.live_engine
    assert engine_data == as_returned, "execution_timeline_data changed the engine's timeline"
    assert breaches(records.live_page, selectors.TimelinePage, "live page") == []
    assert records.live_page["counters"] is not engine_data["counters"]

    details: list[tuple[OperationDetail, OperationDetail]] = []
    read = engine.timeline.operation_detail

    def recording(*args: Any, **kwargs: Any) -> OperationDetail:
        detail = read(*args, **kwargs)
        details.append((detail, copy.deepcopy(detail)))
        return detail

    monkeypatch.setattr(engine.timeline, "operation_detail", recording)
    with django_db_blocker.unblock():
        for what, arn in records.arns.items():
            execution = Execution.objects.get(arn=arn)
            page = selectors.execution_timeline_data(execution=execution)
            assert breaches(page, selectors.TimelinePage, "page") == [], what
            rows = selectors.invocations_with_logs(page, selectors.invocation_logs(execution=execution))
            assert breaches(rows, list[selectors.InvocationRow | selectors.SkippedRow], "invocations") == [], what
            assert breaches(selectors.RowWindow().pager(page["operation_count"]), selectors.Pager, "pager") == []
            assert breaches(selectors.history_export(execution=execution), selectors.HistoryExport, "export") == []
            for op in page["operations"]:
                panel = selectors.operation_detail(execution=execution, op_id=op["op_id"])
                assert breaches(panel, selectors.OperationPanel, f"panel({op['name']})") == [], what
    assert details and all(detail == as_returned for detail, as_returned in details), (
        "the panel changed the engine's detail"
    )


def test_the_check_fails_where_the_model_leaves_its_contract(records: Records) -> None:
    """A check that cannot fail proves nothing: each kind of drift, planted in a real timeline."""
    data = timeline.execution_timeline(records.arns["kill after body"])
    assert breaches(data, Timeline, "t") == []

    def planted(change: Any) -> list[str]:
        copied = copy.deepcopy(data)
        change(copied)
        return breaches(copied, Timeline, "t")

    step = next(index for index, op in enumerate(data["operations"]) if op["attempts"])
    assert planted(lambda d: d["operations"][step]["attempts"][0]["segments"][0].update(extra=1)) == [
        f"t.operations[{step}].attempts[0].segments[0]: 'extra' is not declared in Segment"
    ]
    assert planted(lambda d: d["counters"].pop("queued_seconds")) == ["t.counters: Counters lacks 'queued_seconds'"]
    assert planted(lambda d: d["execution"].update(status="SUCCEEDED")) == [
        "t.execution.status: 'SUCCEEDED' (str) is not a ExecutionStatus"
    ]
    assert planted(lambda d: d["invocations"][0].update(started_at=None)) == [
        "t.invocations[0].started_at: None (NoneType) is not a datetime"
    ]
    assert planted(lambda d: d["effects"][0].update(duplicate=0)) == ["t.effects[0].duplicate: 0 (int) is not a bool"]
    assert planted(lambda d: d["faults"][0].update(armed_at=str(d["faults"][0]["armed_at"]))) != []
    assert planted(lambda d: d["operations"][step]["body_runs"][0].update(outcome="vanished")) != []
    assert isinstance(data["execution"]["started_at"], datetime)


def test_the_check_knows_every_annotation_the_contract_uses() -> None:
    """An annotation the check does not understand raises instead of passing silently."""
    with pytest.raises(TypeError, match="does not know"):
        breaches(1, typing.Callable[[], int], "x")
