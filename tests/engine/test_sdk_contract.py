"""Contract tests of the seam to aws-durable-execution-sdk-python (protocol §1): an SDK upgrade
that moves a field, renames a key or changes how a missing token is read fails here first.

The SDK runs for real, in this process: a dispatcher runs ``invoker.run_invocation`` in threads.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import json
import queue
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

import pytest
from aws_durable_execution_sdk_python import __version__ as sdk_version
from aws_durable_execution_sdk_python.exceptions import (
    INVALID_CHECKPOINT_TOKEN_PREFIX,
    BotoClientError,
    CheckpointError,
    DurableApiErrorCategory,
    StepError,
)
from aws_durable_execution_sdk_python.execution import (
    DurableExecutionInvocationInputWithClient,
    InitialExecutionState,
)
from aws_durable_execution_sdk_python.identifier import OperationIdentifier
from aws_durable_execution_sdk_python.lambda_service import (
    CallbackOptions,
    ChainedInvokeOptions,
    CheckpointOutput,
    CheckpointUpdatedExecutionState,
    ContextOptions,
    DurableServiceClient,
    ErrorObject,
    Operation,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StateOutput,
    WaitOptions,
)

import engine
from engine import invoker, machine, speedups
from engine.duties.claim import Ticket, claim_invocation
from engine.duties.stop import stop_execution
from engine.duties.sweep import mark_invocation_lost
from engine.errors import InvalidParameterValueException
from engine.store import ms_to_datetime
from tests.conftest import wait_until
from tests.engine import support
from tests.engine.support import (
    Recorder,
    Register,
    ThreadDispatcher,
    event_types,
    execution_row,
    invocations,
    settled,
    stored_ops,
)
from tests.handlers import engine_sdk

PINNED = "3.0.0"
HANDLERS = "tests.handlers.engine_sdk"
Doc = dict[str, Any]


@pytest.fixture(autouse=True)
def _seams_installed() -> None:
    """The engine runs on the SDK with the seams the worker installs (``engine.speedups``)."""
    speedups.install()


@pytest.fixture
def function(functions: Register) -> Callable[..., str]:
    def register(handler: str, timeout: int = 30) -> str:
        return functions(f"{HANDLERS}.{handler}", timeout=timeout, execution_timeout=600)

    return register


def start(client: engine.LambdaClient, name: str, payload: Any = None) -> str:
    return support.start(client, name, json.dumps(payload) if payload is not None else None)


def normalized(value: Any) -> Any:
    """Drop None values and empty objects: the SDK omits them where the store may keep them."""
    if isinstance(value, dict):
        items = {k: normalized(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


# --- the pinned SDK and its shapes ------------------------------------------------------------


def test_sdk_is_the_pinned_version() -> None:
    assert sdk_version == PINNED
    assert PINNED in speedups.VERIFIED_SDK_VERSIONS  # the seams were derived from and tested on it
    assert importlib.metadata.version("aws-durable-execution-sdk-python") == PINNED


def test_invocation_input_with_client_has_the_fields_the_invoker_fills() -> None:
    fields = {f.name: f for f in dataclasses.fields(DurableExecutionInvocationInputWithClient)}
    assert list(fields) == [
        "durable_execution_arn",
        "checkpoint_token",
        "initial_execution_state",
        "updated_operation_ids",
        "service_client",
    ]
    assert fields["updated_operation_ids"].kw_only
    assert fields["updated_operation_ids"].default_factory() == []  # type: ignore[misc]
    assert DurableExecutionInvocationInputWithClient.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert [f.name for f in dataclasses.fields(InitialExecutionState)] == ["operations", "next_marker"]


def test_invoker_builds_the_event_the_sdk_recognises() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    op = {
        "Id": "e1",
        "Type": "EXECUTION",
        "Status": "STARTED",
        "StartTimestamp": machine.to_ms(now),
        "ExecutionDetails": {"InputPayload": '{"a": 1}'},
    }
    ticket = Ticket(
        execution_id=1,
        arn="arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST/durable-execution/n/e1",
        seq=1,
        request_id="r",
        token="dG9r",
        operations=[op],
        function={"name": "f"},
        started_at=now,
        deadline=now + timedelta(seconds=3),
    )
    event = invoker.build_event(ticket)
    assert isinstance(event, DurableExecutionInvocationInputWithClient)
    assert event.checkpoint_token == "dG9r"
    assert event.initial_execution_state.next_marker == ""
    [loaded] = event.initial_execution_state.operations
    assert loaded.operation_id == ticket.arn.rsplit("/", 1)[1]
    assert loaded.execution_details is not None
    assert loaded.execution_details.input_payload == '{"a": 1}'
    assert loaded.start_timestamp == now
    assert isinstance(event.service_client, invoker.EngineServiceClient)


def test_service_client_protocol_matches_the_engine_client() -> None:
    for method in ("checkpoint", "get_execution_state"):
        theirs = inspect.signature(getattr(DurableServiceClient, method))
        ours = inspect.signature(getattr(invoker.EngineServiceClient, method))
        assert list(ours.parameters) == list(theirs.parameters), method
        assert {n: p.default for n, p in ours.parameters.items()} == {
            n: p.default for n, p in theirs.parameters.items()
        }


def test_checkpoint_and_state_outputs_have_the_fields_the_engine_fills() -> None:
    assert [f.name for f in dataclasses.fields(CheckpointOutput)] == ["checkpoint_token", "new_execution_state"]
    assert [f.name for f in dataclasses.fields(CheckpointUpdatedExecutionState)] == ["operations", "next_marker"]
    assert [f.name for f in dataclasses.fields(StateOutput)] == ["operations", "next_marker"]
    assert CheckpointUpdatedExecutionState().next_marker is None


def _identifier(
    op_id: str, op_type: OperationType, sub_type: str, name: str | None, parent: str | None = None
) -> OperationIdentifier:
    return OperationIdentifier(op_id, sub_type, parent, name, operation_type=op_type)


def test_operation_update_to_dict_has_the_keys_the_machine_reads() -> None:
    ctx = _identifier("ctx", OperationType.CONTEXT, "RunInChildContext", "child")
    step = _identifier("st", OperationType.STEP, "Step", "charge", "ctx")
    poll = _identifier("po", OperationType.STEP, "WaitForCondition", "poll")
    wait = _identifier("wa", OperationType.WAIT, "Wait", "nap")
    callback = _identifier("cb", OperationType.CALLBACK, "Callback", "approve")
    call = _identifier("in", OperationType.CHAINED_INVOKE, "ChainedInvoke", "bill")
    error = ErrorObject("declined", "ValueError", None, ["line"])
    updates = [
        OperationUpdate.create_context_start(ctx),
        OperationUpdate.create_step_start(step),
        OperationUpdate.create_step_retry(step, error, 3),
        OperationUpdate.create_wait_for_condition_retry(poll, '{"n": 1}', 2),
        OperationUpdate.create_wait_start(wait, WaitOptions(wait_seconds=5)),
        OperationUpdate.create_callback(callback, CallbackOptions(timeout_seconds=60, heartbeat_timeout_seconds=10)),
        OperationUpdate.create_invoke_start(call, '{"id": 1}', ChainedInvokeOptions("billing", tenant_id="t-1")),
        OperationUpdate.create_context_succeed(ctx, '"done"', context_options=ContextOptions(replay_children=True)),
    ]
    dicts = [u.to_dict() for u in updates]
    assert dicts == [
        {"Id": "ctx", "Type": "CONTEXT", "Action": "START", "Name": "child", "SubType": "RunInChildContext"},
        {"Id": "st", "Type": "STEP", "Action": "START", "ParentId": "ctx", "Name": "charge", "SubType": "Step"},
        {
            "Id": "st",
            "Type": "STEP",
            "Action": "RETRY",
            "ParentId": "ctx",
            "Name": "charge",
            "SubType": "Step",
            "Error": {"ErrorMessage": "declined", "ErrorType": "ValueError", "StackTrace": ["line"]},
            "StepOptions": {"NextAttemptDelaySeconds": 3},
        },
        {
            "Id": "po",
            "Type": "STEP",
            "Action": "RETRY",
            "Name": "poll",
            "SubType": "WaitForCondition",
            "Payload": '{"n": 1}',
            "StepOptions": {"NextAttemptDelaySeconds": 2},
        },
        {
            "Id": "wa",
            "Type": "WAIT",
            "Action": "START",
            "Name": "nap",
            "SubType": "Wait",
            "WaitOptions": {"WaitSeconds": 5},
        },
        {
            "Id": "cb",
            "Type": "CALLBACK",
            "Action": "START",
            "Name": "approve",
            "SubType": "Callback",
            "CallbackOptions": {"TimeoutSeconds": 60, "HeartbeatTimeoutSeconds": 10},
        },
        {
            "Id": "in",
            "Type": "CHAINED_INVOKE",
            "Action": "START",
            "Name": "bill",
            "SubType": "ChainedInvoke",
            "Payload": '{"id": 1}',
            "ChainedInvokeOptions": {"FunctionName": "billing", "TenantId": "t-1"},
        },
        {
            "Id": "ctx",
            "Type": "CONTEXT",
            "Action": "SUCCEED",
            "Name": "child",
            "SubType": "RunInChildContext",
            "Payload": '"done"',
            "ContextOptions": {"ReplayChildren": True},
        },
    ]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    change = machine.apply_batch({}, dicts, machine.Clock(now), lambda op_id: f"cb-{op_id}")
    assert {op_id: op["Status"] for op_id, op in change.ops.items()} == {
        "ctx": "SUCCEEDED",
        "st": "PENDING",
        "po": "PENDING",
        "wa": "STARTED",
        "cb": "STARTED",
        "in": "STARTED",
    }
    assert change.ops["st"]["StepDetails"]["NextAttemptTimestamp"] == machine.to_ms(now + timedelta(seconds=3))
    assert change.ops["po"]["StepDetails"]["Result"] == '{"n": 1}'
    assert change.ops["ctx"]["ContextDetails"]["ReplayChildren"] is True
    assert change.invokes[0].tenant_id == "t-1"
    assert {kind for kind, _, _ in change.timers} == {"retry", "wait", "callback_timeout", "callback_heartbeat"}


def test_execution_completion_update_is_recognised_by_type_not_id() -> None:
    update = OperationUpdate.create_execution_succeed(payload='"r"').to_dict()
    assert update["Type"] == "EXECUTION"
    assert update["Id"].startswith("execution-result-")
    change = machine.apply_batch({}, [update], machine.Clock(datetime.now(UTC)), str)
    assert change.finish == machine.Finish("SUCCEEDED", result='"r"')
    assert change.ops == {}


# --- stored documents as the SDK reads them ---------------------------------------------------


def _machine_docs() -> list[Doc]:
    """Operation documents of every type and status, as the machine writes them to the store."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    clock = machine.Clock(now)
    error = {"ErrorType": "ValueError", "ErrorMessage": "no", "StackTrace": ["a", "b"]}

    def run(stored: dict[str, Doc], *updates: Doc) -> dict[str, Doc]:
        return machine.apply_batch(stored, list(updates), clock, lambda op_id: "Q2FsbGJhY2s=").ops

    ctx = run({}, {"Id": "ctx", "Type": "CONTEXT", "Action": "START", "Name": "c", "SubType": "Map"})["ctx"]
    docs = [ctx]
    docs += run(
        {},
        {
            "Id": "ctx2",
            "Type": "CONTEXT",
            "Action": "SUCCEED",
            "Payload": '"r"',
            "ContextOptions": {"ReplayChildren": True},
        },
    ).values()
    docs += run({}, {"Id": "ctx3", "Type": "CONTEXT", "Action": "FAIL", "Error": error}).values()
    docs += run(
        {"ctx": ctx}, {"Id": "s1", "Type": "STEP", "Action": "START", "ParentId": "ctx", "Name": "n", "SubType": "Step"}
    ).values()
    docs += run({}, {"Id": "s2", "Type": "STEP", "Action": "SUCCEED", "Payload": '{"t": "s", "v": "x"}'}).values()
    docs += run({}, {"Id": "s3", "Type": "STEP", "Action": "FAIL", "Error": error}).values()
    pending = run(
        {},
        {"Id": "s4", "Type": "STEP", "Action": "RETRY", "Error": error, "StepOptions": {"NextAttemptDelaySeconds": 9}},
    )["s4"]
    docs += [pending, machine.fire_retry(json.loads(json.dumps(pending))).ops["s4"]]
    wait = run({}, {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 5}})["w1"]
    docs += [wait, machine.fire_wait(json.loads(json.dumps(wait)), clock).ops["w1"]]
    cb = run({}, {"Id": "c1", "Type": "CALLBACK", "Action": "START", "CallbackOptions": {"TimeoutSeconds": 5}})["c1"]
    docs += [cb]
    for status in ("SUCCEEDED", "FAILED", "TIMED_OUT"):
        docs += machine.complete_callback(
            json.loads(json.dumps(cb)), clock, status=status, result="raw", error=error
        ).ops.values()
    docs += machine.complete_callback(json.loads(json.dumps(cb)), clock, status="FAILED", error=None).ops.values()
    call = run(
        {}, {"Id": "i1", "Type": "CHAINED_INVOKE", "Action": "START", "ChainedInvokeOptions": {"FunctionName": "f"}}
    )["i1"]
    docs += [call]
    for status in ("SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"):
        docs += machine.complete_chained_invoke(
            json.loads(json.dumps(call)), clock, status=status, result='"x"', error=error
        ).ops.values()
    return docs


