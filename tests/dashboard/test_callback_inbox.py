"""The callbacks inbox says what is being approved, answers with a note, and says when it is too late.

Issue #22 points 5 and 16: real fraud executions (worker, scheduler, SDK) for what a card reads;
seeded rows only for the query count at volume.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from engine.contrib.django.models import Execution, LogLine, Operation, Timer
from executions import selectors
from executions.models import AuditEntry
from lab import services
from tests.conftest import wait_until
from tests.dashboard.seed import arn_for, insert, writable

HTMX = {"HTTP_HX_REQUEST": "true"}


def fraud(amount: float, scale: float) -> Execution:
    tx = uuid.uuid4().hex[:8]
    arn = services.fraud_submit(user=None, transaction_id=tx, amount=amount, time_scale=scale).arn
    return Execution.objects.get(arn=arn)


def waiting(execution: Execution, count: int = 2) -> list[Operation]:
    """The execution's pending callbacks as the inbox reads them, once both submitters have run."""

    def ready() -> list[Operation] | None:
        cards = selectors.pending_callback_list(execution=execution)
        return cards if len(cards) == count and all(cb.message for cb in cards) else None

    return wait_until(ready, timeout=60, message=f"{count} callbacks with their messages")


def test_a_card_reads_the_input_the_message_who_else_was_asked_and_the_deadline(stack, op_client: Client) -> None:
    execution = fraud(6500, scale=0.005)
    cards = {cb.channel: cb for cb in waiting(execution)}
    assert set(cards) == {"email", "sms"}
    email = cards["email"]
    assert ("amount", "6500") in email.input_items and ("merchant", "Durable Lab Store") in email.input_items
    assert email.message.startswith("Email to the holder of card 4111…1111: did you just pay 6,500.00")
    assert cards["sms"].message.startswith("SMS to the holder")
    assert [(s.name, s.status) for s in email.siblings] == [("sms", "STARTED")]
    # One day at x0.005 is 432 s: minutes for a person, counted from when the callback started.
    assert abs((email.deadline - email.started_at).total_seconds() - 432) < 5

    inbox = op_client.get(reverse("executions:callbacks")).content.decode()
    assert "did you just pay 6,500.00 at Durable Lab Store" in inbox and "Verification by email" in inbox
    assert "data-countdown" in inbox and " left</time>" in inbox

    url = reverse("executions:callback_action", args=[email.pk, "approve"])
    body = op_client.post(url, {"result": '{"approved": true}', "note": "called her, it was her"}, **HTMX)
    assert "Approved by" in body.content.decode()
    entry = AuditEntry.objects.get(action="callback.success", execution_pk=execution.pk)
    assert json.loads(entry.detail["result"]) == {"approved": True, "note": "called her, it was her"}
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status == "SUCCEEDED", message="the approval")
    assert json.loads(Execution.objects.get(pk=execution.pk).result)["why"] == "customer confirmed"


def test_reject_sends_the_note_as_the_error_message(stack, op_client: Client) -> None:
    execution = fraud(5000, scale=0.005)
    sms = next(cb for cb in waiting(execution) if cb.channel == "sms")
    url = reverse("executions:callback_action", args=[sms.pk, "reject"])
    fields = {"result": '{"approved": true}', "error_type": "Rejected", "error_message": "", "note": "not me"}
    assert "Rejected by" in op_client.post(url, fields, **HTMX).content.decode()
    entry = AuditEntry.objects.get(action="callback.failure", execution_pk=execution.pk)
    assert entry.detail["error"] == {"ErrorType": "Rejected", "ErrorMessage": "not me"}
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status != "RUNNING", message="the rejection")


@pytest.mark.parametrize("action", ["approve", "reject", "heartbeat"])
def test_an_answer_after_the_timeout_says_it_came_too_late(stack, op_client: Client, action: str) -> None:
    execution = fraud(6500, scale=0.0001)  # one day in 8.6 s
    callback = waiting(execution)[0]
    wait_until(lambda: Operation.objects.get(pk=callback.pk).status == "TIMED_OUT", timeout=60, message="the timeout")
    url = reverse("executions:callback_action", args=[callback.pk, action])
    fields = {"result": '{"approved": true}', "error_type": "Rejected", "error_message": "late"}
    body = op_client.post(url, fields, **HTMX).content.decode()
    assert "Too late: this callback timed out at " in body, body[-3000:]
    assert "s before you answered); the execution took its timeout path." in body
    assert 'hx-swap-oob="afterbegin:#callback-notices"' in body  # the notice outlives the inbox's refresh
    assert "No callbacks are waiting" not in body

    # Without htmx: the same words as a message on the page it goes back to.
    page = op_client.post(url, {**fields, "next": "/callbacks/"}, follow=True).content.decode()
    assert "Too late: this callback timed out at " in page


def test_the_fraud_demo_shows_the_cards_with_a_countdown_and_minutes_to_act(stack, op_client: Client) -> None:
    page = op_client.get(reverse("lab:demo", args=["fraud"])).content.decode()
    assert 'value="0.005" selected' in page or 'value="0.005"selected' in page.replace(" ", "")
    execution = fraud(6500, scale=0.005)
    waiting(execution)
    page = op_client.get(reverse("lab:demo", args=["fraud"])).content.decode()
    assert f"{execution.name}</a>" in page and "did you just pay 6,500.00" in page
    assert "data-countdown" in page and "Approve</button>" in page
    cb = selectors.pending_callback_list(execution=execution)[0]
    op_client.post(reverse("executions:callback_action", args=[cb.pk, "approve"]), {"result": "true"})
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status != "RUNNING", message="the approval")


