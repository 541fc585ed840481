"""Lab figures: aligned small-multiple timelines, retry schedules planned vs actual, async attempts.

Small multiples put every variant on the same x axis (seconds since *its own* start) and the same
rows in the same order, so a difference between two panels is a difference between the runs.
Colours, patterns and marker shapes are the dashboard's (``executions.charts``), so a reader of
one chart can read the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine import async_invoke
from engine.rows import ATTEMPT_FAILED, BODY_RUN_COMPLETE, OPERATION_ENDED, OperationStatus
from executions.charts import (
    ATTEMPT_STYLE,
    BLUE,
    BODY_CUT_COLOUR,
    DARK_FILLS,
    GREEN,
    GREY,
    INK,
    INVOCATION_PATTERN,
    INVOCATION_STYLE,
    LIGHT_GREY,
    MIN_BAR_SHARE,
    ORANGE,
    PURPLE,
    QUEUED_NAME,
    SKY,
    VERMILLION,
    esc,
    fault_phase,
    plain_error,
)
from lab import retry_plan

INVOCATIONS = "invocations"
ROW_PX = 24
PANEL_PAD_PX = 46
FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12, "color": INK}


@dataclass(frozen=True)
class Panel:
    """One variant's run: a title, its replay record, and the retry strategy it ran with."""

    title: str
    data: dict[str, Any] | None
    retry: dict[str, Any] = field(default_factory=dict)
    time_scale: float = 1.0


def row_key(op: dict[str, Any]) -> str:
    return str(op["name"] or op["type"].lower())


def shared_rows(panels: list[Panel]) -> list[str]:
    """Every operation row of every panel, in first-seen order: one row order for all panels."""
    keys: dict[str, None] = {INVOCATIONS: None}
    for panel in panels:
        for op in (panel.data or {}).get("operations") or []:  # in tree order, from the engine
            keys.setdefault(row_key(op), None)
    return list(keys)