@pytest.mark.parametrize("doc", _machine_docs(), ids=lambda d: f"{d['Type']}-{d['Status']}")
def test_machine_docs_round_trip_through_the_sdk_operation(doc: Doc) -> None:
    op = Operation.from_json_dict(doc)
    assert op.operation_id == doc["Id"]
    assert op.operation_type is OperationType(doc["Type"])
    assert op.status is OperationStatus(doc["Status"])
    assert op.start_timestamp == ms_to_datetime(doc["StartTimestamp"])
    assert op.start_timestamp is not None and op.start_timestamp.tzinfo is not None
    assert normalized(op.to_json_dict()) == normalized(doc)


def test_sdk_reads_the_details_the_machine_writes() -> None:
    ops = {(d["Id"], d["Status"]): Operation.from_json_dict(d) for d in _machine_docs()}
    pending = ops["s4", "PENDING"].step_details
    assert pending is not None and pending.attempt == 1 and pending.next_attempt_timestamp is not None
    assert pending.error is not None and pending.error.type == "ValueError" and pending.error.stack_trace == ["a", "b"]
    assert (
        ops["s4", "READY"].step_details is not None and ops["s4", "READY"].step_details.next_attempt_timestamp is None
    )
    assert (
        ops["s2", "SUCCEEDED"].step_details is not None
        and ops["s2", "SUCCEEDED"].step_details.result == '{"t": "s", "v": "x"}'
    )
    wait = ops["w1", "STARTED"].wait_details
    assert wait is not None and wait.scheduled_end_timestamp == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    callback = ops["c1", "SUCCEEDED"].callback_details
    assert callback is not None and callback.callback_id == "Q2FsbGJhY2s=" and callback.result == "raw"
    context = ops["ctx2", "SUCCEEDED"].context_details
    assert context is not None and context.replay_children is True and context.result == '"r"'
    invoke = ops["i1", "TIMED_OUT"].chained_invoke_details
    assert invoke is not None and invoke.error is not None and invoke.error.message == "no"
    assert ops["s1", "STARTED"].parent_id == "ctx"


