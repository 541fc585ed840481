"""What each page shows: list filters and keyset paging, the execution page, history, functions, audit."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from engine.contrib.django.models import Event, Operation
from executions import selectors
from tests.dashboard.seed import bulk_executions, delete_function_executions, seed_execution, writable

HTMX = {"HTTP_HX_REQUEST": "true"}


def names_in(response) -> list[str]:
    return [row.name for row in response.context["page"].rows]


@pytest.fixture
def many(unique: str):
    function = f"list-{unique}"
    bulk_executions(function=function, count=120)
    yield function
    delete_function_executions(function)


def test_list_pages_newest_first_with_keyset_cursors(op_client: Client, many: str) -> None:
    first = op_client.get(reverse("executions:list"), {"function": many})
    assert names_in(first) == [f"bulk-{i}" for i in range(1, 51)]
    older = first.context["page"].older
    second = op_client.get(reverse("executions:list"), {"function": many, "after": older})
    assert names_in(second) == [f"bulk-{i}" for i in range(51, 101)]
    third = op_client.get(reverse("executions:list"), {"function": many, "after": second.context["page"].older})
    assert names_in(third) == [f"bulk-{i}" for i in range(101, 121)]
    assert third.context["page"].older is None
    back = op_client.get(reverse("executions:list"), {"function": many, "before": third.context["page"].newer})
    assert names_in(back) == names_in(second)
    assert f"after={older}".encode() in first.content  # the pager links carry the cursor and the filters


def test_list_filters_by_status_name_search_and_time(op_client: Client, many: str) -> None:
    url = reverse("executions:list")
    failed = names_in(op_client.get(url, {"function": many, "status": "FAILED"}))
    assert failed and all(int(n.split("-")[1]) % 4 == 1 for n in failed)
    assert names_in(op_client.get(url, {"function": many, "name": "bulk-11"})) == [
        "bulk-11",
        "bulk-110",
        "bulk-111",
        "bulk-112",
        "bulk-113",
        "bulk-114",
        "bulk-115",
        "bulk-116",
        "bulk-117",
        "bulk-118",
        "bulk-119",
    ]
    assert names_in(op_client.get(url, {"q": f"{many}:$LATEST/durable-execution/bulk-7/"})) == ["bulk-7"]
    newest = datetime.now(UTC) - timedelta(hours=1)
    window = {
        "function": many,
        "from": (newest - timedelta(seconds=5.5)).strftime("%Y-%m-%dT%H:%M:%S"),
        "to": (newest - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    assert len(names_in(op_client.get(url, window))) in {3, 4}
    assert names_in(op_client.get(url, {"function": many, "since": "15m"})) == []


def test_list_htmx_request_returns_only_the_results_fragment(op_client: Client, many: str) -> None:
    response = op_client.get(reverse("executions:list"), {"function": many}, **HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="results"')
    assert "<html" not in body and "bulk-1" in body


def test_list_polls_for_live_status_when_rows_are_running(op_client: Client, unique: str) -> None:
    function = f"live-{unique}"
    seed_execution(function=function, operations=1, status="RUNNING")
    body = op_client.get(reverse("executions:list"), {"function": function}).content.decode()
    assert 'hx-trigger="every 3s' in body and "RUNNING" in body


def test_list_shows_counts_of_invocations_attempts_and_failures(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"counts-{unique}", operations=6, invocations=4)
    row = op_client.get(reverse("executions:list"), {"function": execution.function_name}).context["page"].rows[0]
    assert (row.invocation_count, row.attempt_count, row.failed_attempt_count) == (4, 8, 2)


def test_bad_cursor_falls_back_to_the_first_page(op_client: Client, many: str) -> None:
    response = op_client.get(reverse("executions:list"), {"function": many, "after": "not-a-cursor!"})
    assert names_in(response)[0] == "bulk-1"


def test_execution_page_shows_header_counters_tree_history_and_actions(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"page-{unique}", operations=4)
    body = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    for text in (
        execution.arn,
        "Wall time",
        "Billed time",
        "Suspended",
        "invocations",
        "attempts",
        "replays",
        "body runs",
        "checkpoints",
        "side effects",
        "step-3",
        "StepFailed",
        "Export history (JSON)",
        reverse("executions:timeline_data", args=[execution.pk]),
        "Run again (same input)",
    ):
        assert text in body, text
    assert 'id="op-' in body  # deep links to operation rows


def test_live_section_swaps_summary_in_place_and_the_rest_out_of_band(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"live-{unique}", operations=2)
    body = op_client.get(reverse("executions:section", args=[execution.pk, "live"]), **HTMX).content.decode()
    assert body.lstrip().startswith('<section id="summary"')
    for fragment in ("run-controls", "operations", "invocations"):
        assert re.search(rf'id="{fragment}"[^>]*hx-swap-oob="true"', body), fragment
    assert op_client.get(reverse("executions:section", args=[execution.pk, "nope"])).status_code == 404


def test_timeline_json_is_a_plotly_figure_with_status_and_version(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"tl-{unique}", operations=5)
    assert reverse("executions:timeline_data", args=[execution.pk]) == f"/executions/{execution.pk}/timeline.json"
    payload = op_client.get(reverse("executions:timeline_data", args=[execution.pk])).json()
    assert payload["status"] == "SUCCEEDED" and payload["running"] is False and payload["version"]
    assert payload["figure"]["layout"]["uirevision"] == execution.arn
    names = {trace["name"] for trace in payload["figure"]["data"]}
    assert {"Attempt failed", "Attempt succeeded", "Backoff before next attempt"} <= names


def test_long_execution_shows_one_window_of_rows_with_neighbour_links(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"win-{unique}", operations=400)
    url = reverse("executions:detail", args=[execution.pk])
    first = op_client.get(url).content.decode()
    assert first.count('<tr id="op-') == 150
    assert "Rows <b>1\N{EN DASH}150</b> of 400 operations" in first and "from=150" in first
    second = op_client.get(url, {"from": "150"}).content.decode()
    assert second.count('<tr id="op-') == 150
    assert ">step-150</a>" in second and ">step-0</a>" not in second
    assert "from=150" in second  # the chart and the live sections ask for the same window
    everything = op_client.get(url, {"rows": "500"}).content.decode()
    assert everything.count('<tr id="op-') == 400
    for bad in ({"from": "x"}, {"from": "-5", "rows": "7"}, {"rows": "99999999999"}):
        assert op_client.get(url, bad).content.decode().count('<tr id="op-') == 150, bad


def test_timeline_json_draws_the_window_and_counts_the_whole_execution(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"winj-{unique}", operations=400)
    url = reverse("executions:timeline_data", args=[execution.pk])
    first, last = op_client.get(url).json(), op_client.get(url, {"from": "300"}).json()
    assert len(first["figure"]["layout"]["yaxis"]["tickvals"]) == 151  # invocations lane + 150 rows
    assert len(last["figure"]["layout"]["yaxis"]["tickvals"]) == 101
    assert first["hidden_rows"] == 250 and last["hidden_rows"] == 300
    assert "rows 301 to 400 of 400" in last["figure"]["layout"]["annotations"][0]["text"]
    # Counters are over the whole execution whichever window is drawn: 400 steps, every third retried.
    assert first["counters"] == last["counters"]
    assert first["counters"]["attempts"] == 400 + 134 and first["counters"]["failed_attempts"] == 134
    whole = selectors.execution_timeline_data(execution=execution, limit=None)
    assert whole["counters"]["replays"] == first["counters"]["replays"] > 0


def test_operation_panel_shows_outcome_attempts_and_events_escaped(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"opd-{unique}", operations=4)
    operation = Operation.objects.get(execution=execution, name="step-3")
    operation.doc["StepDetails"]["Result"] = '"<script>alert(1)</script>"'
    writable(Operation).filter(pk=operation.pk).update(doc=operation.doc)
    url = reverse("executions:operation", args=[execution.pk, operation.op_id])
    panel = op_client.get(url, **HTMX).content.decode()
    assert panel.lstrip().startswith('<section class="card op-panel"')  # only the fragment for the drawer
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in panel and "<script>alert" not in panel
    assert "SeedError: first attempt fails" in panel  # step-3 failed its first attempt
    for text in ("a1", "a2", "StepStarted", "StepFailed", "StepSucceeded", "Replayed"):
        assert text in panel, text
    page = op_client.get(url).content.decode()
    assert "<html" in page and execution.name in page  # a deep link opens a whole page
    detail = op_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert f'hx-get="{url}"' in detail and 'id="op-drawer"' in detail
    missing = reverse("executions:operation", args=[execution.pk, "no-such-op"])
    assert op_client.get(missing).status_code == 404


def test_history_filters_by_type_and_pages(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"hist-{unique}", operations=120)
    url = reverse("executions:history", args=[execution.pk])
    steps = op_client.get(url, {"group": "Step"}, **HTMX).content.decode()
    types = set(re.findall(r'class="evtype [^"]*">(\w+)<', steps))
    assert types == {"StepStarted", "StepFailed", "StepSucceeded"}
    assert steps.count('class="evtype') == selectors.HISTORY_PAGE
    after = int(re.search(r"after=(\d+)&amp;group=Step", steps).group(1))
    more = op_client.get(url, {"group": "Step", "after": after}, **HTMX).content.decode()
    ids = [int(i) for i in re.findall(r'<td class="num">(\d+)</td>\s*<td><span class="evtype', more)]
    assert ids and min(ids) > after and "<table" not in more  # rows only, appended under the table
    execution_events = op_client.get(url, {"group": "Execution"}, **HTMX).content.decode()
    assert "ExecutionStartedDetails" in execution_events and ">StepStarted<" not in execution_events


def test_history_export_downloads_the_whole_history_as_json(op_client: Client, unique: str) -> None:
    execution = seed_execution(function=f"export-{unique}", operations=300)
    response = op_client.get(reverse("executions:history_export", args=[execution.pk]))
    assert response["Content-Disposition"].startswith("attachment;")
    document = json.loads(response.content)
    assert document["DurableExecutionArn"] == execution.arn
    assert len(document["Events"]) == Event.objects.filter(execution=execution).count()
    first = document["Events"][0]
    assert {"EventId", "EventType", "EventTimestamp", "Id", "Name"} <= set(first)
    assert [e["EventId"] for e in document["Events"]] == sorted(e["EventId"] for e in document["Events"])


def test_functions_page_lists_configuration_and_recent_executions(op_client: Client, unique: str) -> None:
    seed_execution(function="hello-steps", operations=1, name=f"recent-{unique}", started_at=datetime.now(UTC))
    body = op_client.get(reverse("executions:functions")).content.decode()
    assert "demos.hello.handler" in body and f"recent-{unique}" in body
    detail = op_client.get(reverse("executions:function", args=["hello-steps"])).content.decode()
    assert "Execution timeout" in detail and f"recent-{unique}" in detail


def test_empty_states_say_what_to_do(op_client: Client, unique: str) -> None:
    body = op_client.get(reverse("executions:list"), {"function": f"none-{unique}"}).content.decode()
    assert "No executions match these filters" in body