class Traces:
    """Traces of one figure by meaning; each meaning gets one legend entry across all panels."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, int], dict[str, Any]] = {}
        self.legend_shown: set[str] = set()

    def add(self, meaning: str, panel: int, kind: str, style: dict[str, Any], **point: Any) -> None:
        key = (meaning, panel)
        if key not in self.items:
            self.items[key] = {"kind": kind, "style": style, "points": []}
        self.items[key]["points"].append(point)

    def build(self, figure: go.Figure, *, min_length: float = 0.0) -> None:
        """Add the traces; bars shorter than ``min_length`` seconds are drawn that long (hover says the truth)."""
        for (meaning, panel), item in self.items.items():
            show = meaning not in self.legend_shown
            self.legend_shown.add(meaning)
            trace = _bar(meaning, item, min_length) if item["kind"] == "bar" else _marks(meaning, item)
            trace.update(showlegend=show, legendgroup=meaning)
            figure.add_trace(trace, row=panel + 1, col=1)


def _bar(name: str, item: dict[str, Any], min_length: float) -> go.Bar:
    style, points = item["style"], item["points"]
    marker: dict[str, Any] = {
        "color": style["colour"],
        "opacity": style.get("opacity", 1.0),
        "line": {"color": style.get("outline", "rgba(0,0,0,0.35)"), "width": 1},
    }
    if style.get("pattern"):
        marker["pattern"] = {"shape": style["pattern"], "fgcolor": INK, "fgopacity": 0.45, "size": 6, "solidity": 0.25}
    return go.Bar(
        name=name,
        orientation="h",
        y=[p["row"] for p in points],
        base=[p["start"] for p in points],
        x=[max(p["length"], style.get("min_length", 0.0), min_length) for p in points],
        width=style.get("width", 0.55),
        offset=style.get("offset"),
        marker=marker,
        text=[p.get("text", "") for p in points],
        textposition="inside",
        insidetextanchor="middle",
        textangle=0,
        textfont={"size": 10, "color": "#ffffff" if style["colour"] in DARK_FILLS else INK},
        hovertext=[p["hover"] for p in points],
        hoverinfo="text",
        cliponaxis=True,
    )


def _marks(name: str, item: dict[str, Any]) -> go.Scatter:
    style, points = item["style"], item["points"]
    texts = [p.get("text", "") for p in points]
    return go.Scatter(
        name=name,
        mode="markers+text" if any(texts) else "markers",
        y=[p["row"] for p in points],
        x=[p["at"] for p in points],
        text=texts,
        textposition="top center",
        textfont={"size": 9, "color": style["colour"]},
        marker={
            "symbol": style["symbol"],
            "size": style.get("size", 10),
            "color": style["colour"],
            "line": {"color": style["colour"], "width": style.get("line_width", 1.5)},
        },
        hovertext=[p["hover"] for p in points],
        hoverinfo="text",
        cliponaxis=False,
    )


# --- small multiples --------------------------------------------------------------------------


def small_multiples(panels: list[Panel], *, now: datetime) -> go.Figure:
    """Aligned timelines, one panel per variant: x = seconds since that run started, same rows everywhere."""
    rows = shared_rows(panels)
    figure = make_subplots(
        rows=max(1, len(panels)),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.3 / max(1, len(panels))),
        subplot_titles=[esc(p.title) for p in panels] or [""],
    )
    traces = Traces()
    longest = 1.0
    for index, panel in enumerate(panels):
        if panel.data is not None:
            longest = max(longest, _draw_panel(traces, index, panel, now))
    traces.build(figure, min_length=longest * MIN_BAR_SHARE)
    _layout(figure, panels, rows, longest)
    return figure


def _duration(seconds: float) -> str:
    """The true length, for hover texts (a short bar is drawn wider than it was)."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _elapsed(panel: Panel, moment: datetime | None, now: datetime) -> float:
    assert panel.data is not None
    return ((moment or now) - panel.data["execution"]["started_at"]).total_seconds()


def _draw_panel(traces: Traces, index: int, panel: Panel, now: datetime) -> float:
    assert panel.data is not None
    data = panel.data
    _draw_invocations(traces, index, panel, now)
    for op in data["operations"]:
        if op["type"] == "STEP":
            _draw_attempts(traces, index, panel, op, now)
            _draw_body_runs(traces, index, panel, op, now)
        else:
            _draw_span(traces, index, panel, op, now)
        _draw_replays(traces, index, panel, op)
    _draw_effects(traces, index, panel)
    _draw_faults(traces, index, panel)
    end = data["execution"]["ended_at"] or now
    return _elapsed(panel, end, now)


def _draw_invocations(traces: Traces, index: int, panel: Panel, now: datetime) -> None:
    assert panel.data is not None
    for inv in panel.data["invocations"]:
        if inv.get("queued_at") is not None:
            _draw_queued(traces, index, panel, inv, now)
        outcome = inv["outcome"] or ("running" if inv["ended_at"] is None else "failed")
        name, colour, _symbol = INVOCATION_STYLE.get(outcome, (f"Invocation → {outcome}", VERMILLION, "x"))
        start, end = _elapsed(panel, inv["started_at"], now), _elapsed(panel, inv["ended_at"], now)
        error = inv.get("error") or {}
        hover = (
            f"<b>invocation #{inv['seq']}</b> ({esc(inv['reason'])}) → {esc(outcome)}<br>"
            f"{_duration(end - start)} · +{start:.2f} s … +{end:.2f} s"
        )
        if error:
            hover += f"<br>{plain_error(error)}"
        traces.add(
            name,
            index,
            "bar",
            {"colour": colour, "pattern": INVOCATION_PATTERN.get(outcome, ""), "width": 0.6},
            row=INVOCATIONS,
            start=start,
            length=end - start,
            text=f"#{inv['seq']}",
            hover=hover,
        )