def test_stored_docs_of_a_real_run_round_trip(
    client: engine.LambdaClient, function: Any, in_process: ThreadDispatcher
) -> None:
    arn = start(client, function("every_kind"))
    settled(arn)
    docs = stored_ops(arn)
    by_name = {doc.get("Name"): doc for doc in docs.values()}
    assert {doc["Type"] for doc in docs.values()} == {
        "EXECUTION",
        "STEP",
        "CONTEXT",
        "CALLBACK",
        "WAIT",
        "CHAINED_INVOKE",
    }
    for doc in docs.values():
        assert normalized(Operation.from_json_dict(doc).to_json_dict()) == normalized(doc), doc["Id"]
    assert by_name["ok"]["StepDetails"]["Attempt"] == 1
    assert json.loads(by_name["ok"]["StepDetails"]["Result"]) == [1, 2]
    assert by_name["bad"]["StepDetails"]["Error"]["ErrorType"] == "ValueError"
    assert by_name["inner"]["ParentId"] == by_name["child"]["Id"]
    assert by_name["missing"]["Status"] == "FAILED"
    assert by_name["missing"]["ChainedInvokeDetails"]["Error"]["ErrorType"] == "ResourceNotFoundException"
    assert by_name["long"]["Status"] == "STARTED"
    assert Operation.from_json_dict(by_name["cb"]).callback_details is not None
    [only] = invocations(arn)
    assert only["outcome"] == "suspended"


