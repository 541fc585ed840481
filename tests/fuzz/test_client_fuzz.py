"""Fuzz every ``engine.client()`` method: only the engine's AWS-style errors, and nothing stored when refused."""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import engine
from engine.errors import ServiceError
from tests.fuzz.conftest import assert_rejection_stores_nothing
from tests.fuzz.hostile import DEEP_JSON, DEEPER_JSON, MISSING_ARN, SEEDS, fuzz_settings, hostile_value

FUZZ_SETTINGS = fuzz_settings(max_examples=15)
MISSING_CALLBACK = "Tm9wZQ=="

hostile_dates = st.sampled_from(
    [
        datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59))),
        datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=-15))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))),
        datetime(2020, 1, 1),  # naive
        datetime.now(UTC),
        "2020-01-01T00:00:00Z",
        1e20,
        math.inf,
    ]
)
structured = st.sampled_from(
    [
        {"Variables": {"A1": "\x00"}},
        {"Variables": {"A1\n": "x"}},
        {"Variables": {"A1": "x" * 5000}},
        {"Variables": {"A1": 1}},
        {"Variables": []},
        {"ExecutionTimeout": math.nan},
        {"ExecutionTimeout": 10**30},
        {"BackoffRate": math.nan},
        {"BackoffRate": 1e300},
        {"MaximumAttempts": 10**9},
        {"InitialDelaySeconds": -1},
        {"MaxDelaySeconds": math.inf},
        {"ImmediateRetries": 2.5},
        {"ErrorMessage": "a\x00b"},
        {"ErrorType": "\ud800"},
        {"StackTrace": ["\x00"]},
        {"StackTrace": "not a list"},
        {"ErrorData": DEEP_JSON},
    ]
)
value = st.one_of(hostile_value, hostile_dates, structured, st.lists(hostile_value, max_size=3))

# The parameters create_function and update_function_configuration share.
FUNCTION_CONFIG = [
    "FunctionName",
    "Handler",
    "Description",
    "Timeout",
    "Environment",
    "DurableConfig",
    "MaximumRetryAttempts",
    "InvocationRetryPolicy",
]
# method -> (keyword arguments of a call that reaches the engine, every parameter the method takes)
TARGETS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "create_function": ({"FunctionName": "fuzz-new", "Handler": "demos.hello.handler"}, FUNCTION_CONFIG),
    "update_function_configuration": ({"FunctionName": "fuzz-update"}, [*FUNCTION_CONFIG, "RevisionId"]),
    "get_function": ({"FunctionName": "fuzz-target"}, ["FunctionName", "Qualifier"]),
    "list_functions": ({}, ["Marker", "MaxItems"]),
    "invoke": (
        {"FunctionName": "fuzz-target", "InvocationType": "DryRun", "Payload": b"{}"},
        [
            "FunctionName",
            "InvocationType",
            "Payload",
            "DurableExecutionName",
            "Qualifier",
            "LogType",
            "ClientContext",
            "TimeScale",
        ],
    ),
    "get_durable_execution": ({"DurableExecutionArn": "<seed>"}, ["DurableExecutionArn"]),
    "get_durable_execution_history": (
        {"DurableExecutionArn": "<seed>"},
        ["DurableExecutionArn", "IncludeExecutionData", "MaxItems", "Marker", "ReverseOrder"],
    ),
    "get_durable_execution_state": (
        {"DurableExecutionArn": "<seed>", "CheckpointToken": "token"},
        ["DurableExecutionArn", "CheckpointToken", "Marker", "MaxItems"],
    ),
    "checkpoint_durable_execution": (
        {"DurableExecutionArn": "<seed>", "CheckpointToken": "token"},
        ["DurableExecutionArn", "CheckpointToken", "Updates", "ClientToken"],
    ),
    "list_durable_executions_by_function": (
        {"FunctionName": "fuzz-target"},
        [
            "FunctionName",
            "Qualifier",
            "DurableExecutionName",
            "Statuses",
            "StartedAfter",
            "StartedBefore",
            "ReverseOrder",
            "Marker",
            "MaxItems",
        ],
    ),
    "stop_durable_execution": ({"DurableExecutionArn": MISSING_ARN}, ["DurableExecutionArn", "Error"]),
    "pause_durable_execution": (
        {"DurableExecutionArn": MISSING_ARN},
        ["DurableExecutionArn", "ClientToken", "Reason", "ExecutionTimeoutPaused"],
    ),
    "resume_durable_execution": (
        {"DurableExecutionArn": MISSING_ARN},
        ["DurableExecutionArn", "ClientToken", "Reason"],
    ),
    "delete_durable_execution": ({"DurableExecutionArn": MISSING_ARN}, ["DurableExecutionArn"]),
    "send_durable_execution_callback_success": ({"CallbackId": MISSING_CALLBACK}, ["CallbackId", "Result"]),
    "send_durable_execution_callback_failure": ({"CallbackId": MISSING_CALLBACK}, ["CallbackId", "Error"]),
    "send_durable_execution_callback_heartbeat": ({"CallbackId": MISSING_CALLBACK}, ["CallbackId"]),
}