def _draw_queued(traces: Traces, index: int, panel: Panel, inv: dict[str, Any], now: datetime) -> None:
    start, end = _elapsed(panel, inv["queued_at"], now), _elapsed(panel, inv["started_at"], now)
    traces.add(
        QUEUED_NAME,
        index,
        "bar",
        {"colour": GREY, "pattern": "+", "width": 0.3, "opacity": 0.6},
        row=INVOCATIONS,
        start=start,
        length=end - start,
        text="",
        hover=f"invocation #{inv['seq']} queued for a worker for {_duration(end - start)}: nothing ran, nothing billed",
    )


def _draw_attempts(traces: Traces, index: int, panel: Panel, op: dict[str, Any], now: datetime) -> None:
    plan = {p.after_attempt: p for p in retry_plan.planned_retries(panel.retry)} if panel.retry else {}
    for attempt in op["attempts"]:
        for segment in attempt.get("segments") or [attempt]:
            _draw_attempt_segment(traces, index, panel, op, attempt, segment, now)
        end = _elapsed(panel, attempt["ended_at"], now)
        planned = plan.get(attempt["attempt"])
        if planned is not None and attempt["outcome"] in ATTEMPT_FAILED and attempt["ended_at"] is not None:
            _draw_planned_window(traces, index, panel, op, end, planned)


def _draw_attempt_segment(
    traces: Traces,
    index: int,
    panel: Panel,
    op: dict[str, Any],
    attempt: dict[str, Any],
    segment: dict[str, Any],
    now: datetime,
) -> None:
    """The share of an attempt one invocation ran (an attempt cut by a kill goes on in the next)."""
    outcome = segment["outcome"]
    name, colour, pattern = ATTEMPT_STYLE.get(outcome, ATTEMPT_STYLE["failed"])
    start, end = _elapsed(panel, segment["started_at"], now), _elapsed(panel, segment["ended_at"], now)
    hover = (
        f"<b>{esc(row_key(op))}</b> attempt {attempt['attempt']}: {esc(outcome.replace('_', ' '))}"
        f" (invocation #{segment['invocation_seq']}) · {_duration(end - start)}"
    )
    error = attempt.get("error") or {}
    if error and outcome == attempt["outcome"]:
        hover += f"<br>{plain_error(error)}"
    traces.add(
        name,
        index,
        "bar",
        {"colour": colour, "pattern": pattern, "width": 0.5, "offset": -0.3},
        row=row_key(op),
        start=start,
        length=end - start,
        text=f"a{attempt['attempt']}",
        hover=hover,
    )


def _draw_planned_window(
    traces: Traces, index: int, panel: Panel, op: dict[str, Any], failed_at: float, planned: retry_plan.PlannedRetry
) -> None:
    """Where the strategy plans the next attempt: ``low … high`` seconds after the failure, scaled."""
    low, high = failed_at + planned.low * panel.time_scale, failed_at + planned.high * panel.time_scale
    hover = (
        f"<b>planned retry</b> after attempt {planned.after_attempt}: {planned.label}"
        f"{' (jitter)' if planned.low != planned.high else ''}<br>\N{MULTIPLICATION SIGN} time scale {panel.time_scale:g} → "
        f"+{low:.2f} … +{high:.2f} s"
    )
    traces.add(
        "Planned next attempt (strategy)",
        index,
        "bar",
        {
            # Grey like the dashboard's backoff bar (a delay, not an outcome); pink is "cut short".
            "colour": GREY,
            "opacity": 0.35,
            "width": 0.5,
            "offset": -0.3,
            "min_length": 0.03,
            "outline": GREY,
            "pattern": "|",
        },
        row=row_key(op),
        start=low,
        length=high - low,
        text="",
        hover=hover,
    )