def test_handler_receives_the_input_payload_as_its_event(
    client: engine.LambdaClient, function: Any, in_process: ThreadDispatcher
) -> None:
    response = client.invoke(FunctionName=function("echo"), Payload=json.dumps({"k": [1, "two", None]}))
    assert json.loads(response["Payload"].read()) == {"event": {"k": [1, "two", None]}, "replaying": False}


# --- tokens, revocation and completion --------------------------------------------------------


def test_missing_token_in_a_checkpoint_response_ends_the_invocation_pending(
    client: engine.LambdaClient, function: Any, in_process: ThreadDispatcher
) -> None:
    gate = uuid.uuid4().hex
    arn = start(client, function("gated"), {"gate": gate})
    assert engine_sdk.ENTERED[gate].wait(20)
    wait_until(lambda: event_types(client, arn).count("StepStarted") == 2, message="blocker START checkpointed")
    client.stop_durable_execution(DurableExecutionArn=arn)
    engine_sdk.GATES[gate].set()
    in_process.join()
    [invocation] = invocations(arn)
    # The SDK read the token-less answer to the blocker's SUCCEED as revocation: PENDING, nothing more sent.
    assert (invocation["outcome"], invocation["error"]) == ("suspended", None)
    assert gate not in engine_sdk.AFTER_GATE
    blocker = next(op for op in stored_ops(arn).values() if op.get("Name") == "blocker")
    assert blocker["Status"] == "STARTED"
    assert execution_row(arn)["status"] == "STOPPED"


def test_execution_update_closes_the_execution_and_ends_checkpointing(
    client: engine.LambdaClient, function: Any, in_process: ThreadDispatcher
) -> None:
    arn = start(client, function("huge_result", timeout=60))
    row = settled(arn, timeout=60)
    assert row["status"] == "SUCCEEDED"
    assert row["result"] == json.dumps("x" * (engine_sdk.RESPONSE_LIMIT - 20))
    [invocation] = invocations(arn)
    assert invocation["outcome"] == "succeeded"
    assert not any(op["Id"].startswith("execution-result-") for op in stored_ops(arn).values())
    types = event_types(client, arn)
    assert types.count("ExecutionSucceeded") == 1
    # Conformance invariant 6: the invocation's end comes before the execution's.
    assert types[-2:] == ["InvocationCompleted", "ExecutionSucceeded"]


def _claimed(client: engine.LambdaClient, name: str, recorder: Recorder) -> Ticket:
    arn = start(client, name, {"gate": uuid.uuid4().hex})
    ticket = claim_invocation(recorder.invoked[-1])
    assert ticket is not None and ticket.arn == arn
    return ticket


def test_stale_token_is_a_retryable_checkpoint_error(
    client: engine.LambdaClient, function: Any, recorder: Recorder
) -> None:
    ticket = _claimed(client, function("gated"), recorder)
    sdk_client = invoker.EngineServiceClient()
    fresh = sdk_client.checkpoint(ticket.arn, ticket.token, [], None)
    assert fresh.checkpoint_token and fresh.checkpoint_token != ticket.token
    with pytest.raises(CheckpointError, match=f"^{INVALID_CHECKPOINT_TOKEN_PREFIX}$") as raised:
        sdk_client.checkpoint(ticket.arn, ticket.token, [], None)
    assert raised.value.error_category is DurableApiErrorCategory.INVOCATION
    assert raised.value.is_retryable()
    stop_execution(ticket.arn, None)


