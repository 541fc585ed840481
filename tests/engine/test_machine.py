"""Unit tests of the checkpoint state machine (protocol §2.3-2.4): pure Python, no database."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import machine
from engine.errors import InvalidCheckpointError
from engine.machine import Clock, Transition, apply_batch, to_ms

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW_MS = to_ms(NOW)
Doc = dict[str, Any]


def at(seconds: float = 0, scale: float = 1.0) -> Clock:
    return Clock(NOW + timedelta(seconds=seconds), scale)


def mint(op_id: str) -> str:
    return f"cb-{op_id}"


class Ops:
    """The stored operations of one execution, advanced batch by batch like the service does."""

    def __init__(self, *docs: Doc) -> None:
        self.docs: dict[str, Doc] = {doc["Id"]: doc for doc in docs}

    def apply(self, *updates: Doc, clock: Clock | None = None) -> Transition:
        change = apply_batch(self.docs, list(updates), clock or at(), mint)
        self.docs.update(change.ops)
        return change

    def service(self, change: Transition) -> Transition:
        self.docs.update(change.ops)
        return change

    def __getitem__(self, op_id: str) -> Doc:
        return self.docs[op_id]


def update(op_type: str, action: str, op_id: str, **fields: Any) -> Doc:
    return {"Id": op_id, "Type": op_type, "Action": action, **fields}


def step(action: str, op_id: str = "s1", **fields: Any) -> Doc:
    return update("STEP", action, op_id, **{"Name": "charge", "SubType": "Step", **fields})


def wait(action: str, op_id: str = "w1", **fields: Any) -> Doc:
    return update("WAIT", action, op_id, **{"SubType": "Wait", **fields})


def callback(op_id: str = "c1", **fields: Any) -> Doc:
    return update("CALLBACK", "START", op_id, **{"Name": "approval", "SubType": "Callback", **fields})


def context(action: str, op_id: str = "x1", **fields: Any) -> Doc:
    return update("CONTEXT", action, op_id, **{"Name": "child", "SubType": "RunInChildContext", **fields})


def invoke(op_id: str = "i1", **fields: Any) -> Doc:
    options = fields.pop("ChainedInvokeOptions", {"FunctionName": "billing"})
    return update(
        "CHAINED_INVOKE", "START", op_id, **{"SubType": "ChainedInvoke", "ChainedInvokeOptions": options, **fields}
    )


def types(change: Transition) -> list[str]:
    return [event["EventType"] for event in change.events]


def refused(*updates: Doc, stored: tuple[Doc, ...] = (), match: str) -> None:
    with pytest.raises(InvalidCheckpointError, match=match):
        Ops(*stored).apply(*updates)


ERROR = {"ErrorType": "ValueError", "ErrorMessage": "card declined"}


# --- STEP -------------------------------------------------------------------------------------


def test_step_start_creates_started_op_with_attempt_zero() -> None:
    change = Ops().apply(step("START"))
    assert change.ops["s1"] == {
        "Id": "s1",
        "Type": "STEP",
        "Status": "STARTED",
        "StartTimestamp": NOW_MS,
        "Name": "charge",
        "SubType": "Step",
        "StepDetails": {"Attempt": 0},
    }
    assert change.events == [
        {"EventType": "StepStarted", "Id": "s1", "Name": "charge", "SubType": "Step", "StepStartedDetails": {}}
    ]
    assert change.touched == ["s1"]


def test_step_succeed_stores_result_and_counts_the_attempt() -> None:
    ops = Ops()
    ops.apply(step("START"))
    change = ops.apply(step("SUCCEED", Payload='{"ok": 1}'), clock=at(2))
    assert ops["s1"]["Status"] == "SUCCEEDED"
    assert ops["s1"]["StepDetails"] == {"Attempt": 1, "Result": '{"ok": 1}'}
    assert ops["s1"]["StartTimestamp"] == NOW_MS
    assert ops["s1"]["EndTimestamp"] == NOW_MS + 2000
    assert change.events[0]["StepSucceededDetails"] == {
        "Result": {"Payload": '{"ok": 1}', "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 1},
    }
    assert change.cancel_timers == [("retry", "s1")]


def test_step_start_and_succeed_in_one_batch_give_both_events() -> None:
    change = Ops().apply(step("START"), step("SUCCEED", Payload="1"))
    assert types(change) == ["StepStarted", "StepSucceeded"]
    assert change.ops["s1"]["Status"] == "SUCCEEDED"
    assert change.ops["s1"]["StepDetails"]["Attempt"] == 1
    assert change.touched == ["s1"]


def test_step_succeed_without_a_start_creates_the_op() -> None:
    change = Ops().apply(step("SUCCEED", Payload="7"))
    assert change.ops["s1"]["Status"] == "SUCCEEDED"
    assert change.ops["s1"]["StartTimestamp"] == NOW_MS
    assert types(change) == ["StepSucceeded"]


def test_step_fail_stores_error_and_counts_the_attempt() -> None:
    ops = Ops()
    ops.apply(step("START"))
    change = ops.apply(step("FAIL", Error=ERROR))
    assert ops["s1"]["Status"] == "FAILED"
    assert ops["s1"]["StepDetails"] == {"Attempt": 1, "Error": ERROR}
    assert "EndTimestamp" in ops["s1"]
    assert change.events[0]["StepFailedDetails"] == {
        "Error": {"Payload": ERROR, "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 1},
    }


def test_step_retry_with_error_schedules_the_next_attempt() -> None:
    ops = Ops()
    ops.apply(step("START"))
    change = ops.apply(step("RETRY", Error=ERROR, StepOptions={"NextAttemptDelaySeconds": 5}))
    due = NOW + timedelta(seconds=5)
    assert ops["s1"]["Status"] == "PENDING"
    assert ops["s1"]["StepDetails"] == {"Attempt": 1, "Error": ERROR, "NextAttemptTimestamp": to_ms(due)}
    assert "EndTimestamp" not in ops["s1"]
    assert change.timers == [("retry", "s1", due)]
    assert types(change) == ["StepFailed"]
    assert change.events[0]["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 5}


def test_step_retry_delay_follows_the_time_scale() -> None:
    change = Ops().apply(step("RETRY", Error=ERROR, StepOptions={"NextAttemptDelaySeconds": 100}), clock=at(scale=0.01))
    assert change.timers == [("retry", "s1", NOW + timedelta(seconds=1))]
    assert change.events[0]["StepFailedDetails"]["RetryDetails"]["NextAttemptDelaySeconds"] == 100


def test_step_retry_with_payload_records_state_as_step_succeeded() -> None:
    ops = Ops()
    ops.apply(step("START", SubType="WaitForCondition"))
    change = ops.apply(
        step("RETRY", SubType="WaitForCondition", Payload='{"n": 1}', StepOptions={"NextAttemptDelaySeconds": 2})
    )
    assert ops["s1"]["Status"] == "PENDING"
    assert ops["s1"]["StepDetails"]["Result"] == '{"n": 1}'
    assert "Error" not in ops["s1"]["StepDetails"]
    assert types(change) == ["StepSucceeded"]
    assert change.events[0]["StepSucceededDetails"] == {
        "Result": {"Payload": '{"n": 1}', "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 2},
    }


def test_fire_retry_moves_pending_step_to_ready_silently() -> None:
    ops = Ops()
    ops.apply(step("RETRY", Error=ERROR, StepOptions={"NextAttemptDelaySeconds": 1}))
    change = ops.service(machine.fire_retry(copy.deepcopy(ops["s1"])))
    assert ops["s1"]["Status"] == "READY"
    assert ops["s1"]["StepDetails"] == {"Attempt": 1, "Error": ERROR}
    assert change.events == []
    assert change.touched == ["s1"]


def test_fire_retry_ignores_a_step_that_is_not_pending() -> None:
    ops = Ops()
    ops.apply(step("SUCCEED", Payload="1"))
    change = machine.fire_retry(copy.deepcopy(ops["s1"]))
    assert change.touched == []
    assert change.ops == {}


def test_attempt_counts_every_retry_and_the_final_outcome() -> None:
    ops = Ops()
    for attempt in (1, 2):
        ops.apply(step("START"))
        change = ops.apply(step("RETRY", Error=ERROR, StepOptions={"NextAttemptDelaySeconds": 1}))
        assert change.events[0]["StepFailedDetails"]["RetryDetails"]["CurrentAttempt"] == attempt
        ops.service(machine.fire_retry(copy.deepcopy(ops["s1"])))
    ops.apply(step("START"))
    assert ops["s1"]["StepDetails"]["Attempt"] == 2
    change = ops.apply(step("SUCCEED", Payload='"done"'))
    assert ops["s1"]["StepDetails"]["Attempt"] == 3
    assert change.events[0]["StepSucceededDetails"]["RetryDetails"] == {"CurrentAttempt": 3}


def test_step_start_from_ready_keeps_the_wait_for_condition_state() -> None:
    ops = Ops()
    ops.apply(step("RETRY", Payload='{"n": 4}', StepOptions={"NextAttemptDelaySeconds": 1}))
    ops.service(machine.fire_retry(copy.deepcopy(ops["s1"])))
    ops.apply(step("START"))
    assert ops["s1"]["Status"] == "STARTED"
    assert ops["s1"]["StepDetails"] == {"Attempt": 1, "Result": '{"n": 4}'}


@pytest.mark.parametrize("status", ["STARTED", "PENDING", "SUCCEEDED", "FAILED"])
def test_step_start_is_refused_unless_absent_or_ready(status: str) -> None:
    stored = {
        "Id": "s1",
        "Type": "STEP",
        "Status": status,
        "Name": "charge",
        "SubType": "Step",
        "StepDetails": {"Attempt": 1},
    }
    refused(step("START"), stored=(stored,), match=f"STEP START is not allowed for operation s1 in status {status}")


@pytest.mark.parametrize("action", ["SUCCEED", "FAIL", "RETRY"])
@pytest.mark.parametrize("status", ["PENDING", "SUCCEEDED", "FAILED"])
def test_step_completion_is_refused_unless_absent_started_or_ready(action: str, status: str) -> None:
    stored = {
        "Id": "s1",
        "Type": "STEP",
        "Status": status,
        "Name": "charge",
        "SubType": "Step",
        "StepDetails": {"Attempt": 1},
    }
    fields = {"StepOptions": {"NextAttemptDelaySeconds": 1}, "Error": ERROR} if action == "RETRY" else {}
    refused(
        step(action, **fields),
        stored=(stored,),
        match=f"STEP {action} is not allowed for operation s1 in status {status}",
    )


def test_step_retry_needs_step_options() -> None:
    refused(step("RETRY", Error=ERROR), match=r"RETRY update needs StepOptions\.NextAttemptDelaySeconds")


def test_step_retry_refuses_both_error_and_payload() -> None:
    bad = step("RETRY", Error=ERROR, Payload="1", StepOptions={"NextAttemptDelaySeconds": 1})
    refused(bad, match="either an Error or a Payload, not both")


def test_step_fail_refuses_a_payload() -> None:
    refused(step("FAIL", Error=ERROR, Payload="1"), match="A FAIL update must not carry a Payload")


def test_step_succeed_refuses_an_error() -> None:
    refused(step("SUCCEED", Payload="1", Error=ERROR), match="A SUCCEED update must not carry an Error")


def test_step_cancel_is_not_a_step_action() -> None:
    refused(step("CANCEL"), match="Action CANCEL is not valid for operation type STEP")


# --- WAIT -------------------------------------------------------------------------------------


def test_wait_start_schedules_its_end() -> None:
    change = Ops().apply(wait("START", WaitOptions={"WaitSeconds": 30}))
    due = NOW + timedelta(seconds=30)
    assert change.ops["w1"] == {
        "Id": "w1",
        "Type": "WAIT",
        "Status": "STARTED",
        "StartTimestamp": NOW_MS,
        "SubType": "Wait",
        "WaitDetails": {"ScheduledEndTimestamp": to_ms(due)},
    }
    assert change.timers == [("wait", "w1", due)]
    assert change.events[0]["WaitStartedDetails"] == {"Duration": 30, "ScheduledEndTimestamp": due.isoformat()}


def test_wait_start_is_scaled_but_reports_the_requested_duration() -> None:
    change = Ops().apply(wait("START", WaitOptions={"WaitSeconds": 60}), clock=at(scale=0.5))
    assert change.timers == [("wait", "w1", NOW + timedelta(seconds=30))]
    assert change.events[0]["WaitStartedDetails"]["Duration"] == 60


@pytest.mark.parametrize("options", [None, {}, {"WaitSeconds": 0}, {"WaitSeconds": -5}])
def test_wait_start_needs_at_least_one_second(options: dict[str, Any] | None) -> None:
    refused(wait("START", WaitOptions=options), match=r"WaitOptions\.WaitSeconds must be at least 1")


def test_wait_start_is_refused_for_an_existing_wait() -> None:
    ops = Ops()
    ops.apply(wait("START", WaitOptions={"WaitSeconds": 1}))
    with pytest.raises(InvalidCheckpointError, match="WAIT START is not allowed for operation w1 in status STARTED"):
        ops.apply(wait("START", WaitOptions={"WaitSeconds": 1}))


def test_fire_wait_succeeds_the_wait_with_its_duration() -> None:
    ops = Ops()
    ops.apply(wait("START", WaitOptions={"WaitSeconds": 60}), clock=at(scale=0.5))
    change = ops.service(machine.fire_wait(copy.deepcopy(ops["w1"]), at(30, scale=0.5)))
    assert ops["w1"]["Status"] == "SUCCEEDED"
    assert ops["w1"]["EndTimestamp"] == NOW_MS + 30_000
    assert change.events == [
        {"EventType": "WaitSucceeded", "Id": "w1", "SubType": "Wait", "WaitSucceededDetails": {"Duration": 60}}
    ]


def test_fire_wait_ignores_a_wait_that_is_not_started() -> None:
    ops = Ops()
    ops.apply(wait("START", WaitOptions={"WaitSeconds": 1}))
    ops.apply(wait("CANCEL"))
    assert machine.fire_wait(copy.deepcopy(ops["w1"]), at(5)).touched == []


def test_wait_cancel_cancels_a_started_wait_and_its_timer() -> None:
    ops = Ops()
    ops.apply(wait("START", WaitOptions={"WaitSeconds": 10}))
    change = ops.apply(wait("CANCEL"), clock=at(3))
    assert ops["w1"]["Status"] == "CANCELLED"
    assert ops["w1"]["EndTimestamp"] == NOW_MS + 3000
    assert change.cancel_timers == [("wait", "w1")]
    assert types(change) == ["WaitCancelled"]


def test_wait_cancel_is_refused_for_an_absent_wait() -> None:
    refused(wait("CANCEL"), match="WAIT CANCEL is not allowed for operation w1 in status absent")


def test_wait_cancel_is_refused_after_the_wait_ended() -> None:
    ops = Ops()
    ops.apply(wait("START", WaitOptions={"WaitSeconds": 1}))
    ops.service(machine.fire_wait(copy.deepcopy(ops["w1"]), at(1)))
    with pytest.raises(InvalidCheckpointError, match="WAIT CANCEL is not allowed for operation w1 in status SUCCEEDED"):
        ops.apply(wait("CANCEL"))


@pytest.mark.parametrize("action", ["SUCCEED", "FAIL", "RETRY"])
def test_wait_accepts_only_start_and_cancel(action: str) -> None:
    refused(wait(action), match=f"Action {action} is not valid for operation type WAIT")


# --- CALLBACK ---------------------------------------------------------------------------------


def test_callback_start_mints_an_id_and_arms_both_timers() -> None:
    change = Ops().apply(callback(CallbackOptions={"TimeoutSeconds": 300, "HeartbeatTimeoutSeconds": 60}))
    assert change.ops["c1"]["Status"] == "STARTED"
    assert change.ops["c1"]["CallbackDetails"] == {"CallbackId": "cb-c1"}
    assert change.timers == [
        ("callback_timeout", "c1", NOW + timedelta(seconds=300)),
        ("callback_heartbeat", "c1", NOW + timedelta(seconds=60)),
    ]
    assert change.events[0]["CallbackStartedDetails"] == {"CallbackId": "cb-c1", "Timeout": 300, "HeartbeatTimeout": 60}


def test_callback_start_without_timeouts_arms_no_timer() -> None:
    change = Ops().apply(callback(CallbackOptions={"TimeoutSeconds": 0, "HeartbeatTimeoutSeconds": 0}))
    assert change.timers == []
    assert change.events[0]["CallbackStartedDetails"] == {"CallbackId": "cb-c1"}


def test_callback_timers_follow_the_time_scale() -> None:
    change = Ops().apply(callback(CallbackOptions={"TimeoutSeconds": 100}), clock=at(scale=0.1))
    assert change.timers == [("callback_timeout", "c1", NOW + timedelta(seconds=10))]


def test_callback_start_is_refused_for_an_existing_callback() -> None:
    ops = Ops()
    ops.apply(callback())
    with pytest.raises(
        InvalidCheckpointError, match="CALLBACK START is not allowed for operation c1 in status STARTED"
    ):
        ops.apply(callback())


@pytest.mark.parametrize("action", ["SUCCEED", "FAIL", "RETRY", "CANCEL"])
def test_callback_accepts_only_start(action: str) -> None:
    refused(update("CALLBACK", action, "c1"), match=f"Action {action} is not valid for operation type CALLBACK")


@pytest.mark.parametrize(
    ("status", "event_type", "detail"),
    [
        ("SUCCEEDED", "CallbackSucceeded", {"Result": {"Payload": "yes", "Truncated": False}}),
        ("FAILED", "CallbackFailed", {"Error": {"Payload": ERROR, "Truncated": False}}),
        ("TIMED_OUT", "CallbackTimedOut", {"Error": {"Payload": machine.CALLBACK_TIMEOUT_ERROR, "Truncated": False}}),
    ],
)
def test_complete_callback_closes_it_and_cancels_its_timers(status: str, event_type: str, detail: Doc) -> None:
    ops = Ops()
    ops.apply(callback(CallbackOptions={"TimeoutSeconds": 9}))
    error = ERROR if status == "FAILED" else machine.CALLBACK_TIMEOUT_ERROR
    change = ops.service(
        machine.complete_callback(copy.deepcopy(ops["c1"]), at(4), status=status, result="yes", error=error)
    )
    assert ops["c1"]["Status"] == status
    assert ops["c1"]["EndTimestamp"] == NOW_MS + 4000
    assert ops["c1"]["CallbackDetails"]["CallbackId"] == "cb-c1"
    assert change.events[0]["EventType"] == event_type
    assert change.events[0][f"{event_type}Details"] == detail
    assert change.cancel_timers == [("callback_timeout", "c1"), ("callback_heartbeat", "c1")]


# --- CONTEXT ----------------------------------------------------------------------------------


def test_context_start_creates_a_started_context() -> None:
    change = Ops().apply(context("START"))
    assert change.ops["x1"]["Status"] == "STARTED"
    assert types(change) == ["ContextStarted"]


def test_context_succeed_remembers_replay_children() -> None:
    ops = Ops()
    ops.apply(context("START"))
    change = ops.apply(context("SUCCEED", Payload='"summary"', ContextOptions={"ReplayChildren": True}))
    assert ops["x1"]["Status"] == "SUCCEEDED"
    assert ops["x1"]["ContextDetails"] == {"ReplayChildren": True, "Result": '"summary"'}
    assert change.events[0]["ContextSucceededDetails"] == {"Result": {"Payload": '"summary"', "Truncated": False}}


def test_context_succeed_without_replay_children_leaves_it_unset() -> None:
    ops = Ops()
    ops.apply(context("START"))
    ops.apply(context("SUCCEED", Payload="1", ContextOptions={"ReplayChildren": False}))
    assert ops["x1"]["ContextDetails"] == {"Result": "1"}


def test_context_fail_stores_the_error() -> None:
    ops = Ops()
    ops.apply(context("START"))
    change = ops.apply(context("FAIL", Error=ERROR))
    assert ops["x1"]["Status"] == "FAILED"
    assert ops["x1"]["ContextDetails"] == {"Error": ERROR}
    assert types(change) == ["ContextFailed"]


def test_context_close_without_start_is_accepted_for_flat_branches() -> None:
    change = Ops().apply(context("SUCCEED", Payload="2"))
    assert change.ops["x1"]["Status"] == "SUCCEEDED"
    assert types(change) == ["ContextSucceeded"]


def test_context_start_and_succeed_in_one_batch_are_accepted() -> None:
    change = Ops().apply(context("START"), context("SUCCEED", Payload="3"))
    assert types(change) == ["ContextStarted", "ContextSucceeded"]
    assert change.ops["x1"]["Status"] == "SUCCEEDED"


def test_context_start_is_refused_for_an_existing_context() -> None:
    ops = Ops()
    ops.apply(context("START"))
    with pytest.raises(InvalidCheckpointError, match="CONTEXT START is not allowed for operation x1 in status STARTED"):
        ops.apply(context("START"))


@pytest.mark.parametrize("action", ["SUCCEED", "FAIL"])
def test_context_close_is_refused_for_a_closed_context(action: str) -> None:
    ops = Ops()
    ops.apply(context("SUCCEED", Payload="1"))
    with pytest.raises(
        InvalidCheckpointError, match=f"CONTEXT {action} is not allowed for operation x1 in status SUCCEEDED"
    ):
        ops.apply(context(action, Error=ERROR) if action == "FAIL" else context(action))


@pytest.mark.parametrize("action", ["RETRY", "CANCEL"])
def test_context_accepts_only_start_succeed_and_fail(action: str) -> None:
    refused(context(action), match=f"Action {action} is not valid for operation type CONTEXT")


# --- CHAINED_INVOKE ---------------------------------------------------------------------------


def test_chained_invoke_start_asks_the_service_to_start_the_target() -> None:
    change = Ops().apply(
        invoke(Name="bill", Payload='{"id": 3}', ChainedInvokeOptions={"FunctionName": "billing", "TenantId": "t-1"})
    )
    assert change.ops["i1"]["Status"] == "STARTED"
    assert change.ops["i1"]["ChainedInvokeDetails"] == {}
    started = change.events[0]
    assert started == {
        "EventType": "ChainedInvokeStarted",
        "Id": "i1",
        "Name": "bill",
        "SubType": "ChainedInvoke",
        "ChainedInvokeStartedDetails": {
            "FunctionName": "billing",
            "Input": {"Payload": '{"id": 3}', "Truncated": False},
            "ExecutedVersion": "$LATEST",
            "TenantId": "t-1",
        },
    }
    [target] = change.invokes
    assert (target.op_id, target.function_name, target.payload, target.tenant_id) == (
        "i1",
        "billing",
        '{"id": 3}',
        "t-1",
    )
    # The service writes the child's ARN into this very event object once it has started it.
    assert target.started_event is started


def test_chained_invoke_needs_a_function_name() -> None:
    refused(invoke(ChainedInvokeOptions={}), match=r"CHAINED_INVOKE START needs ChainedInvokeOptions\.FunctionName")


def test_chained_invoke_input_is_limited_to_one_mib() -> None:
    Ops().apply(invoke(Payload="x" * machine.MAX_INVOKE_INPUT_BYTES))
    refused(
        invoke(Payload="x" * (machine.MAX_INVOKE_INPUT_BYTES + 1)), match="Chained-invoke input is limited to 1 MiB"
    )


@pytest.mark.parametrize("tenant", ["", "t" * 257, "tenant\n", "tenant;drop"])
def test_chained_invoke_refuses_a_malformed_tenant_id(tenant: str) -> None:
    bad = invoke(ChainedInvokeOptions={"FunctionName": "billing", "TenantId": tenant})
    refused(bad, match=r"ChainedInvokeOptions\.TenantId must be 1-256 characters")


def test_chained_invoke_accepts_every_allowed_tenant_character() -> None:
    tenant = "aZ09._:/=+-@ " + "t" * 243
    change = Ops().apply(invoke(ChainedInvokeOptions={"FunctionName": "billing", "TenantId": tenant}))
    assert change.invokes[0].tenant_id == tenant


def test_chained_invoke_start_is_refused_for_an_existing_invoke() -> None:
    ops = Ops()
    ops.apply(invoke())
    with pytest.raises(
        InvalidCheckpointError, match="CHAINED_INVOKE START is not allowed for operation i1 in status STARTED"
    ):
        ops.apply(invoke())


@pytest.mark.parametrize("action", ["SUCCEED", "FAIL", "RETRY", "CANCEL"])
def test_chained_invoke_accepts_only_start(action: str) -> None:
    refused(
        update("CHAINED_INVOKE", action, "i1"), match=f"Action {action} is not valid for operation type CHAINED_INVOKE"
    )


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        ("SUCCEEDED", "ChainedInvokeSucceeded"),
        ("FAILED", "ChainedInvokeFailed"),
        ("TIMED_OUT", "ChainedInvokeTimedOut"),
        ("STOPPED", "ChainedInvokeStopped"),
    ],
)
def test_complete_chained_invoke_maps_the_target_outcome(status: str, event_type: str) -> None:
    ops = Ops()
    ops.apply(invoke())
    change = ops.service(
        machine.complete_chained_invoke(copy.deepcopy(ops["i1"]), at(1), status=status, result="1", error=ERROR)
    )
    assert ops["i1"]["Status"] == status
    assert ops["i1"]["EndTimestamp"] == NOW_MS + 1000
    assert types(change) == [event_type]
    expected = {"Result": "1"} if status == "SUCCEEDED" else {"Error": ERROR}
    assert ops["i1"]["ChainedInvokeDetails"] == expected


# --- EXECUTION --------------------------------------------------------------------------------


def test_execution_succeed_finishes_without_storing_an_operation() -> None:
    change = Ops().apply(update("EXECUTION", "SUCCEED", "execution-result-1767225600000", Payload='"big"'))
    assert change.finish == machine.Finish("SUCCEEDED", result='"big"')
    assert change.ops == {}
    assert change.events == []


def test_execution_fail_finishes_with_the_error() -> None:
    change = Ops().apply(update("EXECUTION", "FAIL", "execution-result-1767225600000", Error=ERROR))
    assert change.finish == machine.Finish("FAILED", error=ERROR)


def test_execution_update_after_other_updates_applies_them_all() -> None:
    change = Ops().apply(
        step("SUCCEED", Payload="1"), update("EXECUTION", "SUCCEED", "execution-result-1", Payload="2")
    )
    assert change.ops["s1"]["Status"] == "SUCCEEDED"
    assert change.finish is not None


@pytest.mark.parametrize("action", ["START", "RETRY", "CANCEL"])
def test_execution_accepts_only_succeed_and_fail(action: str) -> None:
    refused(update("EXECUTION", action, "e1"), match=f"Action {action} is not valid for operation type EXECUTION")


# --- batch rules ------------------------------------------------------------------------------


def test_execution_update_must_be_last() -> None:
    refused(
        update("EXECUTION", "SUCCEED", "execution-result-1", Payload="1"),
        step("START"),
        match="An EXECUTION update must be the last update of a batch",
    )


def test_two_execution_updates_are_refused() -> None:
    refused(
        update("EXECUTION", "SUCCEED", "execution-result-1", Payload="1"),
        update("EXECUTION", "FAIL", "execution-result-2", Error=ERROR),
        match="An EXECUTION update must be the last update of a batch",
    )


@pytest.mark.parametrize(
    "updates",
    [
        [wait("START", WaitOptions={"WaitSeconds": 1}), wait("START", WaitOptions={"WaitSeconds": 1})],
        [callback(), callback()],
        [step("START"), step("START")],
        [step("SUCCEED", Payload="1"), step("SUCCEED", Payload="1")],
        [step("START"), step("SUCCEED", Payload="1"), step("FAIL", Error=ERROR)],
        [context("SUCCEED"), context("SUCCEED")],
        [invoke(), invoke()],
    ],
    ids=["wait", "callback", "step-start-twice", "step-succeed-twice", "step-three", "context-close-twice", "invoke"],
)
def test_duplicate_ids_in_one_batch_are_refused(updates: list[Doc]) -> None:
    refused(*updates, match=r"Operation \w+ appears more than once in one batch")


def test_unknown_parent_id_is_refused() -> None:
    refused(step("START", ParentId="ghost"), match="ParentId ghost of operation s1 is not a known CONTEXT operation")


def test_parent_id_of_a_non_context_op_is_refused() -> None:
    parent = {"Id": "w9", "Type": "WAIT", "Status": "STARTED"}
    refused(step("START", ParentId="w9"), stored=(parent,), match="ParentId w9 of operation s1 is not a known CONTEXT")


def test_parent_id_of_a_stored_context_is_accepted() -> None:
    ops = Ops()
    ops.apply(context("START"))
    change = ops.apply(step("START", ParentId="x1"))
    assert change.ops["s1"]["ParentId"] == "x1"


def test_parent_id_of_a_context_started_earlier_in_the_batch_is_accepted() -> None:
    change = Ops().apply(context("START"), step("START", ParentId="x1"), step("SUCCEED", ParentId="x1", Payload="1"))
    assert change.ops["s1"]["ParentId"] == "x1"
    assert change.touched == ["x1", "s1"]


def test_parent_id_of_a_context_started_later_in_the_batch_is_refused() -> None:
    refused(step("START", ParentId="x1"), context("START"), match="ParentId x1 of operation s1 is not a known CONTEXT")


@pytest.mark.parametrize(
    ("key", "value"),
    [("Name", "refund"), ("SubType", "WaitForCondition"), ("ParentId", "x2"), ("Type", "WAIT")],
)
def test_identity_mismatch_with_the_stored_op_is_refused(key: str, value: str) -> None:
    ops = Ops()
    ops.apply(context("START"), context("START", "x2", Name="other"), step("START", ParentId="x1"))
    bad = step("SUCCEED", ParentId="x1", Payload="1")
    bad[key] = value
    if key == "Type":
        bad.update(Action="START", WaitOptions={"WaitSeconds": 1})
    with pytest.raises(InvalidCheckpointError, match=f"Operation s1: {key} '{value}' differs from stored"):
        ops.apply(bad)


@pytest.mark.parametrize(("key", "value"), [("Name", "charge"), ("SubType", "Step"), ("ParentId", "x1")])
def test_update_that_sets_an_identity_field_the_stored_op_lacks_is_refused(key: str, value: str) -> None:
    ops = Ops()
    ops.apply(context("START"), {"Id": "s1", "Type": "STEP", "Action": "START"})
    with pytest.raises(InvalidCheckpointError, match=f"Operation s1: {key} '{value}' differs from stored None"):
        ops.apply({"Id": "s1", "Type": "STEP", "Action": "SUCCEED", "Payload": "1", key: value})


def test_update_that_omits_identity_fields_is_accepted() -> None:
    ops = Ops()
    ops.apply(step("START"))
    ops.apply({"Id": "s1", "Type": "STEP", "Action": "SUCCEED", "Payload": "1"})
    assert ops["s1"]["Name"] == "charge"


@pytest.mark.parametrize(
    "bad",
    [
        {"Type": "STEP", "Action": "START"},
        {"Id": "", "Type": "STEP", "Action": "START"},
        {"Id": "a", "Type": "TIMER", "Action": "START"},
        {"Id": "a", "Type": "STEP", "Action": "PAUSE"},
    ],
)
def test_malformed_updates_are_refused(bad: Doc) -> None:
    refused(bad, match="Malformed operation update")


def test_error_objects_are_limited_to_32_kib() -> None:
    message = "e" * (machine.MAX_ERROR_BYTES - len(json.dumps({"ErrorMessage": ""})))
    Ops().apply(step("FAIL", Error={"ErrorMessage": message}))
    refused(step("FAIL", Error={"ErrorMessage": message + "e"}), match="Error objects are limited to 32 KiB")


def test_payloads_are_limited_to_6_mib() -> None:
    Ops().apply(step("SUCCEED", Payload="p" * machine.MAX_PAYLOAD_BYTES))
    refused(
        step("SUCCEED", Payload="p" * (machine.MAX_PAYLOAD_BYTES + 1)), match="Operation payloads are limited to 6 MiB"
    )


def test_payload_limit_counts_utf8_bytes() -> None:
    refused(step("SUCCEED", Payload="é" * (machine.MAX_PAYLOAD_BYTES // 2 + 1)), match="limited to 6 MiB")


def test_a_refused_batch_changes_nothing_it_was_given() -> None:
    ops = Ops()
    ops.apply(step("START"), context("START"))
    before = copy.deepcopy(ops.docs)
    with pytest.raises(InvalidCheckpointError, match="appears more than once"):
        apply_batch(
            ops.docs, [step("SUCCEED", Payload="1"), context("SUCCEED"), context("FAIL", Error=ERROR)], at(), mint
        )
    with pytest.raises(InvalidCheckpointError, match="not allowed"):
        apply_batch(ops.docs, [step("SUCCEED", Payload="1"), context("START")], at(), mint)
    assert ops.docs == before


def test_a_batch_works_on_copies_of_the_stored_docs() -> None:
    ops = Ops()
    ops.apply(step("START"))
    before = copy.deepcopy(ops.docs)
    change = apply_batch(ops.docs, [step("SUCCEED", Payload="1")], at(), mint)
    assert ops.docs == before
    assert change.ops["s1"] is not ops.docs["s1"]


def test_an_empty_batch_changes_nothing() -> None:
    assert Ops().apply() == Transition()


# --- pending work (PENDING output validation) -------------------------------------------------


@pytest.mark.parametrize(
    ("op_type", "status", "pending"),
    [
        ("STEP", "PENDING", True),
        ("STEP", "READY", True),
        ("STEP", "STARTED", False),
        ("WAIT", "STARTED", True),
        ("CALLBACK", "STARTED", True),
        ("CHAINED_INVOKE", "STARTED", True),
        ("CONTEXT", "STARTED", False),
        ("WAIT", "SUCCEEDED", False),
        ("EXECUTION", "STARTED", False),
    ],
)
def test_has_pending_work_knows_what_the_service_owes(op_type: str, status: str, pending: bool) -> None:
    assert machine.has_pending_work([{"Id": "a", "Type": op_type, "Status": status}]) is pending


# --- which batches a database crash may lose (asynchronous commit) ----------------------------


def _update(op_type: str, action: str, op_id: str = "a") -> Doc:
    return {"Id": op_id, "Type": op_type, "Action": action}


@pytest.mark.parametrize(
    "batch",
    [
        [_update("STEP", "START"), _update("STEP", "SUCCEED")],  # an at-least-once step, start to end
        [_update("STEP", "SUCCEED")],
        [_update("STEP", "FAIL")],
        [_update("STEP", "RETRY")],
        [_update("STEP", "SUCCEED", "a"), _update("STEP", "START", "b"), _update("STEP", "FAIL", "b")],
        [_update("CONTEXT", "START"), _update("STEP", "START", "b"), _update("STEP", "SUCCEED", "b")],
        [_update("STEP", "SUCCEED", "b"), _update("CONTEXT", "SUCCEED")],  # a child context's result
        [_update("CONTEXT", "FAIL")],
    ],
)
def test_a_batch_of_step_ends_and_child_contexts_may_be_lost_in_a_crash(batch: list[Doc]) -> None:
    assert machine.may_be_lost_in_a_crash(batch)


@pytest.mark.parametrize(
    "batch",
    [
        [],  # nothing to lose, and nothing gained
        [_update("STEP", "START")],  # an at-most-once step's START, before its body runs
        [_update("STEP", "SUCCEED", "a"), _update("STEP", "START", "b")],
        [_update("CALLBACK", "START")],  # a callback id handed out
        [_update("WAIT", "START")],
        [_update("CHAINED_INVOKE", "START")],
        [_update("CONTEXT", "START"), _update("STEP", "START", "b")],
        [_update("CONTEXT", "START"), _update("CALLBACK", "START", "b")],  # wait_for_callback's
        [_update("STEP", "SUCCEED"), _update("EXECUTION", "SUCCEED", "x")],  # the execution's end
    ],
)
def test_a_batch_that_starts_or_hands_out_anything_must_reach_the_disk(batch: list[Doc]) -> None:
    assert not machine.may_be_lost_in_a_crash(batch)
