"""Seed 001, fraud detection: risk routes, parallel verification with one-day callbacks, BP1/BP2."""

from __future__ import annotations

import json
import uuid

import pytest

import engine
from engine.contrib.django.models import Execution, Operation
from engine.timeline import execution_timeline
from lab import services
from tests.conftest import wait_until
from tests.truth import assert_truthful

# One day of callback timeout in about 17 s; the 36 h execution timeout in about 26 s.
SCALE = 0.0002


def submit(amount: float, **extra) -> str:
    tx = uuid.uuid4().hex[:8]
    return services.fraud_submit(user=None, transaction_id=tx, amount=amount, time_scale=SCALE, **extra).arn


def finished(arn: str, timeout: float = 60) -> dict:
    lam = engine.client()
    wait_until(
        lambda: lam.get_durable_execution(DurableExecutionArn=arn)["Status"] != "RUNNING",
        timeout=timeout,
        interval=0.3,
        message=f"{arn} to finish",
    )
    data = execution_timeline(arn)
    assert_truthful(data)
    return data


def result(timeline: dict) -> dict:
    return json.loads(timeline["execution"]["result"])


def pending_callbacks(arn: str) -> dict[str, str]:
    """Pending callback ids by the name of the wait_for_callback that created them."""
    execution = Execution.objects.get(arn=arn)
    ops = {op.op_id: op for op in Operation.objects.filter(execution=execution)}
    pending = {}
    for op in ops.values():
        if op.type == "CALLBACK" and op.status == "STARTED":
            parent = ops.get(op.parent_id or "")
            pending[(parent.name if parent else None) or op.name] = op.callback_id
    return pending


def effects_of(timeline: dict, kind: str) -> list[dict]:
    return [e for e in timeline["effects"] if e["kind"] == kind]


@pytest.fixture(scope="module")
def started(stack):
    """Start every medium-risk case first, so the one-day timeouts run while the others are checked."""
    return {"timeout": submit(6500), "approve": submit(6500), "reject": submit(5000), "no": submit(7000)}


def test_low_risk_is_approved_and_charged_once(started):
    timeline = finished(submit(250))
    assert result(timeline)["decision"] == "approved"
    tx = json.loads(timeline["execution"]["input"])["id"]
    assert [e["idempotency_key"] for e in effects_of(timeline, "charge")] == [f"tx-{tx}"]
    assert not [op for op in timeline["operations"] if op["type"] == "CALLBACK"]


def test_high_risk_goes_straight_to_the_fraud_team(started):
    timeline = finished(submit(25000))
    assert result(timeline)["decision"] == "sent_to_fraud"
    assert len(effects_of(timeline, "fraud-case")) == 1
    assert not effects_of(timeline, "charge") and not effects_of(timeline, "notification")


def test_medium_risk_one_channel_answering_yes_is_enough(started):
    arn = started["approve"]
    callbacks = wait_until(lambda: len(pending_callbacks(arn)) == 2 and pending_callbacks(arn), message="two callbacks")
    assert set(callbacks) == {"SendVerificationEmail", "SendVerificationSMS"}
    engine.client().send_durable_execution_callback_success(
        CallbackId=callbacks["SendVerificationSMS"], Result=json.dumps({"approved": True})
    )
    timeline = finished(arn)
    assert result(timeline)["decision"] == "approved"
    assert len(effects_of(timeline, "notification")) == 2
    assert [e["duplicate"] for e in effects_of(timeline, "charge")] == [False]


def test_medium_risk_rejected_callback_escalates(started):
    arn = started["reject"]
    callbacks = wait_until(lambda: len(pending_callbacks(arn)) == 2 and pending_callbacks(arn), message="two callbacks")
    engine.client().send_durable_execution_callback_failure(
        CallbackId=callbacks["SendVerificationEmail"], Error={"ErrorType": "Rejected", "ErrorMessage": "not me"}
    )
    timeline = finished(arn)
    assert result(timeline)["decision"] == "escalated"
    assert not effects_of(timeline, "charge")
    assert len(effects_of(timeline, "fraud-case")) == 1


def test_medium_risk_customer_saying_no_escalates(started):
    arn = started["no"]
    callbacks = wait_until(lambda: len(pending_callbacks(arn)) == 2 and pending_callbacks(arn), message="two callbacks")
    engine.client().send_durable_execution_callback_success(
        CallbackId=callbacks["SendVerificationEmail"], Result=json.dumps({"approved": False})
    )
    timeline = finished(arn)
    assert result(timeline)["decision"] == "escalated"
    assert result(timeline)["why"] == "customer said it was not them"


def test_medium_risk_nobody_answers_for_a_day_escalates_before_the_execution_timeout(started):
    timeline = finished(started["timeout"], timeout=60)
    assert timeline["execution"]["status"] == "SUCCEEDED"
    assert result(timeline)["decision"] == "escalated"
    assert "timed out" in result(timeline)["why"]
    callbacks = [op for op in timeline["operations"] if op["type"] == "CALLBACK"]
    assert callbacks and all(op["status"] == "TIMED_OUT" for op in callbacks)


def test_double_submit_of_one_transaction_starts_one_workflow(started):
    tx = uuid.uuid4().hex[:8]
    first = services.fraud_submit(user=None, transaction_id=tx, amount=250, time_scale=SCALE)
    second = services.fraud_submit(user=None, transaction_id=tx, amount=250, time_scale=SCALE)
    assert first.created and not second.created
    assert first.arn == second.arn
    assert Execution.objects.filter(function_name="fraud-detection", name=f"tx-{tx}").count() == 1


def test_a_refused_submit_is_audited_with_the_engines_error(started):
    from django.contrib.auth import get_user_model

    from engine.errors import ServiceError
    from executions.models import AuditEntry

    user = get_user_model().objects.create_user(f"fraud-{uuid.uuid4().hex[:8]}", password="pw", is_staff=True)
    tx = uuid.uuid4().hex[:8]
    services.fraud_submit(user=user, transaction_id=tx, amount=250, time_scale=SCALE)
    with pytest.raises(ServiceError, match="DurableExecutionAlreadyStarted"):
        services.fraud_submit(user=user, transaction_id=tx, amount=999, time_scale=SCALE)
    entries = AuditEntry.objects.filter(user=user, action="lab.fraud.submit").order_by("id")
    assert [(e.ok, e.detail["amount"]) for e in entries] == [(True, 250), (False, 999)]
    assert "DurableExecutionAlreadyStarted" in entries.last().detail["error"]