def test_protocol_violation_is_a_non_retryable_checkpoint_error(
    client: engine.LambdaClient, function: Any, recorder: Recorder
) -> None:
    ticket = _claimed(client, function("gated"), recorder)
    bad = OperationUpdate.create_wait_start(_identifier("w", OperationType.WAIT, "Wait", None), WaitOptions(0))
    with pytest.raises(CheckpointError, match=r"WaitOptions\.WaitSeconds must be at least 1") as raised:
        invoker.EngineServiceClient().checkpoint(ticket.arn, ticket.token, [bad], None)
    assert raised.value.error_category is DurableApiErrorCategory.EXECUTION
    assert not raised.value.is_retryable()
    assert stored_ops(ticket.arn).keys() == {ticket.arn.rsplit("/", 1)[1]}
    stop_execution(ticket.arn, None)


def test_api_stale_token_error_is_classified_retryable_by_the_sdk() -> None:
    error = InvalidParameterValueException("Invalid checkpoint token")
    category = BotoClientError._classify_error_category(error.response["Error"], error.response["ResponseMetadata"])
    assert category is DurableApiErrorCategory.INVOCATION
    other = InvalidParameterValueException("WaitOptions.WaitSeconds must be at least 1.")
    category = BotoClientError._classify_error_category(other.response["Error"], other.response["ResponseMetadata"])
    assert category is DurableApiErrorCategory.EXECUTION


def test_protocol_violation_fails_the_execution_without_retry(
    client: engine.LambdaClient, function: Any, in_process: ThreadDispatcher
) -> None:
    arn = start(client, function("oversized_invoke"))
    row = settled(arn)
    assert row["status"] == "FAILED"
    assert row["error"]["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.CheckpointError"
    assert row["error"]["ErrorMessage"] == "Chained-invoke input is limited to 1 MiB."
    assert len(invocations(arn)) == 1


def test_late_checkpoint_of_a_fenced_invocation_makes_the_handler_raise(
    client: engine.LambdaClient, function: Any, recorder: Recorder
) -> None:
    ticket = _claimed(client, function("gated"), recorder)
    gate = json.loads(execution_row(ticket.arn)["input"])["gate"]
    outcome: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: outcome.update(zip(("output", "raised"), invoker.call_handler(ticket), strict=True))
    )
    runner.start()
    assert engine_sdk.ENTERED[gate].wait(20)
    wait_until(lambda: event_types(client, ticket.arn).count("StepStarted") == 2, message="blocker START checkpointed")
    assert mark_invocation_lost(ticket.execution_id, ticket.seq, "crashed") == 1
    engine_sdk.GATES[gate].set()
    runner.join(30)
    assert outcome["output"] is None
    assert outcome["raised"]["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.CheckpointError"
    assert outcome["raised"]["ErrorMessage"] == "Invalid checkpoint token"
    stop_execution(ticket.arn, None)


# --- error naming -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("v"),
        KeyError("k"),
        engine_sdk.CustomError("c"),
        engine_sdk.Outer.NestedError("n"),
        StepError("s", "ValueError"),
        CheckpointError("t"),
    ],
    ids=lambda e: type(e).__qualname__,
)
def test_invoker_names_errors_like_the_sdk(exc: Exception) -> None:
    assert invoker.error_object(exc)["ErrorType"] == ErrorObject.from_exception(exc).type


