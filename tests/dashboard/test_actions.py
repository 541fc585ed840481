"""Actions from the dashboard against the real stack (worker, scheduler, SDK): each one audited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from engine.contrib.django.models import Execution, Fault, Operation
from executions.models import AuditEntry
from tests.conftest import wait_until
from tests.dashboard.handlers import HOSTILE

HTMX = {"HTTP_HX_REQUEST": "true"}


def start(client: Client, function: str, payload: Any, **fields: Any) -> Any:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    data = {"function": function, "payload": text, "invocation_type": "Event", "time_scale": "1", **fields}
    return client.post(reverse("executions:start"), data)


def execution_from(response: Any) -> Execution:
    assert response.status_code == 302, response.content[-2000:]
    pk = int(response["Location"].rstrip("/").split("/")[-1])
    return Execution.objects.get(pk=pk)


def finished(execution: Execution, timeout: float = 60) -> Execution:
    def status() -> Execution | None:
        execution.refresh_from_db()
        return execution if execution.status != "RUNNING" else None

    return wait_until(status, timeout=timeout, message=f"{execution.function_name} to finish")


def pending_callback(execution: Execution) -> Operation:
    return wait_until(
        lambda: Operation.objects.filter(execution=execution, type="CALLBACK", status="STARTED").first(),
        message="a pending callback",
    )


def test_start_from_the_form_runs_the_execution_and_audits_who(op_client: Client, operator, lam, unique: str) -> None:
    response = start(op_client, "hello-steps", {"name": unique, "wait_seconds": 1}, name=f"ui-{unique}")
    execution = execution_from(response)
    assert execution.name == f"ui-{unique}"
    assert finished(execution).status == "SUCCEEDED"
    entry = AuditEntry.objects.get(action="execution.start", execution_pk=execution.pk)
    assert entry.user == operator and entry.target == execution.arn and entry.ok
    page = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert f"Hello, {unique}!" in page and "execution.start" in page


def test_start_form_rejects_bad_json_and_names_inline(op_client: Client, lam) -> None:
    before = Execution.objects.count()
    response = start(op_client, "hello-steps", "{not json", name="bad name!")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Input is not valid JSON" in body and "Use 1-64 letters" in body
    assert Execution.objects.count() == before


def test_start_request_response_waits_and_reports_the_result(op_client: Client, lam, unique: str) -> None:
    response = start(op_client, "hello-steps", {"name": unique, "wait_seconds": 1}, invocation_type="RequestResponse")
    execution = execution_from(response)
    assert execution.status == "SUCCEEDED"
    page = op_client.get(response["Location"]).content.decode()
    assert "RequestResponse returned" in page and f"HELLO, {unique.upper()}!" in page


def test_engine_errors_on_start_are_shown_and_audited(op_client: Client, lam, unique: str) -> None:
    first = execution_from(start(op_client, "hello-steps", {"name": "a"}, name=f"dup-{unique}"))
    response = start(op_client, "hello-steps", {"name": "different"}, name=f"dup-{unique}")
    assert response.status_code == 200
    assert "DurableExecutionAlreadyStartedException" in response.content.decode()
    assert AuditEntry.objects.filter(action="execution.start", ok=False, detail__name=f"dup-{unique}").exists()
    finished(first)


def test_inbox_approves_a_callback_inline_with_validated_json(op_client: Client, operator, lam) -> None:
    arn = lam.invoke(FunctionName="human-approval", InvocationType="Event", Payload=b'{"amount": 9}')[
        "DurableExecutionArn"
    ]
    execution = Execution.objects.get(arn=arn)
    callback = pending_callback(execution)
    inbox = op_client.get(reverse("executions:callbacks")).content.decode()
    assert f'id="cb-{callback.pk}"' in inbox and "manager-approval" in inbox and "deadline" in inbox
    url = reverse("executions:callback_action", args=[callback.pk, "approve"])

    bad = op_client.post(url, {"result": "{oops"}, **HTMX).content.decode()
    assert "Result is not valid JSON" in bad and "<html" not in bad
    callback.refresh_from_db()
    assert callback.status == "STARTED"

    good = op_client.post(url, {"result": '{"approved": true, "by": "test"}'}, **HTMX).content.decode()
    assert "Approved by" in good
    assert finished(execution).status == "SUCCEEDED"
    assert json.loads(json.loads(execution.result)["decision"]) == {"approved": True, "by": "test"}
    entry = AuditEntry.objects.get(action="callback.success", execution_pk=execution.pk)
    assert entry.user == operator and entry.target == callback.callback_id


def test_reject_fails_the_callback_with_an_error_object(op_client: Client, lam) -> None:
    arn = lam.invoke(FunctionName="human-approval", InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    execution = Execution.objects.get(arn=arn)
    callback = pending_callback(execution)
    url = reverse("executions:callback_action", args=[callback.pk, "reject"])
    body = op_client.post(
        url, {"error_type": "Rejected", "error_message": "no budget", "error_data": '{"code": 7}'}, **HTMX
    ).content.decode()
    assert "Rejected by" in body
    assert finished(execution).status == "FAILED"
    entry = AuditEntry.objects.get(action="callback.failure", execution_pk=execution.pk)
    assert entry.detail["error"] == {"ErrorType": "Rejected", "ErrorMessage": "no budget", "ErrorData": '{"code": 7}'}


def test_heartbeat_and_answering_twice_are_reported_inline(op_client: Client, lam) -> None:
    arn = lam.invoke(FunctionName="human-approval", InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    execution = Execution.objects.get(arn=arn)
    callback = pending_callback(execution)
    beat = op_client.post(
        reverse("executions:callback_action", args=[callback.pk, "heartbeat"]), **HTMX
    ).content.decode()
    assert "Heartbeat sent" in beat
    assert AuditEntry.objects.filter(action="callback.heartbeat", execution_pk=execution.pk, ok=True).exists()
    approve = reverse("executions:callback_action", args=[callback.pk, "approve"])
    op_client.post(approve, {"result": "true"}, **HTMX)
    again = op_client.post(approve, {"result": "true"}, **HTMX).content.decode()
    assert 'role="alert"' in again  # the engine's refusal, shown next to the form
    assert AuditEntry.objects.filter(action="callback.success", execution_pk=execution.pk, ok=False).exists()
    finished(execution)


def test_callbacks_can_be_answered_on_the_execution_page(op_client: Client, lam) -> None:
    arn = lam.invoke(FunctionName="human-approval", InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    execution = Execution.objects.get(arn=arn)
    callback = pending_callback(execution)
    page = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert reverse("executions:callback_action", args=[callback.pk, "approve"]) in page
    response = op_client.post(
        reverse("executions:callback_action", args=[callback.pk, "approve"]),
        {"result": '"ok"', "next": reverse("executions:detail", args=[execution.pk])},
    )
    assert response["Location"] == reverse("executions:detail", args=[execution.pk])
    assert finished(execution).status == "SUCCEEDED"


def test_stop_ends_a_running_execution(op_client: Client, operator, dash_functions) -> None:
    execution = execution_from(start(op_client, "dash-long-wait", {"seconds": 300}))
    wait_until(lambda: Operation.objects.filter(execution=execution, type="WAIT").exists(), message="the wait")
    response = op_client.post(reverse("executions:stop", args=[execution.pk]), follow=True)
    assert "Execution stopped." in response.content.decode()
    execution.refresh_from_db()
    assert execution.status == "STOPPED"
    assert operator.username in execution.error["ErrorMessage"]
    assert AuditEntry.objects.get(action="execution.stop", execution_pk=execution.pk).user == operator


def test_kill_now_kills_the_running_invocation_and_the_engine_recovers(
    op_client: Client, operator, dash_functions
) -> None:
    execution = execution_from(start(op_client, "dash-slow-step", {"seconds": 3}))
    wait_until(lambda: Execution.objects.filter(pk=execution.pk, running=True).exists(), message="a running invocation")
    response = op_client.post(reverse("executions:kill", args=[execution.pk]), follow=True)
    assert "Killed the running invocation" in response.content.decode()
    assert Fault.objects.filter(execution=execution, phase="now", armed_by=operator.username).exists()
    assert finished(execution, timeout=90).status == "SUCCEEDED"
    assert execution.invocations.filter(outcome="killed").exists()
    entry = AuditEntry.objects.get(action="fault.kill_now", execution_pk=execution.pk)
    assert entry.ok and entry.user == operator


def test_kill_with_nothing_running_is_refused_and_audited(op_client: Client, dash_functions) -> None:
    execution = execution_from(start(op_client, "dash-long-wait", {"seconds": 300}))
    wait_until(
        lambda: Execution.objects.filter(pk=execution.pk, running=False, invocation_seq__gte=1).exists(),
        message="the execution to suspend in its wait",
    )
    response = op_client.post(reverse("executions:kill", args=[execution.pk]), follow=True)
    assert "InvalidParameterValueException" in response.content.decode()
    assert AuditEntry.objects.get(action="fault.kill_now", execution_pk=execution.pk).ok is False
    op_client.post(reverse("executions:stop", args=[execution.pk]))


def test_arm_fault_records_it_and_the_timeline_shows_it(op_client: Client, operator, dash_functions) -> None:
    execution = execution_from(start(op_client, "dash-long-wait", {"seconds": 300}))
    wait_until(lambda: Operation.objects.filter(execution=execution, type="WAIT").exists(), message="the wait")
    url = reverse("executions:arm_fault", args=[execution.pk])
    assert "Step name" in op_client.post(url, {"phase": "after_body"}, follow=True).content.decode()
    response = op_client.post(url, {"step_name": "after-nap", "phase": "body_start"}, follow=True)
    assert "Armed" in response.content.decode()
    fault = Fault.objects.get(execution=execution)
    assert (fault.step_name, fault.phase, fault.armed_by) == ("after-nap", "body_start", operator.username)
    names = {
        t["name"]
        for t in op_client.get(reverse("executions:timeline_data", args=[execution.pk])).json()["figure"]["data"]
    }
    assert "Fault armed (not fired yet)" in names
    assert AuditEntry.objects.get(action="fault.arm", execution_pk=execution.pk).detail == {
        "step_name": "after-nap",
        "phase": "body_start",
    }
    op_client.post(reverse("executions:stop", args=[execution.pk]))


def test_run_again_starts_the_same_function_with_the_same_input(op_client: Client, lam, unique: str) -> None:
    first = finished(execution_from(start(op_client, "hello-steps", {"name": unique, "wait_seconds": 1})))
    again = execution_from(op_client.post(reverse("executions:rerun", args=[first.pk])))
    assert again.pk != first.pk
    assert (again.function_name, again.input) == (first.function_name, first.input)
    assert finished(again).status == "SUCCEEDED"
    prefilled = op_client.get(reverse("executions:start"), {"from": first.pk}).content.decode()
    assert "coming with the teaching lab" not in prefilled and unique in prefilled


@pytest.mark.parametrize("function", ["dash-hostile", "dash-hostile-failure"])
def test_user_payloads_are_escaped_everywhere(op_client: Client, dash_functions, function: str) -> None:
    execution = finished(execution_from(start(op_client, function, {"note": HOSTILE})))
    for url in (
        reverse("executions:detail", args=[execution.pk]),
        reverse("executions:list") + f"?function={function}",
        reverse("executions:history", args=[execution.pk]),
    ):
        body = op_client.get(url).content.decode()
        assert "<script>alert(" not in body, url
    page = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert "&lt;script&gt;alert(" in page
    figure = op_client.get(reverse("executions:timeline_data", args=[execution.pk])).content.decode()
    assert "<script>" not in figure.replace("\\u003c", "<").replace("\\u003e", ">")


def _quarantined(execution: Execution) -> Execution:
    """Quarantine the execution as a background loop does after repeated failures."""
    from engine import db
    from engine.duties.unit import utcnow
    from engine.store import store

    note = {"loop": "timers", "failures": 3, "first_failed_at": "2026-01-01T00:00:00+00:00", "error": "Boom"}
    with db.pool().connection() as conn:
        store.quarantine(conn, execution.pk, note, utcnow())
    execution.refresh_from_db()
    assert execution.quarantined_at is not None
    return execution


def _suspended_in_a_wait(op_client: Client) -> Execution:
    execution = execution_from(start(op_client, "dash-long-wait", {"seconds": 300}))
    wait_until(
        lambda: Execution.objects.filter(pk=execution.pk, running=False, invocation_seq__gte=1).exists(),
        message="the execution to suspend in its wait",
    )
    return Execution.objects.get(pk=execution.pk)


def test_release_from_quarantine_clears_it_only_and_is_audited(op_client: Client, operator, dash_functions) -> None:
    execution = _quarantined(_suspended_in_a_wait(op_client))
    url = reverse("executions:release_quarantine", args=[execution.pk])
    page = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert "Release from quarantine — the scheduler will try again" in page and f'action="{url}"' in page
    before = Execution.objects.values().get(pk=execution.pk)
    response = op_client.post(url, follow=True)
    body = response.content.decode()
    assert "Released from quarantine" in body and 'id="quarantine"' not in body
    after = Execution.objects.values().get(pk=execution.pk)
    assert after["quarantined_at"] is None and after["quarantine"] is None
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {"quarantined_at", "quarantine"}
    entry = AuditEntry.objects.get(action="execution.release_quarantine", execution_pk=execution.pk)
    assert entry.ok and entry.user == operator and entry.target == execution.arn
    op_client.post(reverse("executions:stop", args=[execution.pk]))


def test_release_of_an_execution_not_quarantined_is_refused_and_audited(op_client: Client, dash_functions) -> None:
    execution = _suspended_in_a_wait(op_client)
    response = op_client.post(reverse("executions:release_quarantine", args=[execution.pk]), follow=True)
    assert response.status_code == 200
    assert "InvalidParameterValueException: Durable execution is not quarantined" in response.content.decode()
    assert AuditEntry.objects.get(action="execution.release_quarantine", execution_pk=execution.pk).ok is False
    op_client.post(reverse("executions:stop", args=[execution.pk]))


def test_release_needs_an_operator_a_post_and_a_csrf_token(
    op_client: Client, viewer_client: Client, operator, dash_functions
) -> None:
    execution = _quarantined(_suspended_in_a_wait(op_client))
    url = reverse("executions:release_quarantine", args=[execution.pk])
    page = viewer_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert 'id="quarantine"' in page and "Release from quarantine" not in page
    assert viewer_client.post(url).status_code == 403
    assert op_client.get(url).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert strict.post(url).status_code == 403
    execution.refresh_from_db()
    assert execution.quarantined_at is not None
    assert not AuditEntry.objects.filter(action="execution.release_quarantine", execution_pk=execution.pk).exists()
    op_client.post(reverse("executions:stop", args=[execution.pk]))


def test_the_list_counts_quarantined_executions_and_filters_them(op_client: Client, dash_functions) -> None:
    quarantined = _quarantined(_suspended_in_a_wait(op_client))
    other = _suspended_in_a_wait(op_client)
    count = Execution.objects.filter(quarantined_at__isnull=False).count()
    page = op_client.get(reverse("executions:list")).content.decode()
    link = f'href="{reverse("executions:list")}?quarantined=1">{count} execution{"s" if count > 1 else ""} quarantined'
    assert link in page
    listed = op_client.get(reverse("executions:list") + "?quarantined=1").content.decode()
    assert quarantined.name in listed and other.name not in listed
    op_client.post(reverse("executions:release_quarantine", args=[quarantined.pk]))
    if not Execution.objects.filter(quarantined_at__isnull=False).exists():
        assert 'id="quarantined"' not in op_client.get(reverse("executions:list")).content.decode()
    for execution in (quarantined, other):
        op_client.post(reverse("executions:stop", args=[execution.pk]))


def test_pause_and_resume_from_the_page_are_audited(op_client: Client, operator, dash_functions) -> None:
    execution = execution_from(start(op_client, "dash-long-wait", {"seconds": 300}))
    wait_until(lambda: Operation.objects.filter(execution=execution, type="WAIT").exists(), message="the wait")
    page = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert 'id="pause"' in page and 'id="resume"' not in page and 'id="delete"' not in page
    response = op_client.post(reverse("executions:pause", args=[execution.pk]), follow=True)
    body = response.content.decode()
    assert "Paused: no invocation until you resume it" in body
    execution.refresh_from_db()
    assert execution.pause_state in {"PAUSING", "PAUSED"}  # PAUSING while the first invocation ends
    wait_until(lambda: Execution.objects.filter(pk=execution.pk, pause_state="PAUSED").exists(), message="PAUSED")
    page = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert 'id="execution-status">PAUSED<' in page and 'id="resume"' in page and 'id="pause"' not in page
    assert "ExecutionPaused" in page  # the history
    listed = op_client.get(reverse("executions:list"), {"status": "PAUSED"}).content.decode()
    assert execution.name in listed and "status-paused" in listed
    running = op_client.get(reverse("executions:list"), {"status": "RUNNING"}).content.decode()
    assert execution.name not in running
    entry = AuditEntry.objects.get(action="execution.pause", execution_pk=execution.pk)
    assert entry.ok and entry.user == operator
    again = op_client.post(reverse("executions:pause", args=[execution.pk]), follow=True).content.decode()
    assert "ResourceConflictException" in again
    assert AuditEntry.objects.get(action="execution.pause", execution_pk=execution.pk, ok=False)
    response = op_client.post(reverse("executions:resume", args=[execution.pk]), follow=True)
    assert "Resumed" in response.content.decode()
    execution.refresh_from_db()
    assert execution.pause_state is None and execution.status == "RUNNING"
    assert AuditEntry.objects.get(action="execution.resume", execution_pk=execution.pk).ok
    op_client.post(reverse("executions:stop", args=[execution.pk]))


def test_delete_removes_a_finished_execution_and_returns_to_the_list(
    op_client: Client, operator, dash_functions
) -> None:
    execution = execution_from(start(op_client, "dash-long-wait", {"seconds": 300}))
    wait_until(lambda: Operation.objects.filter(execution=execution, type="WAIT").exists(), message="the wait")
    refused = op_client.post(reverse("executions:delete", args=[execution.pk]), follow=True)
    assert "ResourceConflictException" in refused.content.decode()
    assert Execution.objects.filter(pk=execution.pk).exists()
    op_client.post(reverse("executions:stop", args=[execution.pk]))
    page = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert 'id="delete"' in page and "data-confirm=" in page
    response = op_client.post(reverse("executions:delete", args=[execution.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("executions:list")
    assert f"Deleted execution {execution.name}" in response.content.decode()
    assert not Execution.objects.filter(pk=execution.pk).exists()
    assert not Operation.objects.filter(execution_id=execution.pk).exists()
    entries = AuditEntry.objects.filter(action="execution.delete", execution_pk=execution.pk)
    assert [(e.ok, e.user) for e in entries.order_by("at")] == [(False, operator), (True, operator)]
    assert op_client.get(reverse("executions:detail", args=[execution.pk])).status_code == 404