def _draw_body_runs(traces: Traces, index: int, panel: Panel, op: dict[str, Any], now: datetime) -> None:
    for run in op.get("body_runs") or []:
        start, end = _elapsed(panel, run["started_at"], now), _elapsed(panel, run["ended_at"], now)
        complete = run["ended_at"] is not None and run["outcome"] in BODY_RUN_COMPLETE
        name, colour = ("Step body ran", INK) if complete else ("Step body cut short", BODY_CUT_COLOUR)
        hover = (
            f"<b>{esc(row_key(op))}</b> body ran in invocation #{run['invocation_seq']} (attempt {run['attempt']}):"
            f" {esc(run['outcome'])} · {_duration(end - start)}"
        )
        traces.add(
            name,
            index,
            "bar",
            {"colour": colour, "width": 0.14, "offset": 0.24, "outline": "rgba(0,0,0,0)"},
            row=row_key(op),
            start=start,
            length=end - start,
            hover=hover,
        )


def _draw_span(traces: Traces, index: int, panel: Panel, op: dict[str, Any], now: datetime) -> None:
    colours = {
        "WAIT": (SKY, "."),
        "CALLBACK": (PURPLE, "-"),
        "CONTEXT": (LIGHT_GREY, ""),
        "CHAINED_INVOKE": (ORANGE, "+"),
    }
    colour, pattern = colours.get(op["type"], (LIGHT_GREY, ""))
    failed = op["status"] in OPERATION_ENDED - {OperationStatus.SUCCEEDED}
    start, end = _elapsed(panel, op["started_at"], now), _elapsed(panel, op["ended_at"], now)
    name = f"{op['type'].replace('_', ' ').title()}{' failed / timed out' if failed else ''}"
    hover = f"<b>{esc(row_key(op))}</b> ({esc(op.get('sub_type') or op['type'])}) {esc(op['status'])}"
    traces.add(
        name,
        index,
        "bar",
        {
            "colour": VERMILLION if failed else colour,
            "pattern": pattern,
            "width": 0.5,
            "offset": -0.3,
            "opacity": 0.7,
        },
        row=row_key(op),
        start=start,
        length=end - start,
        hover=hover,
    )


def _draw_replays(traces: Traces, index: int, panel: Panel, op: dict[str, Any]) -> None:
    for replay in op["replays"]:
        at = _elapsed(panel, replay["at"], replay["at"])
        traces.add(
            "Replayed from checkpoint",
            index,
            "marks",
            {"colour": BLUE, "symbol": "diamond-open", "size": 9},
            row=row_key(op),
            at=at,
            hover=f"<b>{esc(row_key(op))}</b> replayed by invocation #{replay['invocation_seq']}: no code ran",
        )


def _draw_effects(traces: Traces, index: int, panel: Panel) -> None:
    assert panel.data is not None
    rows = {op["op_id"]: row_key(op) for op in panel.data["operations"]}
    for effect in panel.data.get("effects") or []:
        at = _elapsed(panel, effect["at"], effect["at"])
        row = rows.get(effect.get("op_id") or "", INVOCATIONS)
        hover = f"<b>side effect</b> {esc(effect['kind'])}: {esc(effect['key'])} (invocation #{effect.get('invocation_seq')}, attempt {effect.get('attempt')})"
        if not effect.get("performed", True):
            traces.add(
                "Side effect skipped (idempotency key)",
                index,
                "marks",
                {"colour": GREY, "symbol": "circle-open", "size": 10},
                row=row,
                at=at,
                hover=hover + "<br>idempotency key already used: not performed again",
            )
        elif effect.get("duplicate"):
            traces.add(
                "Duplicate side effect",
                index,
                "marks",
                {"colour": VERMILLION, "symbol": "x-thin-open", "size": 14, "line_width": 3},
                row=row,
                at=at,
                text="dup",
                hover=hover + "<br><b>DUPLICATE</b>",
            )
        else:
            traces.add(
                "Side effect",
                index,
                "marks",
                {"colour": GREEN, "symbol": "x-thin-open", "size": 11, "line_width": 2},
                row=row,
                at=at,
                hover=hover,
            )