def test_error_types_on_the_wire_are_qualified_class_names(
    client: engine.LambdaClient, function: Any, in_process: ThreadDispatcher
) -> None:
    expected = {
        "raises_value_error": ("ValueError", "bad input"),
        "raises_custom": ("tests.handlers.engine_sdk.CustomError", "custom failure"),
        "step_fails": ("aws_durable_execution_sdk_python.exceptions.StepError", "card declined"),
    }
    arns = {handler: start(client, function(handler)) for handler in expected}
    for handler, arn in arns.items():
        row = settled(arn)
        assert row["status"] == "FAILED", handler
        assert (row["error"]["ErrorType"], row["error"]["ErrorMessage"]) == expected[handler]
    events = client.get_durable_execution_history(DurableExecutionArn=arns["step_fails"], IncludeExecutionData=True)[
        "Events"
    ]
    [failed] = [e for e in events if e["EventType"] == "StepFailed"]
    assert failed["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] == "ValueError"


def test_journal_alone_does_not_make_the_sdk_copy_operation_maps():
    from aws_durable_execution_sdk_python import plugin as sdk_plugin

    from engine import journal

    assert isinstance(sdk_plugin.PluginExecutor.__dict__["has_plugins"], property)
    assert sdk_plugin.PluginExecutor([journal.plugin_factory]).has_plugins is False

    class OtherFactory:
        def create_plugin(self, info):
            return sdk_plugin.DurableInstrumentationPlugin()

    assert sdk_plugin.PluginExecutor([journal.plugin_factory, OtherFactory()]).has_plugins is True
    # The body hooks the journal relies on are dispatched from the factory list, not has_plugins.
    assert "_plugin_factories" in sdk_plugin.PluginExecutor.execute_plugins.__code__.co_names


@pytest.mark.parametrize("doc", _machine_docs(), ids=lambda d: f"{d['Type']}-{d['Status']}")
def test_operation_from_doc_is_the_sdk_conversion_without_the_copy(doc: Doc) -> None:
    before = json.loads(json.dumps(doc))
    ours, theirs = speedups.operation_from_doc(doc), Operation.from_json_dict(doc)
    assert ours == theirs
    assert vars(ours) == vars(theirs) and list(vars(ours)) == list(vars(theirs))
    assert type(ours) is Operation and repr(ours) == repr(theirs) and ours.to_json_dict() == theirs.to_json_dict()
    assert doc == before  # the document is not modified


def test_operation_from_doc_may_fill_the_operation_dataclass_directly() -> None:
    # Filling __dict__ makes what __init__ makes only for a plain frozen dataclass: no
    # __post_init__, no slots, no field computed by __init__, and the fields in this order.
    params = Operation.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen and params.init
    assert not hasattr(Operation, "__post_init__") and "__slots__" not in Operation.__dict__
    assert [f.name for f in dataclasses.fields(Operation)] == [
        "operation_id",
        "operation_type",
        "status",
        "parent_id",
        "name",
        "start_timestamp",
        "end_timestamp",
        "sub_type",
        "execution_details",
        "context_details",
        "step_details",
        "wait_details",
        "callback_details",
        "chained_invoke_details",
    ]
    assert all(f.init and f.default_factory is dataclasses.MISSING for f in dataclasses.fields(Operation))


@pytest.mark.parametrize(
    "doc",
    [
        {"Id": "x", "Type": "NOPE", "Status": "STARTED"},
        {"Id": "x", "Type": "STEP", "Status": "NOPE"},
        {"Id": "x", "Type": ["STEP"], "Status": "STARTED"},
        {"Type": "STEP", "Status": "STARTED"},
        {"Id": "x", "Type": "STEP", "Status": "STARTED", "StartTimestamp": 0, "StepDetails": {}},
    ],
    ids=["type", "status", "unhashable", "no-id", "falsy"],
)
def test_operation_from_doc_answers_odd_documents_as_the_sdk_does(doc: Doc) -> None:
    try:
        theirs: Any = Operation.from_json_dict(doc)
    except Exception as exc:  # the SDK's own error is the expected answer
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            speedups.operation_from_doc(doc)
    else:
        assert vars(speedups.operation_from_doc(doc)) == vars(theirs)


def test_journal_alone_does_not_make_the_sdk_snapshot_operations_per_invocation():
    from aws_durable_execution_sdk_python import plugin as sdk_plugin

    from engine import journal

    ops = {doc["Id"]: Operation.from_json_dict(doc) for doc in _machine_docs()[:3]}
    only_journal = sdk_plugin.PluginExecutor([journal.plugin_factory])
    assert only_journal._snapshot_operation_infos(lambda: ops) == {}

    class OtherFactory:
        def create_plugin(self, info):
            return sdk_plugin.DurableInstrumentationPlugin()

    with_other = sdk_plugin.PluginExecutor([journal.plugin_factory, OtherFactory()])
    assert set(with_other._snapshot_operation_infos(lambda: ops)) == set(ops)
    # The start and end hooks build their infos through this one method.
    for hook in (sdk_plugin.PluginExecutor.on_invocation_start, sdk_plugin.PluginExecutor.on_invocation_end):
        assert "_snapshot_operation_infos" in hook.__code__.co_names


def test_a_blocked_caller_batch_is_sent_without_the_idle_wait_unless_branches_run():
    from concurrent.futures import ThreadPoolExecutor

    from aws_durable_execution_sdk_python import plugin as sdk_plugin
    from aws_durable_execution_sdk_python import state as sdk_state
    from aws_durable_execution_sdk_python.threading import CompletionEvent

    assert sdk_state._BLOCKED_CALLER_WAIT_SECONDS == 0.001
    assert sdk_state.ExecutionState._read_timeout is speedups._read_timeout_without_idle_wait
    assert list(inspect.signature(speedups._sdk_read_timeout).parameters) == ["self", "batch", "now", "deadline"]
    # The collector asks _read_timeout before every read of the queue and stops at <= 0.
    assert "_read_timeout" in sdk_state.ExecutionState._collect_checkpoint_batch.__code__.co_names

    state = sdk_state.ExecutionState("arn", "token", {}, invoker.EngineServiceClient(), sdk_plugin.PluginExecutor([]))
    assert type(state._checkpoint_queue) is queue.Queue  # FIFO: what was queued before is in the batch
    batch = sdk_state._BatchAccumulator(sdk_state.CheckpointBatcherConfig())
    batch.add(sdk_state.QueuedOperation(None, None))
    assert state._read_timeout(batch, 0.0, 1.0) == sdk_state._STOP_SIGNAL_POLL_SECONDS  # no blocked caller: SDK's
    batch.add(sdk_state.QueuedOperation(None, CompletionEvent()))
    assert batch.has_blocked_caller
    assert state._read_timeout(batch, 0.0, 1.0) == 0  # the batch is sent: nothing else can arrive
    with ThreadPoolExecutor(max_workers=1) as pool:
        state.register_branch_pool(pool)
        assert state._read_timeout(batch, 0.0, 1.0) == sdk_state._BLOCKED_CALLER_WAIT_SECONDS


def test_has_plugins_may_be_kept_on_the_executor():
    # The answer is computed once per executor: the SDK sets the factory list only in __init__.
    from aws_durable_execution_sdk_python import plugin as sdk_plugin

    from engine import journal

    source = inspect.getsource(sdk_plugin.PluginExecutor)
    assert source.count("self._plugin_factories =") == 1
    assert "self._plugin_factories =" in inspect.getsource(sdk_plugin.PluginExecutor.__init__)
    executor = sdk_plugin.PluginExecutor([journal.plugin_factory])
    assert (executor.has_plugins, executor.has_plugins) == (False, False)
    assert sdk_plugin.PluginExecutor([]).has_plugins is False


# --- engine.speedups: the ordered lock ------------------------------------------------------


def test_a_free_ordered_lock_is_taken_without_a_new_event():
    from aws_durable_execution_sdk_python import threading as sdk_threading

    assert sdk_threading.OrderedLock.acquire is speedups._acquire_free_lock_at_once
    # The SDK's acquire: one Event per caller, set at once when it is alone in the queue; release
    # pops the caller's entry and sets the next one's; an exit with an error sets them all.
    acquire, release = speedups._sdk_ordered_lock_acquire, sdk_threading.OrderedLock.release
    assert {"Event", "_waiters", "_is_broken", "_lock"} <= set(acquire.__code__.co_names)
    assert {"popleft", "set", "_waiters"} <= set(release.__code__.co_names)
    assert ".clear()" not in inspect.getsource(sdk_threading)  # a queued event is never cleared
    lock = sdk_threading.OrderedLock()
    assert lock.acquire() is True
    assert list(lock._waiters) == [speedups._GRANTED] and speedups._GRANTED.is_set()
    lock.release()
    assert not lock._waiters


@pytest.mark.parametrize("seam", [True, False], ids=["seam", "sdk"])
def test_ordered_lock_keeps_the_sdk_order_and_its_broken_state(seam: bool, monkeypatch: pytest.MonkeyPatch):
    from aws_durable_execution_sdk_python import threading as sdk_threading
    from aws_durable_execution_sdk_python.exceptions import OrderedLockError

    if not seam:
        monkeypatch.setattr(sdk_threading.OrderedLock, "acquire", speedups._sdk_ordered_lock_acquire)
    lock, order, ready = sdk_threading.OrderedLock(), [], threading.Barrier(2)

    def take(n: int) -> None:
        with lock:
            order.append(n)

    lock.acquire()
    threads = []
    for n in range(5):  # queue them one after the other behind the holder
        threads.append(threading.Thread(target=take, args=(n,)))
        threads[-1].start()
        wait_until(lambda n=n: len(lock._waiters) == n + 2, message="queued")
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2, 3, 4] and not lock._waiters

    errors: list[BaseException] = []

    def queued() -> None:
        ready.wait()
        try:
            lock.acquire()
        except OrderedLockError as exc:
            errors.append(exc)

    waiter = threading.Thread(target=queued)
    waiter.start()
    with pytest.raises(ValueError), lock:
        ready.wait()
        wait_until(lambda: len(lock._waiters) == 2, message="queued")
        raise ValueError("boom")
    waiter.join(10)
    assert [type(e) for e in errors] == [OrderedLockError]
    with pytest.raises(OrderedLockError):
        lock.acquire()  # a broken lock stays broken
    assert len(lock._waiters) == 1  # the SDK leaves the failed waiter's entry queued