# --- the read stays a fixed number of queries ----------------------------------------------------


def seed_verifications(function: str, executions: int) -> None:
    """Running executions each waiting on two verification callbacks, shaped as the SDK nests a
    ``parallel`` of two ``wait_for_callback`` branches, with a log line from each submitter."""
    now = datetime.now(UTC)
    for _ in range(executions):
        name = uuid.uuid4().hex[:10]
        execution = insert(
            Execution,
            arn=arn_for(function, name),
            function_name=function,
            name=name,
            input=json.dumps({"id": name, "amount": 6500}),
            status="RUNNING",
            started_at=now,
            execution_timeout=3600,
        )
        ops = [_op(execution, "par", None, "human-verification", "CONTEXT", "Parallel")]
        for channel in ("email", "sms"):
            ops += [
                _op(execution, f"b-{channel}", "par", channel, "CONTEXT", "ParallelBranch"),
                _op(execution, f"w-{channel}", f"b-{channel}", f"Send {channel}", "CONTEXT", "WaitForCallback"),
                _op(
                    execution,
                    f"c-{channel}",
                    f"w-{channel}",
                    f"Send {channel} create callback id",
                    "CALLBACK",
                    "Callback",
                ),
                _op(execution, f"s-{channel}", f"w-{channel}", f"Send {channel} submitter", "STEP", "Step"),
            ]
        writable(Operation).bulk_create(ops)
        writable(Timer).bulk_create(
            Timer(execution=execution, kind="callback_timeout", op_id=f"c-{c}", due_at=now + timedelta(days=1))
            for c in ("email", "sms")
        )
        writable(LogLine).bulk_create(
            LogLine(
                execution=execution,
                invocation_seq=1,
                at=now,
                level="INFO",
                logger="t",
                message=f"{c} sent",
                op_id=f"s-{c}",
            )
            for c in ("email", "sms")
        )


def _op(execution: Execution, op_id: str, parent: str | None, name: str, kind: str, sub_type: str) -> Operation:
    extra = {"callback_id": f"{execution.name}-{op_id}"} if kind == "CALLBACK" else {}
    return Operation(
        execution=execution,
        op_id=op_id,
        ordinal=Operation.objects.filter(execution=execution).count() + len(op_id),
        parent_id=parent,
        name=name,
        type=kind,
        sub_type=sub_type,
        status="STARTED",
        started_at=execution.started_at,
        doc={"Id": op_id, "Type": kind, "SubType": sub_type, "Status": "STARTED"},
        **extra,
    )


def test_the_inbox_read_costs_the_same_queries_for_2_and_20_pending_callbacks(
    op_client: Client, count_queries, unique: str
) -> None:
    function = f"inbox-{unique}"
    try:
        seed_verifications(function, 1)
        with count_queries() as two:
            cards = selectors.pending_callback_list(function_name=function)
        assert len(cards) == 2 and {cb.message for cb in cards} == {"email sent", "sms sent"}
        assert [(s.name, s.status) for s in cards[0].siblings] in ([("sms", "STARTED")], [("email", "STARTED")])
        op_client.get(reverse("executions:callbacks"))
        with count_queries() as inbox_before:
            op_client.get(reverse("executions:callbacks"))

        seed_verifications(function, 9)
        with count_queries() as twenty:
            cards = selectors.pending_callback_list(function_name=function)
        assert len(cards) == 20 and all(cb.message and cb.siblings for cb in cards)
        with count_queries() as inbox_after:
            response = op_client.get(reverse("executions:callbacks"))
        assert response.content.decode().count("email sent") >= 10
        assert (two.django, two.engine) == (twenty.django, twenty.engine) and two.django <= 4, two.sql
        assert (inbox_before.django, inbox_before.engine) == (inbox_after.django, inbox_after.engine)
    finally:
        writable(Execution).filter(function_name=function).delete()


def test_decoded_input_reads_objects_as_pairs_and_anything_else_as_one_value() -> None:
    assert selectors.decoded_input('{"amount": 6500, "merchant": "Shop", "tags": ["a"]}') == [
        ("amount", "6500"),
        ("merchant", "Shop"),
        ("tags", '["a"]'),
    ]
    assert selectors.decoded_input("[1, 2]") == [("input", "[1, 2]")]
    assert selectors.decoded_input("not json") == [("input", "not json")]
    assert selectors.decoded_input(None) == []


def test_who_else_was_asked_reads_the_other_channels_callback_state(unique: str) -> None:
    function = f"inbox-{unique}"
    try:
        seed_verifications(function, 1)
        writable(Operation).filter(execution__function_name=function, op_id="c-sms").update(status="TIMED_OUT")
        (email,) = selectors.pending_callback_list(function_name=function)
        assert email.channel == "email" and email.message == "email sent"
        assert [(s.name, s.status) for s in email.siblings] == [("sms", "TIMED_OUT")]
    finally:
        writable(Execution).filter(function_name=function).delete()