def _draw_faults(traces: Traces, index: int, panel: Panel) -> None:
    assert panel.data is not None
    names = {row_key(op) for op in panel.data["operations"]}
    for fault in panel.data.get("faults") or []:
        if fault.get("fired_at") is None:
            continue
        row = fault.get("step_name") if fault.get("step_name") in names else INVOCATIONS
        at = _elapsed(panel, fault["fired_at"], fault["fired_at"])
        traces.add(
            "Injected fault (kill)",
            index,
            "marks",
            {"colour": VERMILLION, "symbol": "bowtie", "size": 13},
            row=row,
            at=at,
            text="kill",
            hover=f"<b>injected fault</b> at {esc(fault.get('step_name') or '')} · {fault_phase(fault.get('phase') or '')}",
        )


def _layout(figure: go.Figure, panels: list[Panel], rows: list[str], longest: float) -> None:
    labels = ["<b>invocations</b>" if r == INVOCATIONS else esc(r if len(r) <= 28 else r[:27] + "…") for r in rows]
    for index in range(max(1, len(panels))):
        figure.update_yaxes(
            type="category",
            categoryorder="array",
            categoryarray=rows,
            tickmode="array",
            tickvals=rows,
            ticktext=labels,
            autorange="reversed",
            fixedrange=True,
            range=[len(rows) - 0.5, -0.5],
            showgrid=True,
            gridcolor="#f1f2f4",
            row=index + 1,
            col=1,
        )
    figure.update_xaxes(
        range=[-longest * 0.01, longest * 1.03],
        showgrid=True,
        gridcolor="#eef0f3",
        zeroline=True,
        zerolinecolor="#c8cdd4",
        ticksuffix=" s",
    )
    figure.update_xaxes(title_text="seconds since each execution started", row=max(1, len(panels)), col=1)
    figure.update_annotations(font_size=12, xanchor="left", x=0)
    # The margins (110 px at the top for the legend and the first title, 50 at the bottom) come on
    # top of the panels: a plot area of zero or less makes Plotly throw "axis scaling" (one
    # variant that has drawn only its invocations row was 10 px short).
    height = 160 + max(1, len(panels)) * (len(rows) * ROW_PX + PANEL_PAD_PX)
    figure.update_layout(
        height=height,
        barmode="overlay",
        hovermode="closest",
        margin={"l": 10, "r": 20, "t": 60, "b": 50},
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        font=FONT,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "yref": "container", "x": 0, "font": {"size": 11}},
        uirevision="lab",
        # Labels that do not fit inside their bar are hidden, not spilled over the next one.
        uniformtext={"mode": "hide", "minsize": 9},
        # The untruncated row names, by category index: lab.js puts them in the row labels' tooltips.
        # lab.js fits the top margin to the legend's lines at the page's width (many on a phone):
        # 40 px for the first panel's title, and the height without the legend.
        meta={"row_names": [esc(r) for r in rows], "legend_fit": {"top": 40, "height": height - 70}},
    )
    figure.update_layout(legend={"y": 1.0, "yanchor": "top", "yref": "container"}, margin={"t": 110})


# --- retry schedules --------------------------------------------------------------------------