def test_ordered_counter_counts_every_increment_once_under_contention():
    from aws_durable_execution_sdk_python.threading import OrderedCounter

    counter, seen = OrderedCounter(), []
    threads = [threading.Thread(target=lambda: seen.extend(counter.increment() for _ in range(500))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(seen) == list(range(1, 2001)) and counter.get_current() == 2000


# --- engine.speedups: decoding step results ------------------------------------------------


def _serdes_values() -> list[Any]:
    from decimal import Decimal

    from aws_durable_execution_sdk_python.concurrency.models import BatchResult

    aware = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    nested = {"a": [1, 2.5, True, None, "s"], "b": {"c": (1, "x"), "d": b"\x00\xff"}, "e": []}
    return [
        None,
        "plain",
        7,
        2**80,
        -0.0,
        [1, "two", None],
        {},
        {"t": "s", "v": "looks like an envelope"},
        {"t": 1, "v": 2},
        nested,
        (1, (2, [3])),
        [b"bytes", bytearray(b"ba"), uuid.UUID(int=5), Decimal("1.10"), aware, datetime(2026, 1, 2), aware.date()],
        {"items": [{"sku": "sku-42", "qty": 2}], "total": 99.5, "ok": False, "n": 2**70},
        BatchResult.from_dict({"all": [], "completionReason": "ALL_COMPLETED"}),
    ]


def _typed(value: Any) -> Any:
    """The value with every node's type: ``1 == True`` and ``[1] == (1,)`` must not hide a change."""
    if isinstance(value, dict):
        return ("dict", {k: _typed(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_typed(v) for v in value])
    return (type(value).__name__, repr(value))


@pytest.fixture
def sdk_decoding(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], Any]], Any]:
    """Run a call with the SDK's own ``deserialize`` in place of the seam."""
    from aws_durable_execution_sdk_python import serdes as sdk_serdes

    def run(call: Callable[[], Any]) -> Any:
        with monkeypatch.context() as patched:
            patched.setattr(sdk_serdes.ExtendedTypeSerDes, "deserialize", speedups._sdk_extended_deserialize)
            return call()

    return run