@pytest.fixture(scope="module")
def targets(fuzz_target: dict[str, Any]) -> dict[str, Any]:
    lam = engine.client()
    with contextlib.suppress(lam.exceptions.ResourceConflictException):
        lam.create_function(FunctionName="fuzz-update", Handler="demos.hello.handler")
    return fuzz_target


def call(method: str, kwargs: dict[str, Any]) -> Any:
    """Return the response, or the ServiceError raised; any other exception fails the test."""
    try:
        return getattr(engine.client(), method)(**kwargs)
    except ServiceError as exc:
        return exc


@pytest.mark.parametrize("method", sorted(TARGETS))
@FUZZ_SETTINGS
@given(overrides=st.data())
def test_client_method_raises_only_aws_errors_and_stores_nothing_when_refusing(
    targets: dict[str, Any], method: str, overrides: st.DataObject
) -> None:
    base, params = TARGETS[method]
    kwargs = {key: targets["arn"] if item == "<seed>" else item for key, item in base.items()}
    kwargs.update(overrides.draw(st.dictionaries(st.sampled_from(params), value, min_size=1, max_size=3)))
    assert_rejection_stores_nothing(
        lambda: call(method, kwargs), lambda outcome: isinstance(outcome, ServiceError), (method, kwargs)
    )


@pytest.mark.parametrize("method", sorted(TARGETS))
def test_every_parameter_refuses_every_seed_cleanly(targets: dict[str, Any], method: str) -> None:
    """Each hostile seed in each parameter, alone: the error names a problem, never a psycopg or Python one."""
    base, params = TARGETS[method]
    kwargs = {key: targets["arn"] if item == "<seed>" else item for key, item in base.items()}
    for param in params:
        for seed in SEEDS:
            attempt = {**kwargs, param: seed}
            assert_rejection_stores_nothing(
                lambda attempt=attempt: call(method, attempt),
                lambda outcome: isinstance(outcome, ServiceError),
                (method, param, seed),
            )


# The inputs the reliability probe of issue 21 found, each with the error it must now get.
ISSUE_21 = [
    ("create_function", {"Description": "a\x00b"}, "InvalidParameterValueException", "Description contains a NUL"),
    (
        "create_function",
        {"Environment": {"Variables": {"KEY": "a\x00b"}}},
        "InvalidParameterValueException",
        "Environment variable KEY contains a NUL",
    ),
    (
        "create_function",
        {"InvocationRetryPolicy": {"BackoffRate": math.nan}},
        "InvalidParameterValueException",
        "BackoffRate must be a number between 1 and 10, got nan",
    ),
    (
        "create_function",
        {"InvocationRetryPolicy": {"MaxDelaySeconds": 1e300}},
        "InvalidParameterValueException",
        "MaxDelaySeconds must be a number between 0 and 86400",
    ),
    (
        "create_function",
        {"InvocationRetryPolicy": {"MaximumAttempts": 10**9}},
        "InvalidParameterValueException",
        "MaximumAttempts must be an integer between 0 and 1000",
    ),
    ("get_durable_execution", {"DurableExecutionArn": MISSING_ARN + "\x00"}, "InvalidParameterValueException", "NUL"),
    ("invoke", {"DurableExecutionName": "a\x00b"}, "InvalidParameterValueException", "DurableExecutionName"),
    ("invoke", {"DurableExecutionName": 12}, "InvalidParameterValueException", "DurableExecutionName"),
    (
        "list_durable_executions_by_function",
        {"DurableExecutionName": 12},
        "InvalidParameterValueException",
        "DurableExecutionName",
    ),
    ("list_functions", {"Marker": "a\x00b"}, "InvalidParameterValueException", "Marker contains a NUL"),
    (
        "send_durable_execution_callback_success",
        {"Result": "a\x00b"},
        "InvalidParameterValueException",
        "Result contains a NUL",
    ),
    ("invoke", {"Payload": DEEPER_JSON}, "InvalidRequestContentException", "nested deeper than 64 levels"),
    ("invoke", {"Payload": "NaN"}, "InvalidRequestContentException", "NaN is not a JSON number"),
    ("invoke", {"Payload": "1e309"}, "InvalidRequestContentException", "out of the range"),
    (
        "list_durable_executions_by_function",
        {"StartedAfter": datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59)))},
        "InvalidParameterValueException",
        "StartedAfter has UTC offset",
    ),
]


@pytest.mark.parametrize(("method", "overrides", "code", "message"), ISSUE_21, ids=[m for _, _, _, m in ISSUE_21])
def test_issue_21_inputs_get_a_clear_aws_error(
    targets: dict[str, Any], method: str, overrides: dict[str, Any], code: str, message: str
) -> None:
    base, _ = TARGETS[method]
    kwargs = {**{key: targets["arn"] if item == "<seed>" else item for key, item in base.items()}, **overrides}
    outcome = assert_rejection_stores_nothing(lambda: call(method, kwargs), lambda _: True, (method, kwargs))
    assert isinstance(outcome, ServiceError), outcome
    assert outcome.code == code and message in outcome.message, outcome
