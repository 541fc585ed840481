"""The timeline figure (Plotly's figure JSON), asserted on data built from replay-record shaped input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import pytest

from executions import charts

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def invocation(seq: int, start: float, end: float | None, outcome: str | None, reason: str = "start") -> dict[str, Any]:
    return {
        "seq": seq,
        "reason": reason,
        "started_at": at(start),
        "ended_at": at(end) if end is not None else None,
        "outcome": outcome,
        "error": None,
        "worker": "w",
        "pid": 1,
    }


def attempt(
    n: int, seq: int, start: float, end: float | None, outcome: str, delay: int | None = None
) -> dict[str, Any]:
    return {
        "attempt": n,
        "invocation_seq": seq,
        "started_at": at(start),
        "ended_at": at(end) if end is not None else None,
        "outcome": outcome,
        "error": {"ErrorType": "Boom", "ErrorMessage": "<b>bad</b>"} if outcome == "failed" else None,
        "next_attempt_delay": delay,
        "retrying": delay is not None,
    }


def operation(op_id: str, name: str, type_: str = "STEP", **fields: Any) -> dict[str, Any]:
    base = {
        "op_id": op_id,
        "parent_id": None,
        "name": name,
        "type": type_,
        "sub_type": type_.title(),
        "status": "SUCCEEDED",
        "started_at": at(1),
        "ended_at": at(2),
        "depth": 0,
        "callback_id": None,
        "attempts": [],
        "body_runs": [],
        "replays": [],
        "deadline": None,
    }
    return {**base, **fields}


def timeline(**overrides: Any) -> dict[str, Any]:
    data = {
        "execution": {
            "arn": "arn:test/1",
            "name": "x",
            "function_name": "f",
            "status": "SUCCEEDED",
            "input": None,
            "result": None,
            "error": None,
            "started_at": at(0),
            "ended_at": at(20),
            "time_scale": 1.0,
        },
        "invocations": [
            invocation(1, 0.5, 3, "suspended"),
            invocation(2, 5, 6, "killed", "retry_due"),
            invocation(3, 15, 20, "succeeded", "wait_elapsed"),
        ],
        "operations": [
            operation(
                "op-a",
                "charge-card",
                attempts=[attempt(1, 1, 1, 1.2, "failed", delay=3), attempt(2, 2, 5.1, 5.2, "succeeded")],
                body_runs=[
                    {"invocation_seq": 1, "attempt": 1, "started_at": at(1), "ended_at": at(1.1), "outcome": "failed"},
                    {"invocation_seq": 2, "attempt": 2, "started_at": at(5.05), "ended_at": None, "outcome": "killed"},
                ],
                replays=[{"invocation_seq": 3, "at": at(15)}],
            ),
            operation("op-w", "cool-down", "WAIT", started_at=at(5.5), ended_at=at(15), deadline=at(15)),
            operation(
                "op-k", "child", "STEP", parent_id="op-w", depth=1, attempts=[attempt(1, 3, 16, 16.1, "interrupted")]
            ),
            operation(
                "op-c",
                "<script>alert(1)</script>",
                "CALLBACK",
                status="TIMED_OUT",
                started_at=at(15.5),
                ended_at=at(19),
            ),
        ],
        "effects": [
            {
                "op_id": "op-a",
                "invocation_seq": 1,
                "attempt": 1,
                "at": at(1.05),
                "kind": "charge",
                "key": "o-1",
                "idempotency_key": None,
                "duplicate": False,
            },
            {
                "op_id": "op-a",
                "invocation_seq": 2,
                "attempt": 2,
                "at": at(5.15),
                "kind": "charge",
                "key": "o-1",
                "idempotency_key": None,
                "duplicate": True,
            },
        ],
        "faults": [
            {
                "kind": "kill",
                "step_name": "charge-card",
                "phase": "after_body",
                "armed_at": at(4),
                "fired_at": at(5.2),
                "invocation_seq": 2,
            }
        ],
        "counters": {},
    }
    data.update(overrides)
    return data


def traces_by_name(figure: Any) -> dict[str, dict[str, Any]]:
    return {trace["name"]: trace for trace in figure["data"]}


def test_invocations_lane_has_one_bar_per_invocation_with_outcome_and_reason() -> None:
    traces = traces_by_name(charts.timeline_figure(timeline(), now=at(30)))
    bars = [t for name, t in traces.items() if name.startswith("Invocation →") and t["type"] == "bar"]
    assert sorted(len(t["y"]) for t in bars) == [1, 1, 1]
    assert {t["name"] for t in bars} == {
        "Invocation → suspended",
        "Invocation → killed (fault)",
        "Invocation → succeeded",
    }
    assert all(set(t["y"]) == {charts.INVOCATIONS_ROW} for t in bars)
    killed = traces["Invocation → killed (fault)"]
    assert killed["text"][0].startswith("#2") and "retry_due" in killed["hovertext"][0]


def test_suspended_gaps_are_hatched_between_invocations() -> None:
    gaps = traces_by_name(charts.timeline_figure(timeline(), now=at(30)))["Suspended between invocations (not billed)"]
    assert len(gaps["y"]) == 1  # after #1; the gap after #2, killed, is a re-invoke (test_charts_crash.py)
    assert gaps["marker"]["pattern"]["shape"] == "/"


def test_attempts_are_labelled_and_coloured_by_outcome_with_backoff() -> None:
    traces = traces_by_name(charts.timeline_figure(timeline(), now=at(30)))
    assert traces["Attempt failed"]["text"] == ["a1"]
    assert traces["Attempt succeeded"]["text"] == ["a2"]
    assert traces["Attempt interrupted"]["text"] == ["a1"]
    assert traces["Attempt failed"]["marker"]["color"] != traces["Attempt succeeded"]["marker"]["color"]
    assert traces["Attempt failed"]["marker"]["pattern"]["shape"] == "x"  # readable without colour
    backoff = traces["Backoff before next attempt"]
    assert backoff["x"] == [(at(5.1) - at(1.2)).total_seconds() * 1000]  # failure → next attempt's start


def test_replays_body_runs_effects_and_faults_are_marked() -> None:
    traces = traces_by_name(charts.timeline_figure(timeline(), now=at(30)))
    replay = traces["Replayed from checkpoint (no code ran)"]
    assert replay["marker"]["symbol"] == "diamond-open" and len(replay["x"]) == 1
    assert len(traces["Step body ran (code executed)"]["x"]) == 1
    assert len(traces["Step body cut short (no result)"]["x"]) == 1
    assert traces["Duplicate side effect"]["text"] == ["dup"]
    assert traces["Duplicate side effect"]["marker"]["color"] == charts.VERMILLION
    assert len(traces["Side effect"]["x"]) == 1
    fault = traces["Injected fault (fired)"]
    assert fault["marker"]["symbol"] == "bowtie" and "after_body" in fault["hovertext"][0]


def test_waits_and_callbacks_are_spans_with_deadlines() -> None:
    traces = traces_by_name(charts.timeline_figure(timeline(), now=at(30)))
    assert traces["Wait (suspended, no compute)"]["marker"]["pattern"]["shape"] == "."
    assert "Callback failed / timed out" in traces
    assert traces["Scheduled end / timeout deadline"]["marker"]["symbol"] == "line-ns"


def test_rows_follow_the_operation_tree_and_escape_user_text() -> None:
    layout = charts.timeline_figure(timeline(), now=at(30))["layout"]
    labels = layout["yaxis"]["ticktext"]
    assert labels[0] == "<b>invocations</b>"
    assert labels[1].startswith("charge-card") and labels[2].startswith("cool-down") and "child" in labels[3]
    assert "&lt;script&gt;" in labels[4] and "<script>" not in labels[4]
    assert layout["yaxis"]["range"] == [4.5, -0.7]  # top to bottom: invocations first


def test_invocation_bands_and_uirevision_keep_zoom() -> None:
    layout = charts.timeline_figure(timeline(), now=at(30))["layout"]
    assert layout["uirevision"] == "arn:test/1"
    bands = [s for s in layout["shapes"] if s["type"] == "rect"]
    assert len(bands) == 3 and all(b["layer"] == "below" and b["yref"] == "paper" for b in bands)


def test_running_execution_extends_open_bars_to_now() -> None:
    data = timeline()
    data["execution"] = {**data["execution"], "status": "RUNNING", "ended_at": None}
    data["invocations"][-1]["ended_at"] = None
    data["invocations"][-1]["outcome"] = None
    figure = charts.timeline_figure(data, now=at(40))
    running = traces_by_name(figure)["Invocation running"]
    assert running["x"][0] == (at(40) - at(15)).total_seconds() * 1000
    assert any(s["type"] == "line" for s in figure["layout"]["shapes"])  # the "now" line


def test_finished_execution_closes_open_attempts_at_its_end() -> None:
    data = timeline()
    data["operations"][0]["attempts"].append(attempt(3, 3, 16, None, "running"))
    traces = traces_by_name(charts.timeline_figure(data, now=at(500)))
    unfinished = traces["Attempt never finished (execution ended)"]
    assert unfinished["x"][0] == (at(20) - at(16)).total_seconds() * 1000


def test_idle_rangebreaks_cut_long_gaps_only() -> None:
    breaks = charts.idle_rangebreaks(timeline(), now=at(30))
    assert len(breaks) == 1  # 3 s → 5 s and 0 → 0.5 s are short enough to keep; 6 s → 15 s is cut
    assert breaks[0]["values"] == ["2026-01-01 12:00:06.500"]
    assert breaks[0]["dvalue"] == 8000


def test_rows_are_capped_and_the_rest_counted() -> None:
    many = [operation(f"op-{i}", f"s{i}") for i in range(300)]
    data = timeline(operations=many, effects=[], faults=[])
    figure = charts.timeline_figure(data, now=at(30), max_rows=50)
    assert len(figure["layout"]["yaxis"]["tickvals"]) == 51
    assert "rows 1 to 50 of 300 operations" in figure["layout"]["annotations"][0]["text"]
    assert charts.hidden_rows(data, 50) == 250


def test_a_later_window_is_shown_over_its_own_time_span() -> None:
    rows = [
        operation(f"op-{i}", f"s{i}", started_at=at(10 + i * 0.01), ended_at=at(10.005 + i * 0.01)) for i in range(50)
    ]
    data = timeline(operations=rows, operation_count=500, offset=300, effects=[], faults=[])
    layout = charts.timeline_figure(data, now=at(30), max_rows=50)["layout"]
    start, end = layout["xaxis"]["range"]
    assert "12:00:09.9" in start and "12:00:10.5" in end  # not the execution's 0 s to 20 s
    assert "rows 301 to 350 of 500 operations" in layout["annotations"][0]["text"]


def test_thousands_of_invocations_draw_the_visible_ones_and_say_so() -> None:
    invocations = [invocation(seq, seq * 0.004, seq * 0.004 + 0.002, "suspended") for seq in range(1, 3001)]
    replayed = operation("op-1", "early", ended_at=at(0.003))
    replayed["replays"] = [{"invocation_seq": i["seq"], "at": i["started_at"]} for i in invocations[1:101]]
    replayed["replay_count"] = 2999
    data = timeline(invocations=invocations, operations=[replayed], effects=[], faults=[])
    figure = charts.timeline_figure(data, now=at(30))
    lane = next(t for t in figure["data"] if t["name"] == "Invocation → suspended")
    assert len(lane["y"]) == charts.MAX_INVOCATIONS
    bands = [s for s in figure["layout"]["shapes"] if s["type"] == "rect"]
    assert len(bands) == charts.MAX_INVOCATIONS  # one band per drawn invocation
    assert any("400 of 3,000 invocations drawn" in a["text"] for a in figure["layout"]["annotations"])
    diamonds = next(t for t in figure["data"] if t["name"].startswith("Replayed"))
    assert len(diamonds["x"]) == 100 and "2,899 other replays" in diamonds["hovertext"][-1]


def _running(data: dict[str, Any]) -> dict[str, Any]:
    data["execution"] = {**data["execution"], "status": "RUNNING", "ended_at": None}
    data["invocations"][-1].update(ended_at=None, outcome=None)
    return data


@pytest.mark.parametrize(
    "data",
    [
        timeline(),
        _running(timeline()),
        timeline(operations=[operation(f"op-{i}", f"s{i}") for i in range(300)], effects=[], faults=[]),
        _running(timeline(invocations=[invocation(1, 0.5, 3, "suspended")], operations=[], effects=[], faults=[])),
        timeline(pauses=[{"paused_at": at(4), "resumed_at": at(6)}]),
    ],
    ids=["finished", "running", "300 operations", "no operations yet", "paused once"],
)
def test_the_figure_is_json_that_plotlys_validation_accepts_unchanged(data: dict[str, Any]) -> None:
    figure = charts.timeline_figure(data, now=at(40), max_rows=50)
    validated = go.Figure(figure).to_dict()  # raises on any property Plotly does not know
    assert json.loads(json.dumps(validated)) == json.loads(json.dumps(figure))


def test_an_attempt_over_two_invocations_is_cut_at_the_first_ones_end() -> None:
    cut = {"invocation_seq": 1, "started_at": at(1), "ended_at": at(3), "outcome": "cut_short"}
    rest = {"invocation_seq": 2, "started_at": at(5), "ended_at": at(6), "outcome": "succeeded"}
    a1 = {**attempt(1, 1, 1, 6, "succeeded"), "segments": [cut, rest]}
    data = timeline(
        invocations=[invocation(1, 0, 3, "killed"), invocation(2, 4.9, 7, "succeeded", "recovery")],
        operations=[operation("s1", "charge", attempts=[a1], started_at=at(1), ended_at=at(6))],
    )
    traces = traces_by_name(charts.timeline_figure(data, now=at(30)))
    cut_bars, done_bars = traces["Attempt cut short (its invocation ended)"], traces["Attempt succeeded"]
    assert (cut_bars["base"], cut_bars["x"], cut_bars["text"]) == (["2026-01-01 12:00:01.000"], [2000.0], ["a1"])
    assert (done_bars["base"], done_bars["x"]) == (["2026-01-01 12:00:05.000"], [1000.0])


# --- readability (issue #22, point 13) -------------------------------------------------------

BAD_ENDINGS = {
    "Invocation → failed": ("inv", "failed"),
    "Invocation → timed out": ("inv", "timed_out"),
    "Invocation → killed (fault)": ("inv", "killed"),
    "Attempt interrupted": ("attempt", "interrupted"),
    "Attempt cut short (its invocation ended)": ("attempt", "cut_short"),
    "Attempt never finished (execution ended)": ("attempt", "unfinished"),
    "Step body cut short (no result)": ("body", "cut"),
}


def _every_bad_ending() -> dict[str, Any]:
    """One execution with each way a run can end badly: the shades that used to be all orange."""
    cut = {"invocation_seq": 2, "started_at": at(5), "ended_at": at(6), "outcome": "cut_short"}
    steps = [
        operation("s1", "cut", attempts=[{**attempt(1, 2, 5, 6, "succeeded"), "segments": [cut]}]),
        operation("s2", "interrupted", attempts=[attempt(1, 3, 7, 7.5, "interrupted")]),
        operation("s3", "open", attempts=[attempt(1, 4, 16, None, "running")]),
        operation(
            "s4",
            "cut-body",
            body_runs=[{"invocation_seq": 2, "attempt": 1, "started_at": at(5), "ended_at": None, "outcome": "killed"}],
        ),
    ]
    invocations = [
        invocation(1, 0, 3, "failed"),
        invocation(2, 4, 6, "killed"),
        invocation(3, 6.5, 8, "timed_out"),
        invocation(4, 15, 20, "succeeded"),
    ]
    return timeline(invocations=invocations, operations=steps, effects=[], faults=[])


def test_each_bad_ending_has_its_own_colour_and_a_pattern() -> None:
    traces = traces_by_name(charts.timeline_figure(_every_bad_ending(), now=at(30)))
    assert set(BAD_ENDINGS) <= set(traces)
    colours = {name: traces[name]["marker"]["color"] for name in BAD_ENDINGS}
    assert len(set(colours.values())) == len(BAD_ENDINGS), colours
    assert charts.GREEN not in colours.values() and charts.BLUE not in colours.values()
    patterned = [n for n in BAD_ENDINGS if not n.startswith("Step body")]  # body runs are too thin to hatch
    assert all(traces[name]["marker"]["pattern"]["shape"] for name in patterned)


def test_legend_labels_are_plain_words() -> None:
    figure = charts.timeline_figure(_every_bad_ending(), now=at(30))
    for trace in figure["data"]:
        if trace["showlegend"]:
            assert "<" not in trace["name"] and "_" not in trace["name"], trace["name"]


def test_a_5_ms_invocation_in_a_60_s_window_is_wide_enough_to_see_and_hover_says_5_ms() -> None:
    data = timeline(
        invocations=[invocation(1, 0, 0.005, "suspended"), invocation(2, 60, 60.2, "succeeded")],
        operations=[operation("s", "quick", attempts=[attempt(1, 1, 0, 0.005, "succeeded")])],
        effects=[],
        faults=[],
    )
    data["execution"]["ended_at"] = at(60.2)
    traces = traces_by_name(charts.timeline_figure(data, now=at(70)))
    minimum = 60_200 * charts.MIN_BAR_SHARE
    quick_invocation = traces["Invocation → suspended"]
    assert quick_invocation["x"] == [pytest.approx(minimum)] and minimum > 300
    assert "5 ms" in quick_invocation["hovertext"][0]
    quick_attempt = traces["Attempt succeeded"]
    assert quick_attempt["x"] == [pytest.approx(minimum)] and "5 ms" in quick_attempt["hovertext"][0]


def test_labels_that_do_not_fit_are_hidden_not_spilled() -> None:
    figure = charts.timeline_figure(timeline(), now=at(30))
    assert figure["layout"]["uniformtext"] == {"mode": "hide", "minsize": 9}
    assert {t["textposition"] for t in figure["data"] if t["type"] == "bar"} == {"inside"}


def test_idle_breaks_have_a_dashed_marker_and_say_how_long() -> None:
    layout = charts.timeline_figure(timeline(), now=at(30))["layout"]
    (line,) = [s for s in layout["shapes"] if s.get("name") == charts.IDLE_BREAK]
    (note,) = [a for a in layout["annotations"] if a.get("name") == charts.IDLE_BREAK]
    cut = charts.idle_rangebreaks(timeline(), now=at(30))[0]["values"][0]
    assert line["x0"] == line["x1"] == note["x"] == cut and line["line"]["dash"] == "dash"
    assert note["text"] == "⋯ 9.00 s idle ⋯"  # 6 s → 15 s with no invocation
    assert line["visible"] is False and note["visible"] is False  # until "Compress idle time" is on


def test_the_full_row_name_is_in_the_rows_tooltip_and_every_marks_hover() -> None:
    long_name = "validate-the-customer-address-against-the-postal-registry"
    data = timeline(
        operations=[operation("s", long_name, attempts=[attempt(1, 1, 1, 1.2, "failed")])], effects=[], faults=[]
    )
    figure = charts.timeline_figure(data, now=at(30))
    assert figure["layout"]["yaxis"]["ticktext"][1].endswith("…")  # the label is cut …
    assert figure["layout"]["meta"]["row_names"] == {"r0": f"{long_name} · step"}  # … its tooltip is not
    assert long_name in traces_by_name(figure)["Attempt failed"]["hovertext"][0]


def test_sdk_errors_are_said_in_plain_words_with_the_name_kept() -> None:
    error = {
        "ErrorType": "aws_durable_execution_sdk_python.exceptions.StepInterruptedError",
        "ErrorMessage": "step 2 was interrupted",
    }
    said = charts.plain_error(error)
    assert said.startswith("the step was interrupted") and "(StepInterruptedError)" in said
    assert "aws_durable_execution_sdk_python" not in said
    assert charts.plain_error({"ErrorType": "Runtime.HandlerNotFound", "ErrorMessage": ""}).endswith(
        "(Runtime.HandlerNotFound)"
    )
    assert charts.plain_error({"ErrorType": "Boom", "ErrorMessage": "<b>bad</b>"}) == "Boom: &lt;b&gt;bad&lt;/b&gt;"


def test_pauses_are_drawn_on_the_invocations_lane_until_resumed_or_the_end() -> None:
    data = timeline(pauses=[{"paused_at": at(4), "resumed_at": at(6)}, {"paused_at": at(8), "resumed_at": None}])
    paused = traces_by_name(charts.timeline_figure(data, now=at(30)))[charts.PAUSED_NAME]
    assert paused["y"] == [charts.INVOCATIONS_ROW, charts.INVOCATIONS_ROW]
    assert "(resumed)" in paused["hovertext"][0] and "ended while paused" in paused["hovertext"][1]
    assert "no invocation while paused" in paused["hovertext"][0]
    assert "Paused" not in str(traces_by_name(charts.timeline_figure(timeline(), now=at(30))))