@pytest.mark.parametrize("value", _serdes_values(), ids=lambda v: type(v).__name__)
def test_step_results_decode_as_the_sdk_decodes_them(value: Any, sdk_decoding: Callable[..., Any]) -> None:
    from aws_durable_execution_sdk_python import serdes as sdk_serdes

    data = sdk_serdes.serialize(None, value, "op", "arn")
    ours = sdk_serdes.deserialize(None, data, "op", "arn")
    theirs = sdk_decoding(lambda: sdk_serdes.deserialize(None, data, "op", "arn"))
    assert _typed(ours) == _typed(theirs)


@pytest.mark.parametrize(
    "data",
    [
        '{"t": "zz", "v": 1}',
        '{"t": "m", "v": {"a": {"t": "zz", "v": 1}}}',
        '{"t": "l", "v": {"a": 1}}',
        '{"t": "m", "v": [1]}',
        '{"t": "t", "v": {"a": 1}}',
        '{"t": "m", "v": {"a": {"t": ["m"], "v": 1}}}',
        '{"t": "m", "v": {"a": {"t": "i", "v": "x"}}}',
        '{"t": "l", "v": [{"t": "B", "v": 5}]}',
        '{"t": "br", "v": []}',
        '{"t": "m", "v": {"a": {"t": "n", "v": 5}}}',
        '{"t": "l", "v": [1, "bare", {"t": "i", "v": 2}]}',
        '{"t": "m", "v": {"a": {"t": "s", "v": "x", "extra": 1}}}',
        '{"t": "m", "v": {"a": {"t": "f", "v": 1}, "b": {"t": "i", "v": true}, "c": {"t": "s", "v": 3}}}',
        '{"t": "m", "v": {}, "x": 1}',
        '{"t": "m", "v": {"a": {"t": "b", "v": 0}}}',
        "[1, 2]",
        "not json",
    ],
)
def test_odd_and_malformed_results_decode_as_the_sdk_decodes_them(data: str, sdk_decoding: Callable[..., Any]) -> None:
    from aws_durable_execution_sdk_python import serdes as sdk_serdes

    def outcome() -> tuple[str, str]:
        try:
            return "value", repr(sdk_serdes.deserialize(None, data, "op", "arn"))
        except Exception as exc:  # the SDK's own error is the expected answer
            return type(exc).__qualname__, str(exc)

    assert outcome() == sdk_decoding(outcome)


# --- engine.speedups: encoding step results ------------------------------------------------


class _Level(IntEnum):
    HIGH = 2


class _Text(str):
    pass


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"down": [value]}
    return value


def _encoding_values() -> list[Any]:
    payload = {"order": 1, "items": [{"sku": "a", "qty": 2}], "total": 9.5, "ok": True, "note": None}
    return [
        *_serdes_values(),
        payload,
        [payload, payload],
        [[1, 2], [3, None]],  # all primitives: the SDK's plain-JSON path
        {"nan": float("nan"), "inf": float("-inf"), "big": 2**70, "neg": -0.0},
        {"ünï": "cødé ✓", "": "empty key"},
        {1: "an int key"},
        {"level": _Level.HIGH},
        {"text": _Text("a str subclass")},
        {"tuple": (1, 2)},
        _deep(50),
        _deep(5000),  # too deep for either encoder
        {"object": object()},
    ]


@pytest.mark.parametrize("value", _encoding_values(), ids=lambda v: type(v).__name__)
def test_step_results_encode_as_the_sdk_encodes_them(value: Any) -> None:
    from aws_durable_execution_sdk_python import serdes as sdk_serdes

    serdes = sdk_serdes.EXTENDED_TYPES_SERDES

    def outcome(serialize: Callable[[Any], str]) -> tuple[str, str]:
        try:
            return "text", serialize(value)
        except Exception as exc:  # the SDK's own error is the expected answer
            return type(exc).__qualname__, str(exc)

    ours = outcome(serdes.serialize)
    assert ours == outcome(lambda v: speedups._sdk_extended_serialize(serdes, v))


def test_the_one_pass_seams_are_installed_and_use_the_sdk_tags():
    from aws_durable_execution_sdk_python import serdes as sdk_serdes

    assert sdk_serdes.ExtendedTypeSerDes.serialize is speedups._serialize_plain_json_in_one_pass
    assert sdk_serdes.ExtendedTypeSerDes.deserialize is speedups._deserialize_plain_json_in_one_pass
    for value in ("s", 1, 1.5, True, None):
        assert speedups._PLAIN_TAGS[type(value)] == sdk_serdes.TYPE_CODEC.encode(value).tag.value
    assert sdk_serdes.TYPE_CODEC.encode({}).tag.value == speedups._DICT_TAG
    assert sdk_serdes.TYPE_CODEC.encode([]).tag.value == speedups._LIST_TAG
