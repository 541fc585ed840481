"""Issue #22: every page tells the truth. Each picture is reproduced on the real stack, then read."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from engine import invariants, timeline
from engine.contrib.django.models import Execution, Operation
from executions.models import AuditEntry
from tests.conftest import wait_until
from tests.dashboard.test_actions import execution_from, finished, start
from tests.truth import assert_truthful


def _all_invocations_ended(execution: Execution) -> bool:
    return not execution.invocations.filter(ended_at__isnull=True).exists()


def _settled(execution: Execution, timeout: float = 90) -> dict[str, Any]:
    """The read model once the execution and every invocation it started have ended."""
    finished(execution, timeout=timeout)
    wait_until(lambda: _all_invocations_ended(execution), timeout=30, message="the last invocation to end")
    return timeline.execution_timeline(execution.arn)


def _ops_table(html: str) -> str:
    return html.split('id="operations"', 1)[1].split("</section>", 1)[0]


@pytest.fixture
def stopped(op_client: Client, lam: Any, unique: str) -> tuple[Execution, dict[str, Any]]:
    execution = execution_from(start(op_client, "replay-not-retry", {"sleep": 10}, name=f"stop-{unique}"))
    wait_until(
        lambda: Operation.objects.filter(execution=execution, name="Step #2", status="STARTED").exists(),
        message="Step #2 to start",
    )
    op_client.post(reverse("executions:stop", args=[execution.pk]))
    return execution, _settled(execution)


def test_after_stop_the_open_step_ends_with_the_execution(stopped: tuple[Execution, dict[str, Any]]) -> None:
    _, data = stopped
    assert data["execution"]["status"] == "STOPPED"
    step = next(op for op in data["operations"] if op["name"] == "Step #2")
    assert (step["status"], step["recorded_status"], step["ended_by_execution"]) == ("STOPPED", "STARTED", True)
    assert step["ended_at"] == data["execution"]["ended_at"]
    [attempt] = step["attempts"]
    assert attempt["outcome"] == "unfinished" and attempt["ended_at"] <= data["execution"]["ended_at"]
    assert_truthful(data)


def test_after_stop_billed_time_stays_within_wall_time(
    op_client: Client, stopped: tuple[Execution, dict[str, Any]]
) -> None:
    """Stop ends the execution at once; its running invocation is cut short after, and billed
    until then: wall time runs until then too (it used to stop at the Stop)."""
    execution, data = stopped
    last = data["invocations"][-1]
    assert last["ended_at"] > data["execution"]["ended_at"], "the invocation ran on after the Stop"
    counters = data["counters"]
    assert counters["billed_seconds"] <= counters["wall_seconds"]
    assert counters["wall_seconds"] == round((last["ended_at"] - data["execution"]["started_at"]).total_seconds(), 3)
    html = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert 'id="truth-warning"' not in html


def test_after_stop_the_page_shows_nothing_running(
    op_client: Client, stopped: tuple[Execution, dict[str, Any]]
) -> None:
    execution, _ = stopped
    html = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    table = _ops_table(html)
    assert re.findall(r".{80}so far.{20}", table, re.S) == []
    assert ">STARTED<" not in table and ">STOPPED<" in table
    assert 'id="truth-warning"' not in html
    op_id = Operation.objects.get(execution=execution, name="Step #2").op_id
    drawer = op_client.get(reverse("executions:operation", args=[execution.pk, op_id])).content.decode()
    assert "STOPPED" in drawer and ">running<" not in drawer
    figure = op_client.get(reverse("executions:timeline_data", args=[execution.pk])).json()["figure"]
    names = {trace["name"] for trace in figure["data"]}
    assert "Attempt running" not in names and "Invocation running" not in names


@pytest.fixture(scope="module")
def timed_out(stack: Any, django_db_blocker: Any) -> dict[str, Any]:
    """Seed 000 at time scale 0.1: the 60 s ExecutionTimeout becomes 6 s, and Step #2's 10 s body
    outlives the 3 s Timeout of every invocation that runs it."""
    import engine

    with django_db_blocker.unblock():
        arn = engine.client().invoke(
            FunctionName="replay-not-retry", InvocationType="Event", Payload=b'{"sleep": 10}', TimeScale=0.1
        )["DurableExecutionArn"]
        return _settled(Execution.objects.get(arn=arn))


def test_after_an_execution_timeout_nothing_is_left_open(op_client: Client, timed_out: dict[str, Any]) -> None:
    data = timed_out
    execution = Execution.objects.get(arn=data["execution"]["arn"])
    assert data["execution"]["status"] == "TIMED_OUT"
    step = next(op for op in data["operations"] if op["name"] == "Step #2")
    assert step["status"] == "TIMED_OUT" and step["ended_at"] == data["execution"]["ended_at"]
    assert all(a["ended_at"] is not None for a in step["attempts"])
    assert_truthful(data)
    page = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    table = _ops_table(page)
    assert "so far" not in table and ">STARTED<" not in table
    # Whatever rule the record still breaks (issue #22 point 2's, today) is on the page, not hidden.
    for violation in invariants.violations(data):
        assert f"<li>{escape(violation)}</li>" in page


@pytest.fixture
def killed(op_client: Client, dash_functions: Any) -> tuple[Execution, dict[str, Any]]:
    execution = execution_from(start(op_client, "dash-slow-step", {"seconds": 3}))
    wait_until(
        lambda: (
            Operation.objects.filter(execution=execution, name="crunch").exists()
            and Execution.objects.filter(pk=execution.pk, running=True).exists()
        ),
        message="the step's body running",
    )
    op_client.post(reverse("executions:kill", args=[execution.pk]))
    return execution, _settled(execution)


def test_a_killed_attempt_is_cut_at_the_kill_and_goes_on_in_the_next_invocation(
    killed: tuple[Execution, dict[str, Any]],
) -> None:
    _, data = killed
    assert data["execution"]["status"] == "SUCCEEDED"
    crunch = next(op for op in data["operations"] if op["name"] == "crunch")
    [attempt] = crunch["attempts"]
    first, last = attempt["segments"][0], attempt["segments"][-1]
    killed_invocation = next(i for i in data["invocations"] if i["outcome"] == "killed")
    assert first["invocation_seq"] == killed_invocation["seq"] == attempt["invocation_seq"]
    assert first["outcome"] == "cut_short" and first["ended_at"] == killed_invocation["ended_at"]
    assert last["outcome"] == "succeeded" and last["invocation_seq"] > first["invocation_seq"]
    # The drawer's invocation and start time, and its body runs, tell the same story.
    runs = {(run["invocation_seq"], run["attempt"]) for run in crunch["body_runs"]}
    assert {(s["invocation_seq"], attempt["attempt"]) for s in attempt["segments"]} == runs
    assert_truthful(data)


@pytest.fixture(scope="module")
def killed_after_body(stack: Any, django_db_blocker: Any) -> dict[str, Any]:
    """The idempotency demo: the invocation is killed after the charge body ran, before its checkpoint."""
    import engine

    with django_db_blocker.unblock():
        order = f"o-{uuid.uuid4().hex[:8]}"
        arn = engine.client().invoke(
            FunctionName="idempotency-keys", InvocationType="Event", Payload=json.dumps({"order": order})
        )["DurableExecutionArn"]
        return _settled(Execution.objects.get(arn=arn), timeout=120)


def test_a_step_killed_after_its_body_shows_one_attempt_over_two_invocations(
    killed_after_body: dict[str, Any],
) -> None:
    data = killed_after_body
    charge = next(op for op in data["operations"] if op["name"] == "charge-payment")
    [attempt] = charge["attempts"]
    # The START checkpoint was sent without waiting and lost with the kill: the body run says where a1 began.
    assert [s["invocation_seq"] for s in attempt["segments"]] == [1, 2]
    assert [s["outcome"] for s in attempt["segments"]] == ["cut_short", "succeeded"]
    assert attempt["invocation_seq"] == 1 and attempt["started_at"] <= data["invocations"][0]["ended_at"]
    assert sorted((r["invocation_seq"], r["attempt"]) for r in charge["body_runs"]) == [(1, 1), (2, 1)]
    assert_truthful(data)


def test_a_timeout_is_not_drawn_as_a_pause(timed_out: dict[str, Any]) -> None:
    assert [v for v in invariants.violations(timed_out) if v.startswith("crash-as-suspended")] == []


def test_the_drawer_shows_results_decoded_with_the_raw_form_one_click_away(
    op_client: Client, dash_functions: Any
) -> None:
    execution = execution_from(start(op_client, "dash-fanout", {"items": 3}))
    finished(execution)
    op = Operation.objects.get(execution=execution, name="squares")
    raw = op.doc["ContextDetails"]["Result"]
    assert raw.startswith('{"t":'), "the SDK checkpoints a map's result in its typed envelope"
    html = op_client.get(reverse("executions:operation", args=[execution.pk, op.op_id])).content.decode()
    shown = re.search(r'data-testid="op-result">(.*?)</pre>', html, re.S).group(1).replace("&quot;", '"')
    decoded = json.loads(shown)
    assert '"t"' not in shown and "all" in json.dumps(decoded), shown
    assert "raw (as checkpointed by the SDK)" in html and raw.replace('"', "&quot;") in html


def test_a_duplicate_start_says_it_is_the_existing_execution_and_is_audited(
    op_client: Client, lam: Any, unique: str
) -> None:
    payload = {"name": unique, "wait_seconds": 5}
    created = start(op_client, "hello-steps", payload, name=f"dup-{unique}")
    first = execution_from(created)
    assert "202 Accepted" in op_client.get(created["Location"]).content.decode()
    response = start(op_client, "hello-steps", payload, name=f"dup-{unique}")
    assert execution_from(response).pk == first.pk
    page = op_client.get(response["Location"]).content.decode()
    assert "already running" in page and "existing execution" in page and "202 Accepted" not in page
    refused = start(op_client, "hello-steps", {"other": True}, name=f"dup-{unique}")
    assert "DurableExecutionAlreadyStartedException" in refused.content.decode()
    entries = AuditEntry.objects.filter(action="execution.start", detail__name=f"dup-{unique}").order_by("id")
    assert [(e.ok, e.detail.get("existing", False)) for e in entries] == [(True, False), (True, True), (False, False)]
    finished(first)
    again = start(op_client, "hello-steps", payload, name=f"dup-{unique}")
    assert "already finished" in op_client.get(again["Location"]).content.decode()


def test_while_a_body_runs_the_header_counts_it_and_its_billed_time_so_far(
    op_client: Client, dash_functions: Any
) -> None:
    from executions import selectors

    execution = execution_from(start(op_client, "dash-slow-step", {"seconds": 4}))

    def live() -> dict[str, Any] | None:
        data = selectors.execution_timeline_data(execution=execution)
        running = data["invocation_running"] and data["counters"]["body_runs"] >= 1
        return data if running else None

    data = wait_until(live, timeout=60, message="the step's body to run inside a running invocation")
    # The START checkpoint is sent without waiting: the body may be counted once the step is stored.
    assert data["counters"]["billed_seconds"] > 0
    crunch = next(op for op in data["operations"] if op["name"] == "crunch")
    assert [run["outcome"] for run in crunch["body_runs"]] == ["running"]
    html = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert "so far (an invocation is running)" in html
    assert re.search(r"<b>1</b> body run<", html), "one body run, counted while its invocation runs"
    assert re.search(r"<b>1</b> invocation<", html)
    assert 'id="kill-now"' not in html, "something runs: the kill button is live"
    finished(execution)
    assert_truthful(execution.arn)


def test_kill_is_not_offered_while_nothing_runs(op_client: Client, dash_functions: Any) -> None:
    execution = execution_from(start(op_client, "dash-long-wait", {"seconds": 300}))
    wait_until(
        lambda: (
            Execution.objects.filter(pk=execution.pk, running=False, invocation_seq__gte=1).exists()
            and _all_invocations_ended(execution)
        ),
        message="the execution to suspend in its wait",
    )
    html = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert re.search(r'<button class="button warn" id="kill-now" disabled title="No invocation is running', html)
    op_client.post(reverse("executions:stop", args=[execution.pk]))
    assert_truthful(_settled(execution))


def test_a_heartbeat_keeps_the_deadline_on_the_card(op_client: Client, lam: Any) -> None:
    arn = lam.invoke(FunctionName="human-approval", InvocationType="Event", Payload=b'{"amount": 5}')[
        "DurableExecutionArn"
    ]
    execution = Execution.objects.get(arn=arn)
    callback = wait_until(
        lambda: Operation.objects.filter(execution=execution, type="CALLBACK", status="STARTED").first(),
        message="a pending callback",
    )
    url = reverse("executions:callback_action", args=[callback.pk, "heartbeat"])
    card = op_client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Heartbeat sent" in card and 'title="Times out at ' in card and "data-countdown" in card
    op_client.post(reverse("executions:stop", args=[execution.pk]))


def test_the_start_page_offers_each_demos_example_input(op_client: Client, lam: Any) -> None:
    html = op_client.get(reverse("executions:start"), {"function": "idempotency-keys"}).content.decode()
    examples = json.loads(re.search(r'id="example-inputs"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert json.loads(examples["idempotency-keys"]) == {"order": "o-17", "use_idempotency_key": True}
    assert "coming with the teaching lab" not in html and 'name="semantics"' not in html