def retry_schedule(rows: list[Any]) -> go.Figure:
    """Per variant: each retry's planned delay (a range under jitter) against the delay really taken."""
    cols = min(4, max(1, len(rows)))
    nrows = (len(rows) + cols - 1) // cols or 1
    figure = make_subplots(
        rows=nrows,
        cols=cols,
        shared_yaxes=False,
        horizontal_spacing=0.06,
        vertical_spacing=0.18 if nrows > 1 else 0.1,
        subplot_titles=[esc(_short(r.variant.label)) for r in rows] or [""],
    )
    shown: set[str] = set()
    for index, row in enumerate(rows):
        _retry_panel(figure, row, index // cols + 1, index % cols + 1, shown)
    figure.update_xaxes(dtick=1, title_text="after attempt", title_font_size=11)
    scale = rows[0].time_scale if rows else 1.0
    figure.update_yaxes(
        title_text=f"seconds at \N{MULTIPLICATION SIGN}{scale:g}", title_font_size=11, rangemode="tozero"
    )
    figure.update_annotations(font_size=11)
    figure.update_layout(
        height=130 + 230 * nrows,
        barmode="overlay",
        margin={"l": 10, "r": 20, "t": 90, "b": 40},
        font=FONT,
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        hovermode="closest",
        legend={"orientation": "h", "y": 1.0, "yanchor": "top", "yref": "container", "x": 0, "font": {"size": 11}},
    )
    return figure


def _short(label: str, limit: int = 46) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _retry_panel(figure: go.Figure, row: Any, r: int, c: int, shown: set[str]) -> None:
    """Everything in real seconds at the comparison's time scale, so the measured gap is comparable."""
    scale = row.time_scale
    planned = row.planned
    if planned:
        # Without jitter the plan is one value: a thin band centred on it keeps it visible.
        pad = 0.03 * max(p.high for p in planned) * scale
        low = [p.low * scale - (pad if p.low == p.high else 0) for p in planned]
        high = [p.high * scale + (pad if p.low == p.high else 0) for p in planned]
        _add(
            figure,
            shown,
            r,
            c,
            go.Bar(
                name="Planned delay \N{MULTIPLICATION SIGN} time scale (range = jitter)",
                x=[p.after_attempt for p in planned],
                base=low,
                y=[h - lo for lo, h in zip(low, high, strict=True)],
                width=0.5,
                marker={"color": GREY, "opacity": 0.35, "line": {"color": GREY, "width": 1}},
                hovertext=[
                    f"after attempt {p.after_attempt}: planned {p.label} \N{MULTIPLICATION SIGN} {scale:g}"
                    for p in planned
                ],
                hoverinfo="text",
            ),
        )
    chosen = [a for a in row.actual if a.chosen_delay is not None]
    if chosen:
        _add(
            figure,
            shown,
            r,
            c,
            go.Scatter(
                name="Delay the strategy chose \N{MULTIPLICATION SIGN} time scale",
                mode="markers",
                x=[a.after_attempt for a in chosen],
                y=[a.chosen_delay * scale for a in chosen],
                marker={"symbol": "line-ew-open", "size": 18, "color": INK, "line": {"width": 3}},
                hovertext=[
                    f"after attempt {a.after_attempt}: strategy chose {a.chosen_delay} s → {a.chosen_delay * scale:g} s"
                    for a in chosen
                ],
                hoverinfo="text",
            ),
        )
    measured = [a for a in row.actual if a.gap_seconds is not None]
    if measured:
        _add(
            figure,
            shown,
            r,
            c,
            go.Scatter(
                name="Measured: failure → next attempt",
                mode="markers",
                x=[a.after_attempt for a in measured],
                y=[a.gap_seconds for a in measured],
                marker={"symbol": "diamond", "size": 10, "color": ORANGE},
                hovertext=[
                    f"after attempt {a.after_attempt} ({a.outcome}): next attempt started {a.gap_seconds} s later"
                    for a in measured
                ],
                hoverinfo="text",
            ),
        )
    if not planned:
        figure.add_annotation(
            text="no retries planned: the first failure is final",
            showarrow=False,
            row=r,
            col=c,
            x=1,
            y=0.5,
            font={"color": GREY},
        )
        figure.update_xaxes(range=[0.5, 1.5], visible=False, row=r, col=c)
        figure.update_yaxes(range=[0, 1], visible=False, row=r, col=c)
    else:
        figure.update_xaxes(range=[0.4, len(planned) + 0.6], row=r, col=c)


def _add(figure: go.Figure, shown: set[str], r: int, c: int, trace: Any) -> None:
    trace.update(showlegend=trace.name not in shown, legendgroup=trace.name)
    shown.add(trace.name)
    figure.add_trace(trace, row=r, col=c)


# --- async invocations --------------------------------------------------------------------------


def async_attempts(invocations: list[Any], *, now: datetime) -> go.Figure:
    """Plain-function Event invocations: each attempt on the invocation's row, seconds since it was queued."""
    figure = go.Figure()
    labels = [f"{inv.function_name} · {inv.request_id[:8]}" for inv in invocations]
    by_outcome: dict[str, dict[str, list[Any]]] = {}
    for inv, label in zip(invocations, labels, strict=True):
        for attempt in inv.attempts:
            start = (datetime.fromisoformat(attempt["started_at"]) - inv.created_at).total_seconds()
            end = (datetime.fromisoformat(attempt["ended_at"]) - inv.created_at).total_seconds()
            bucket = by_outcome.setdefault(attempt["outcome"], {"y": [], "base": [], "x": [], "text": [], "hover": []})
            bucket["y"].append(label)
            bucket["base"].append(start)
            bucket["x"].append(max(end - start, 0.05))
            bucket["text"].append(f"try {attempt['attempt']}")
            error = attempt.get("error") or {}
            bucket["hover"].append(
                f"attempt {attempt['attempt']} at +{start:.2f} s: {attempt['outcome']}"
                + (f"<br>{plain_error(error)}" if error else "")
            )
    colours = {"succeeded": GREEN, "failed": VERMILLION}
    for outcome, bucket in by_outcome.items():
        figure.add_trace(
            go.Bar(
                name=f"attempt {outcome}",
                orientation="h",
                marker={"color": colours.get(outcome, GREY)},
                textposition="outside",
                hoverinfo="text",
                hovertext=bucket.pop("hover"),
                width=0.5,
                **bucket,
            )
        )
    _async_due(figure, invocations, labels, now)
    figure.update_layout(
        height=120 + 34 * max(1, len(invocations)),
        barmode="overlay",
        font=FONT,
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        margin={"l": 10, "r": 30, "t": 30, "b": 40},
        xaxis={"title": {"text": "seconds since the event was queued"}, "ticksuffix": " s", "rangemode": "tozero"},
        yaxis={"type": "category", "autorange": "reversed", "categoryorder": "array", "categoryarray": labels},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return figure


def _async_due(figure: go.Figure, invocations: list[Any], labels: list[str], now: datetime) -> None:
    """When each retry was planned: the failed try's end plus Lambda's delay (1 min, then 2 min), scaled."""
    x, y, hover = [], [], []
    for inv, label in zip(invocations, labels, strict=True):
        if inv.invocation_type != "Event":
            continue
        for attempt in inv.attempts:
            if attempt["outcome"] != "failed" or attempt["attempt"] >= inv.max_attempts:
                continue
            delay = async_invoke.retry_delay(attempt["attempt"], inv.time_scale)
            due = (datetime.fromisoformat(attempt["ended_at"]) - inv.created_at).total_seconds() + delay
            x.append(due)
            y.append(label)
            hover.append(
                f"retry {attempt['attempt']} planned {delay:g} s after try {attempt['attempt']} failed "
                f"({async_invoke.RETRY_DELAYS_SECONDS[min(attempt['attempt'], 2) - 1]:g} s \N{MULTIPLICATION SIGN} {inv.time_scale:g})"
            )
    if x:
        figure.add_trace(
            go.Scatter(
                name="retry planned (Lambda: 1 min, then 2 min, scaled)",
                mode="markers",
                x=x,
                y=y,
                hovertext=hover,
                hoverinfo="text",
                marker={"symbol": "line-ns-open", "size": 20, "color": PURPLE, "line": {"width": 2}},
            )
        )
