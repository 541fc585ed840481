"""The execution timeline as a Plotly figure: invocations on top, one row per operation below.

Reading guide (dashboard.md §4.6): colour says *outcome*, pattern says *kind* (solid = code
ran, ``/`` = suspended, ``.`` = waiting), marker shape says *instant* (diamond = replayed from a
checkpoint, x = side effect, bowtie = injected fault, | = deadline). Text labels (#k, a1, a2 …)
carry the same facts, so the chart reads without colour.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from engine.rows import ATTEMPT_FAILED, BODY_RUN_COMPLETE, OPERATION_ENDED, OperationStatus
from engine.timeline import QUEUED_AFTER, gap_kind
from engine.timeline_types import (
    Attempt,
    Effect,
    FaultView,
    InvocationView,
    PauseWindow,
    Segment,
    Timeline,
    TimelineExecution,
    TimelineOperation,
)

INVOCATIONS_ROW = "inv"
MAX_ROWS = 150
MAX_INVOCATIONS = 400
LABEL_CHARS = 38
ROW_HEIGHT = 34
PLOT_PAD_PX = 110  # x axis, its title and the margins
LEGEND_PX = 90
MIN_BAR_SHARE = 0.006  # of the visible span: ~7 px on a laptop-wide chart, ~2 px on a phone

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
GREEN, VERMILLION, ORANGE, BLUE, SKY, PURPLE, YELLOW = (
    "#009E73",
    "#D55E00",
    "#E69F00",
    "#0072B2",
    "#56B4E9",
    "#CC79A7",
    "#F0E442",
)
GREY, LIGHT_GREY, INK = "#8a8f98", "#d5d8dd", "#2b2f36"
# Two dark tones from Paul Tol's colour-blind-safe sets, for the outcomes Okabe-Ito runs out for:
# each way an invocation, an attempt or a body run can end badly gets its own colour *and*
# pattern or marker, so they read apart without hover and in grey print.
WINE, OLIVE = "#882255", "#999933"

# The pattern of an invocation bar that ended badly (a suspended or succeeded one is plain).
INVOCATION_PATTERN = {"failed": "x", "timed_out": "-", "killed": "\\", "crashed": "\\"}
INVOCATION_STYLE: dict[str, tuple[str, str, str]] = {
    # outcome → (legend name, colour, end-marker symbol)
    "suspended": ("Invocation → suspended", SKY, "line-ns"),
    "succeeded": ("Invocation → succeeded", GREEN, "circle"),
    "failed": ("Invocation → failed", VERMILLION, "x"),
    "timed_out": ("Invocation → timed out", ORANGE, "hourglass"),
    "killed": ("Invocation → killed (fault)", WINE, "star-triangle-up"),
    # A crash is a kill nobody injected: the same colour, its own marker.
    "crashed": ("Invocation → crashed", WINE, "star-square"),
    "running": ("Invocation running", BLUE, "triangle-right"),
}
ATTEMPT_STYLE: dict[str, tuple[str, str, str]] = {
    # outcome → (legend name, colour, pattern)
    "succeeded": ("Attempt succeeded", GREEN, ""),
    "failed": ("Attempt failed", VERMILLION, "x"),
    "interrupted": ("Attempt interrupted", YELLOW, "/"),
    "running": ("Attempt running", BLUE, "."),
    "unfinished": ("Attempt never finished (execution ended)", GREY, "."),
    "cut_short": ("Attempt cut short (its invocation ended)", PURPLE, "\\"),
}
SPAN_STYLE: dict[str, tuple[str, str, str]] = {
    # operation type → (legend name, colour, pattern)
    "WAIT": ("Wait (suspended, no compute)", SKY, "."),
    "CALLBACK": ("Callback (waiting for an answer)", PURPLE, "-"),
    "CONTEXT": ("Child context / map / parallel", LIGHT_GREY, ""),
    "CHAINED_INVOKE": ("Chained invoke", YELLOW, "+"),
}
FAILED_STATUSES = OPERATION_ENDED - {OperationStatus.SUCCEEDED}
BODY_CUT_COLOUR = OLIVE
FAULT_PHASES = {
    "body_start": "as the step's code started",
    "after_body": "after the step's code ran, before its result was saved",
}
DARK_FILLS = {WINE, INK, BLUE, VERMILLION}  # white labels read on these, dark ones elsewhere
# The SDK's error names, as a learner would say them; the name stays in brackets to look it up.
PLAIN_ERRORS = {
    "StepInterruptedError": "the step was interrupted before its result was saved",
    "CallbackTimeoutException": "nobody answered the callback in time",
    "CallbackError": "the callback was rejected",
    "ExecutionTimeoutError": "the execution ran out of time",
    "TimeoutError": "it ran out of time",
    "SerDesError": "a value could not be saved or read back",
    "Runtime.ImportModuleError": "the handler's module could not be imported",
    "Runtime.HandlerNotFound": "the handler was not found in its module",
}


def _naive(moment: datetime) -> str:
    """Plotly's date axis has no time zones: send UTC wall-clock strings."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def esc(text: Any) -> str:
    """User text goes into SVG through Plotly's mini-HTML: escape it so markup shows as text."""
    return html.escape(str(text), quote=False)


def plain_error(error: dict[str, Any] | None) -> str:
    """``ErrorType: ErrorMessage`` in plain words: "the step was interrupted … (StepInterruptedError)".

    A dotted class path (``aws_durable_execution_sdk_python.exceptions.X``) is cut to its name;
    Lambda's ``Runtime.*`` names are kept whole."""
    if not error:
        return ""
    kind = str(error.get("ErrorType") or "")
    name = kind if kind.startswith("Runtime.") else kind.rsplit(".", 1)[-1]
    phrase = PLAIN_ERRORS.get(name)
    said = f"{phrase} ({name})" if phrase else name
    message = str(error.get("ErrorMessage") or "")
    return esc(f"{said}: {message}" if message and said else said or message)


def fault_phase(phase: str) -> str:
    """When in a step an armed kill fires, in plain words, with the form's name for it."""
    return esc(f"{FAULT_PHASES[phase]} ({phase})" if phase in FAULT_PHASES else phase)


def _seconds(delta: timedelta) -> str:
    total = delta.total_seconds()
    if total < 1:
        return f"{total * 1000:.0f} ms"
    if total < 120:
        return f"{total:.2f} s"
    return f"{total / 60:.1f} min"


@dataclass
class Bars:
    """One bar trace: many bars sharing a meaning (legend entry), colour and pattern."""

    name: str
    colour: str
    pattern: str = ""
    width: float = 0.55
    offset: float | None = None
    opacity: float = 1.0
    outline: str = "rgba(0,0,0,0.35)"
    showlegend: bool = True
    # Labels go inside the bar or nowhere (layout.uniformtext hides what does not fit): a label
    # beside a sliver reads as the next bar's. The hover always has it.
    textposition: str = "inside"
    y: list[str] = field(default_factory=list)
    base: list[str] = field(default_factory=list)
    x: list[float] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    hover: list[str] = field(default_factory=list)

    def add(self, row: str, start: datetime, end: datetime, *, text: str, hover: str, min_ms: float) -> None:
        """A bar of at least ``min_ms`` (so a 5 ms run stays visible); hover texts say the true length."""
        self.y.append(row)
        self.base.append(_naive(start))
        self.x.append(max((end - start).total_seconds() * 1000, min_ms))
        self.text.append(text)
        self.hover.append(hover)

    def trace(self, rank: int) -> dict[str, Any]:
        marker: dict[str, Any] = {
            "color": self.colour,
            "opacity": self.opacity,
            "line": {"color": self.outline, "width": 1},
        }
        if self.pattern:
            marker["pattern"] = {"shape": self.pattern, "fgcolor": INK, "fgopacity": 0.45, "size": 6, "solidity": 0.25}
        trace = {
            "type": "bar",
            "name": self.name,
            "orientation": "h",
            "y": self.y,
            "base": self.base,
            "x": self.x,
            "width": self.width,
            "offset": self.offset,
            "marker": marker,
            "text": self.text,
            "textposition": self.textposition,
            "insidetextanchor": "middle",
            "textangle": 0,
            "textfont": {"size": 10, "color": "#ffffff" if self.colour in DARK_FILLS else INK},
            **_hover_and_legend(self.name, self.hover, self.showlegend, rank),
        }
        return {key: value for key, value in trace.items() if value is not None}  # unset, as Plotly writes it


@dataclass
class Marks:
    """One scatter trace of instant events: a marker shape per meaning."""

    name: str
    colour: str
    symbol: str
    size: int = 10
    showlegend: bool = True
    line_width: float = 1.5
    y: list[str] = field(default_factory=list)
    x: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    hover: list[str] = field(default_factory=list)

    def add(self, row: str, at: datetime, *, hover: str, text: str = "") -> None:
        self.y.append(row)
        self.x.append(_naive(at))
        self.text.append(text)
        self.hover.append(hover)

    def trace(self, rank: int) -> dict[str, Any]:
        return {
            "type": "scatter",
            "name": self.name,
            "mode": "markers+text" if any(self.text) else "markers",
            "y": self.y,
            "x": self.x,
            "marker": {
                "symbol": self.symbol,
                "size": self.size,
                "color": self.colour,
                "line": {"color": self.colour, "width": self.line_width},
            },
            "text": self.text,
            "textposition": "top center",
            "textfont": {"size": 9, "color": self.colour},
            **_hover_and_legend(self.name, self.hover, self.showlegend, rank),
        }


def _hover_and_legend(name: str, hover: list[str], showlegend: bool, rank: int) -> dict[str, Any]:
    """What every trace of the timeline sets alike: its hover text, its legend entry, no clipping."""
    return {
        "hovertext": hover,
        "hoverinfo": "text",
        "showlegend": showlegend,
        "legendgroup": name,
        "cliponaxis": False,
        "legendrank": rank,
    }


@dataclass
class Canvas:
    """Everything one figure draws, gathered by meaning before it becomes traces."""

    start: datetime
    end: datetime
    time_scale: float = 1.0
    finished: bool = False
    invocation_ends: dict[int, datetime] = field(default_factory=dict)
    bars: dict[str, Bars] = field(default_factory=dict)
    marks: dict[str, Marks] = field(default_factory=dict)

    view: tuple[datetime, datetime] | None = None  # the time span first shown (default: all of it)
    drawn_invocations: set[int] | None = None  # seqs on the invocations lane, when not all are

    @property
    def min_ms(self) -> float:
        # Keep instant bars visible: a share of the span first shown, in the axis's milliseconds.
        start, end = self.view or (self.start, self.end)
        return max((end - start).total_seconds() * 1000 * MIN_BAR_SHARE, 1.0)

    def bar(self, key: str, name: str, colour: str, **style: Any) -> Bars:
        if key not in self.bars:
            self.bars[key] = Bars(name, colour, **style)
        return self.bars[key]

    def mark(self, key: str, name: str, colour: str, symbol: str, **style: Any) -> Marks:
        if key not in self.marks:
            self.marks[key] = Marks(name, colour, symbol, **style)
        return self.marks[key]

    def elapsed(self, at: datetime) -> str:
        return f"+{_seconds(at - self.start)}"


# --- public ---------------------------------------------------------------------------------


def timeline_figure(data: Timeline, *, now: datetime, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """Return the execution timeline (invocations lane, invocation bands, one row per operation)
    as Plotly's figure JSON.

    It is built from plain dicts: through ``plotly.graph_objects``, which validates every
    property of every trace, it took ~11 ms of a 1,000-operation timeline's ~25 ms response,
    and the dashboard polls it every second. The tests check that Plotly's own validation
    accepts the dicts and gives back the same figure.
    """
    now = _clock_end(data, now)
    shown = data["operations"][:max_rows]  # the engine returns them in tree order
    canvas = Canvas(
        *_span(data, now),
        time_scale=float(data["execution"].get("time_scale") or 1.0),
        finished=data["execution"]["ended_at"] is not None,
        invocation_ends={i["seq"]: i["ended_at"] or now for i in data["invocations"]},
    )
    if operation_count(data) > len(shown) and shown:
        canvas.view = _window_span(canvas, shown, now)
    rows = {op["op_id"]: f"r{index}" for index, op in enumerate(shown)}
    invocations = drawn_invocations(data["invocations"], canvas, now)
    if len(invocations) < len(data["invocations"]):
        canvas.drawn_invocations = {i["seq"] for i in invocations}
    _draw_invocations(canvas, invocations, data["execution"], now)
    _draw_pauses(canvas, data.get("pauses") or [], data["execution"], now)
    for op in shown:
        _draw_operation(canvas, op, rows[op["op_id"]], now)
    _draw_effects(canvas, data.get("effects") or [], rows)
    _draw_faults(canvas, data.get("faults") or [], shown, rows)
    layout = _layout(data, shown, rows, canvas, now, invocations=invocations)
    return {"data": _traces(canvas), "layout": {**layout, "template": _default_template()}}


@functools.cache
def _default_template() -> dict[str, Any]:
    """The template ``go.Figure`` puts into every layout (Plotly's default), computed once."""
    template: dict[str, Any] = go.Figure().to_dict()["layout"]["template"]
    return template


def drawn_invocations(invocations: list[InvocationView], canvas: Canvas, now: datetime) -> list[InvocationView]:
    """All invocations, unless there are thousands: then those in the time span first shown, and
    at most the first and last ``MAX_INVOCATIONS // 2`` of those (the history lists every one)."""
    if len(invocations) <= MAX_INVOCATIONS:
        return invocations
    start, end = canvas.view or (canvas.start, canvas.end)
    visible = [i for i in invocations if i["started_at"] <= end and (i["ended_at"] or now) >= start]
    if len(visible) > MAX_INVOCATIONS:
        half = MAX_INVOCATIONS // 2
        visible = visible[:half] + visible[-half:]
    return visible


def operation_count(data: Timeline) -> int:
    """All operations of the execution (the data may hold only one window of them)."""
    return int(data.get("operation_count", len(data["operations"])))


# Bars drawn later sit on top: labels of invocations and attempts must not hide under
# the suspended-gap and backoff bars. Legend order is set separately (legendrank).
DRAW_ORDER = ("span:", "suspended", "paused", "reinvoke", "queued", "backoff", "inv:", "attempt:", "body")
LEGEND_ORDER = (
    "inv:",
    "inv-end",
    "suspended",
    "reinvoke",
    "queued",
    "paused",
    "attempt:",
    "backoff",
    "body",
    "replay",
    "span:",
    "deadline",
    "effect",
    "fault",
)


def _rank(key: str, order: tuple[str, ...]) -> int:
    return next((index for index, prefix in enumerate(order) if key.startswith(prefix)), len(order))


def _traces(canvas: Canvas) -> list[dict[str, Any]]:
    bars = sorted(canvas.bars.items(), key=lambda item: _rank(item[0], DRAW_ORDER))
    traces: list[dict[str, Any]] = [b.trace(100 * _rank(k, LEGEND_ORDER) + i) for i, (k, b) in enumerate(bars)]
    traces += [m.trace(100 * _rank(k, LEGEND_ORDER) + i) for i, (k, m) in enumerate(canvas.marks.items())]
    return traces


IDLE_GAP_SECONDS = 2.0
IDLE_BREAK = "idle-break"  # the name of the markers timeline.js shows while idle time is compressed


def idle_rangebreaks(
    data: Timeline, *, now: datetime, min_gap_seconds: float = IDLE_GAP_SECONDS
) -> list[dict[str, Any]]:
    """Rangebreaks that cut long stretches with no invocation running (compress idle time)."""
    margin = timedelta(seconds=min_gap_seconds / 4)
    return [
        {"values": [_naive(began + margin)], "dvalue": (ended - began - 2 * margin).total_seconds() * 1000}
        for began, ended in _idle_gaps(data, now=now, min_gap_seconds=min_gap_seconds)
    ]


def _idle_gaps(data: Timeline, *, now: datetime, min_gap_seconds: float) -> list[tuple[datetime, datetime]]:
    """Stretches longer than ``min_gap_seconds`` with no invocation running."""
    now = _clock_end(data, now)
    busy = sorted((i["started_at"], i["ended_at"] or now) for i in data["invocations"])
    start, end = _span(data, now)
    gaps = []
    cursor = start
    for began, ended in [*busy, (end, end)]:
        if (began - cursor).total_seconds() > min_gap_seconds:
            gaps.append((cursor, began))
        cursor = max(cursor, ended)
    return gaps


def _idle_break_markers(data: Timeline, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Where a rangebreak cuts idle time, a dashed line and "⋯ 2.0 min idle ⋯": hidden until
    "Compress idle time" is on (timeline.js shows every shape and annotation named IDLE_BREAK)."""
    margin = timedelta(seconds=IDLE_GAP_SECONDS / 4)
    shapes, notes = [], []
    # As many as invocations are drawn at most: each gap lies between two of them.
    for began, ended in _idle_gaps(data, now=now, min_gap_seconds=IDLE_GAP_SECONDS)[:MAX_INVOCATIONS]:
        at = _naive(began + margin)
        shapes.append(
            {
                "type": "line",
                "name": IDLE_BREAK,
                "visible": False,
                "xref": "x",
                "yref": "paper",
                "x0": at,
                "x1": at,
                "y0": 0,
                "y1": 1,
                "line": {"color": GREY, "width": 2, "dash": "dash"},
            }
        )
        notes.append(
            {
                "name": IDLE_BREAK,
                "visible": False,
                "xref": "x",
                "yref": "paper",
                "x": at,
                "y": 0,
                "yanchor": "bottom",
                "showarrow": False,
                "text": f"⋯ {_seconds(ended - began)} idle ⋯",
                "font": {"size": 10, "color": INK},
                "bgcolor": "rgba(255,255,255,0.85)",
            }
        )
    return shapes, notes


def hidden_rows(data: Timeline, max_rows: int = MAX_ROWS) -> int:
    """Operations of the execution that this figure does not draw."""
    return max(0, operation_count(data) - min(len(data["operations"]), max_rows))


# --- spans ----------------------------------------------------------------------------------


def _clock_end(data: Timeline, now: datetime) -> datetime:
    """Open bars run to *now* while the execution runs, and stop where a finished execution ended."""
    return data["execution"]["ended_at"] or now


def _span(data: Timeline, now: datetime) -> tuple[datetime, datetime]:
    execution = data["execution"]
    start = execution["started_at"]
    ends = [execution["ended_at"] or now]
    ends += [i["ended_at"] or now for i in data["invocations"]]
    end = max(ends)
    if end <= start:
        end = start + timedelta(seconds=1)
    return start, end


# --- invocations ----------------------------------------------------------------------------


def _draw_invocations(
    canvas: Canvas, invocations: list[InvocationView], execution: TimelineExecution, now: datetime
) -> None:
    previous: InvocationView | None = None
    for invocation in invocations:
        queued_at = invocation.get("queued_at")
        gap_end = queued_at or invocation["started_at"]
        if previous is not None and gap_end > (previous["ended_at"] or now):
            _gap(canvas, previous, gap_end)
        if queued_at is not None:
            _queued(canvas, queued_at, invocation["started_at"], f"invocation #{invocation['seq']}")
        _invocation_bar(canvas, invocation, now)
        previous = invocation
    if execution["status"] == "RUNNING":
        _draw_owed_invocation(canvas, previous, execution, now)


def _draw_owed_invocation(
    canvas: Canvas, previous: InvocationView | None, execution: TimelineExecution, now: datetime
) -> None:
    """After the last invocation of a running execution: suspended, and waiting for a worker
    once the next invocation's message was sent (``queued_since``) and none has taken it up."""
    since = execution.get("queued_since")
    waited_from = max(since, previous["ended_at"] or now) if since and previous else since
    queued = waited_from is not None and now - waited_from > QUEUED_AFTER
    gap_end = waited_from if queued else now
    if previous is not None and (previous["ended_at"] or now) < gap_end:
        _gap(canvas, previous, gap_end)
    if queued:
        _queued(canvas, waited_from, now, f"invocation #{(previous or {}).get('seq', 0) + 1}")


QUEUED_NAME = "Queued for a worker (workers busy, not billed)"


def _queued(canvas: Canvas, start: datetime, end: datetime, what: str) -> None:
    """Time an owed invocation waited for a free worker: no function ran (not billed), and the
    execution was not suspended either: the workers were busy with other executions."""
    bars = canvas.bar(
        "queued",
        QUEUED_NAME,
        GREY,
        pattern="+",
        width=0.3,
        opacity=0.55,
        outline="rgba(0,0,0,0)",
    )
    hover = (
        f"{what} queued for a worker for {_seconds(end - start)}<br>all workers were busy: nothing ran, nothing billed"
    )
    bars.add(INVOCATIONS_ROW, start, end, text="", hover=hover, min_ms=0)


def _gap(canvas: Canvas, previous: InvocationView, end: datetime) -> None:
    """The time after ``previous`` ended: a suspension, or the re-invoke after a crash."""
    start = previous["ended_at"]
    if gap_kind(previous) == "reinvoke":
        _reinvoke_gap(canvas, previous, start, end)
    else:
        _suspended_gap(canvas, start, end)


def _reinvoke_gap(canvas: Canvas, previous: InvocationView, start: datetime, end: datetime) -> None:
    bars = canvas.bar(
        "reinvoke",
        "Crashed → re-invoke (backoff, not billed)",
        # The crash's colour, faint and dotted: a wait after it, not another failure.
        WINE,
        pattern=".",
        width=0.3,
        opacity=0.35,
        outline="rgba(0,0,0,0)",
    )
    outcome = str(previous["outcome"]).replace("_", " ")
    error = previous.get("error") or {}
    hover = f"invocation #{previous['seq']} {esc(outcome)} → re-invoked after {_seconds(end - start)}"
    if error:
        hover += f"<br>{plain_error(error)}"
    bars.add(INVOCATIONS_ROW, start, end, text="", hover=hover + "<br>not suspended: no invocation ran", min_ms=0)


PAUSED_NAME = "Paused by request (nothing invoked)"


def _draw_pauses(canvas: Canvas, pauses: list[PauseWindow], execution: TimelineExecution, now: datetime) -> None:
    """Each pause (ExecutionPaused to ExecutionResumed, or to the end a stop made) on the
    invocations lane, over the suspended gap it lies in: no invocation ran because someone
    paused the execution, not because it waited for something."""
    for window in pauses:
        start, end = window["paused_at"], window["resumed_at"] or execution.get("ended_at") or now
        bars = canvas.bar("paused", PAUSED_NAME, ORANGE, pattern="|", width=0.3, opacity=0.7, outline=ORANGE)
        state = (
            "resumed" if window["resumed_at"] else "ended while paused" if execution.get("ended_at") else "paused now"
        )
        hover = (
            f"paused for {_seconds(end - start)} ({state})<br>no invocation while paused; "
            "waits and callbacks still complete"
        )
        bars.add(INVOCATIONS_ROW, start, end, text="", hover=hover, min_ms=0)


def _suspended_gap(canvas: Canvas, start: datetime, end: datetime) -> None:
    bars = canvas.bar(
        "suspended",
        "Suspended between invocations (not billed)",
        LIGHT_GREY,
        pattern="/",
        width=0.3,
        outline="rgba(0,0,0,0)",
    )
    hover = f"suspended for {_seconds(end - start)}<br>no invocation running: nothing billed"
    bars.add(INVOCATIONS_ROW, start, end, text="", hover=hover, min_ms=0)


def _invocation_bar(canvas: Canvas, invocation: InvocationView, now: datetime) -> None:
    outcome = invocation["outcome"] or ("running" if invocation["ended_at"] is None else "failed")
    name, colour, symbol = INVOCATION_STYLE.get(outcome, (f"Invocation → {outcome}", VERMILLION, "x"))
    end = invocation["ended_at"] or now
    error = invocation.get("error") or {}
    hover = (
        f"<b>invocation #{invocation['seq']}</b> · reason: {esc(invocation['reason'])}<br>"
        f"outcome: {esc(outcome)} · {_seconds(end - invocation['started_at'])} · {canvas.elapsed(invocation['started_at'])}"
    )
    if error:
        hover += f"<br>{plain_error(error)}"
    if invocation.get("record_incomplete"):  # its host was lost: only what it shipped was kept
        hover += (
            f"<br><b>record incomplete: {esc(invocation['record_incomplete'])}</b> (body runs, logs after it missing)"
        )
    # Room for the reason only on wide bars; it is always in the hover and the invocations table.
    wide = (end - invocation["started_at"]) / (canvas.end - canvas.start) > 0.08
    text = f"#{invocation['seq']} {invocation['reason']}" if wide else f"#{invocation['seq']}"
    pattern = INVOCATION_PATTERN.get(outcome, "")
    canvas.bar(f"inv:{outcome}", name, colour, pattern=pattern, width=0.6).add(
        INVOCATIONS_ROW,
        invocation["started_at"],
        end,
        text=esc(text),
        hover=hover,
        min_ms=canvas.min_ms,
    )
    if invocation["ended_at"] is not None:
        canvas.mark(
            f"inv-end:{outcome}",
            f"{name} (end)",
            INK if outcome == "suspended" else colour,
            symbol,
            size=12,
            showlegend=False,
        ).add(INVOCATIONS_ROW, end, hover=hover)


# --- operations -----------------------------------------------------------------------------


def _draw_operation(canvas: Canvas, op: TimelineOperation, row: str, now: datetime) -> None:
    if op["type"] == "STEP":
        _draw_attempts(canvas, op, row, now)
        _draw_body_runs(canvas, op, row, now)
    else:
        _draw_span(canvas, op, row, now)
    _draw_replays(canvas, op, row)
    if op.get("deadline"):
        _draw_deadline(canvas, op, row)


def _op_title(op: TimelineOperation) -> str:
    return f"<b>{esc(op['name'] or op['type'].lower())}</b> ({esc(op.get('sub_type') or op['type'])})"


def _draw_attempts(canvas: Canvas, op: TimelineOperation, row: str, now: datetime) -> None:
    """One bar per invocation an attempt ran in (the read model's segments): an attempt whose
    invocation died is cut at that invocation's end, and goes on in the next one."""
    attempts = op["attempts"]
    for index, attempt in enumerate(attempts):
        for segment in attempt.get("segments") or [attempt]:
            _draw_attempt_segment(canvas, op, row, attempt, segment, now)
        following = attempts[index + 1] if index + 1 < len(attempts) else None
        _draw_backoff(canvas, op, row, attempt, following, now)


def _draw_attempt_segment(
    canvas: Canvas, op: TimelineOperation, row: str, attempt: Attempt, segment: Segment | Attempt, now: datetime
) -> None:
    outcome = segment["outcome"]
    if outcome == "running" and canvas.finished:
        outcome = "unfinished"
    name, colour, pattern = ATTEMPT_STYLE.get(outcome, ATTEMPT_STYLE["failed"])
    end = segment["ended_at"] or now
    hover = (
        f"{_op_title(op)} · attempt {attempt['attempt']} · {esc(outcome.replace('_', ' '))}<br>"
        f"in invocation #{segment['invocation_seq']} · {_seconds(end - segment['started_at'])}"
        f" · {canvas.elapsed(segment['started_at'])}"
    )
    error = attempt.get("error") or {}
    if error and segment["outcome"] == attempt["outcome"]:
        hover += f"<br>{plain_error(error)}"
    canvas.bar(f"attempt:{outcome}", name, colour, pattern=pattern, width=0.5, offset=-0.3).add(
        row, segment["started_at"], end, text=f"a{attempt['attempt']}", hover=hover, min_ms=canvas.min_ms
    )


def _draw_backoff(
    canvas: Canvas,
    op: TimelineOperation,
    row: str,
    attempt: Attempt,
    following: Attempt | None,
    now: datetime,
) -> None:
    """The planned delay before the next attempt: from the failure to when the retry began (or is due)."""
    if attempt["outcome"] not in ATTEMPT_FAILED or attempt["ended_at"] is None:
        return
    if following is not None:
        end = following["started_at"]
    elif attempt.get("retrying") and attempt.get("next_attempt_delay") is not None:
        end = attempt["ended_at"] + timedelta(seconds=float(attempt["next_attempt_delay"]) * canvas.time_scale)
    else:
        return
    planned = attempt.get("next_attempt_delay")
    hover = f"{_op_title(op)} · backoff after attempt {attempt['attempt']}"
    hover += f"<br>planned delay {planned} s" if planned is not None else ""
    canvas.bar(
        "backoff",
        "Backoff before next attempt",
        LIGHT_GREY,
        pattern=".",
        width=0.2,
        offset=-0.15,
        outline="rgba(0,0,0,0)",
    ).add(row, attempt["ended_at"], end, text="", hover=hover, min_ms=0)


def _draw_body_runs(canvas: Canvas, op: TimelineOperation, row: str, now: datetime) -> None:
    """Each time the step's code really ran: a thin bar under the attempt bar."""
    for run in op.get("body_runs") or []:
        # A run cut short has no end of its own: it ended with its invocation.
        end = run["ended_at"] or canvas.invocation_ends.get(run["invocation_seq"], now)
        complete = run["ended_at"] is not None and run["outcome"] in BODY_RUN_COMPLETE
        key, name, colour = (
            ("body", "Step body ran (code executed)", INK)
            if complete
            else ("body-cut", "Step body cut short (no result)", BODY_CUT_COLOUR)
        )
        hover = (
            f"{_op_title(op)} · body ran in invocation #{run['invocation_seq']}<br>"
            f"{esc(run['outcome'])} · {_seconds(end - run['started_at'])} · {canvas.elapsed(run['started_at'])}"
        )
        canvas.bar(key, name, colour, width=0.14, offset=0.24, outline="rgba(0,0,0,0)").add(
            row, run["started_at"], end, text="", hover=hover, min_ms=canvas.min_ms
        )


def _draw_span(canvas: Canvas, op: TimelineOperation, row: str, now: datetime) -> None:
    """Waits, callbacks, contexts and chained invokes: one bar from start to end (or now)."""
    name, colour, pattern = SPAN_STYLE.get(op["type"], (f"{op['type'].title()} operation", LIGHT_GREY, ""))
    key = f"span:{op['type']}"
    if op["status"] in FAILED_STATUSES:
        name, colour, key = f"{name.split(' (')[0]} failed / timed out", VERMILLION, f"span:{op['type']}:failed"
    end = op["ended_at"] or now
    width, offset = (0.7, -0.35) if op["type"] == "CONTEXT" else (0.5, -0.3)
    opacity = 0.55 if op["type"] == "CONTEXT" else 0.9
    hover = f"{_op_title(op)} · {esc(op['status'])}<br>{_seconds(end - op['started_at'])} · {canvas.elapsed(op['started_at'])}"
    label = op["status"].lower() if op["type"] in {"WAIT", "CALLBACK"} else ""
    canvas.bar(key, name, colour, pattern=pattern, width=width, offset=offset, opacity=opacity).add(
        row, op["started_at"], end, text=label, hover=hover, min_ms=canvas.min_ms
    )


def _draw_replays(canvas: Canvas, op: TimelineOperation, row: str) -> None:
    marks = canvas.mark("replay", "Replayed from checkpoint (no code ran)", BLUE, "diamond-open", size=9)
    drawn = 0
    for replay in op["replays"]:
        if canvas.drawn_invocations is not None and replay["invocation_seq"] not in canvas.drawn_invocations:
            continue  # its invocation is not on the lane either
        # Kept short: an operation is replayed by every later invocation, so these add up.
        marks.add(row, replay["at"], hover=f"replayed by #{replay['invocation_seq']}: result reused, no code ran")
        drawn += 1
    unlisted = op.get("replay_count", len(op["replays"])) - drawn
    if unlisted > 0 and drawn:
        marks.hover[-1] += f"<br>… and {unlisted:,} other replays (not drawn)"


def _draw_deadline(canvas: Canvas, op: TimelineOperation, row: str) -> None:
    """Deadlines past the drawn span stay off-screen (zoom out to see them) rather than squash the chart."""
    label = "scheduled end" if op["type"] == "WAIT" else "timeout deadline"
    hover = f"{_op_title(op)}<br>{label}: {op['deadline']:%H:%M:%S} UTC ({canvas.elapsed(op['deadline'])})"
    canvas.mark("deadline", "Scheduled end / timeout deadline", INK, "line-ns", size=16, line_width=2).add(
        row, op["deadline"], hover=hover
    )


# --- effects and faults ---------------------------------------------------------------------


def _draw_effects(canvas: Canvas, effects: list[Effect], rows: dict[str, str]) -> None:
    for effect in effects:
        row = rows.get(effect.get("op_id") or "", INVOCATIONS_ROW)
        duplicate = bool(effect.get("duplicate"))
        performed = effect.get("performed", True)
        hover = (
            f"<b>side effect</b> {esc(effect.get('kind', ''))}: {esc(effect.get('key', ''))}<br>"
            f"invocation #{effect.get('invocation_seq')} · attempt {effect.get('attempt')}"
        )
        if effect.get("idempotency_key"):
            hover += f"<br>idempotency key {esc(effect['idempotency_key'])}" + (
                "" if performed else " (already used: skipped)"
            )
        if duplicate:
            canvas.mark("effect-dup", "Duplicate side effect", VERMILLION, "x-thin-open", size=14, line_width=3).add(
                row, effect["at"], hover=hover + "<br><b>DUPLICATE</b>", text="dup"
            )
        else:
            canvas.mark("effect", "Side effect", GREEN, "x-thin-open", size=11, line_width=2).add(
                row, effect["at"], hover=hover
            )


def _draw_faults(canvas: Canvas, faults: list[FaultView], shown: list[TimelineOperation], rows: dict[str, str]) -> None:
    by_name = {}
    for op in shown:
        by_name.setdefault(op["name"], rows[op["op_id"]])
    for fault in faults:
        row = by_name.get(fault.get("step_name"), INVOCATIONS_ROW)
        fired = fault.get("fired_at")
        at = fired or fault.get("armed_at")
        if at is None:
            continue
        phase = fault.get("phase") or ""
        where = f" at {esc(fault['step_name'])}" if fault.get("step_name") else ""
        hover = f"<b>injected fault</b>: {esc(fault.get('kind', ''))}{where} · {fault_phase(phase)}"
        if fired:
            hover += f"<br>fired in invocation #{fault.get('invocation_seq')}"
            canvas.mark("fault", "Injected fault (fired)", VERMILLION, "bowtie", size=14).add(
                row, at, hover=hover, text="kill"
            )
        else:
            canvas.mark("fault-armed", "Fault armed (not fired yet)", VERMILLION, "bowtie-open", size=14).add(
                row, at, hover=hover + "<br>armed, waiting for the step", text="armed"
            )


# --- layout ---------------------------------------------------------------------------------


def _full_row_name(op: TimelineOperation) -> str:
    name = op["name"] or op["type"].lower()
    kind = (op.get("sub_type") or op["type"]).lower()
    return f"{name} · {kind}" if kind not in name.lower() else name


def _row_names(shown: list[TimelineOperation], rows: dict[str, str]) -> dict[str, str]:
    """Row key → the untruncated label, HTML-escaped like every user text in the figure:
    timeline.js decodes it into the tick's tooltip as text."""
    return {rows[op["op_id"]]: esc(_full_row_name(op)) for op in shown}


def _row_label(op: TimelineOperation) -> str:
    label = _full_row_name(op)
    if len(label) > LABEL_CHARS:
        label = label[: LABEL_CHARS - 1] + "…"
    indent = "\u00a0\u00a0\u00a0" * op["depth"] + ("└ " if op["depth"] else "")
    return indent + esc(label)


def _layout(
    data: Timeline,
    shown: list[TimelineOperation],
    rows: dict[str, str],
    canvas: Canvas,
    now: datetime,
    *,
    invocations: list[InvocationView],
) -> dict[str, Any]:
    keys = [INVOCATIONS_ROW, *rows.values()]
    labels = ["<b>invocations</b>", *(_row_label(op) for op in shown)]
    layout: dict[str, Any] = {
        "uirevision": data["execution"]["arn"],
        # Room for a 4-line legend; timeline.js fits the top margin to the legend's lines at the
        # page's width (one entry a line on a phone), from meta.legend_fit.
        "height": PLOT_PAD_PX + LEGEND_PX + ROW_HEIGHT * len(keys),
        "margin": {"l": 10, "r": 20, "t": LEGEND_PX, "b": 40},
        "barmode": "overlay",
        "hovermode": "closest",
        "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12, "color": INK},
        "legend": {
            "orientation": "h",
            "yref": "container",
            "yanchor": "top",
            "y": 1.0,
            "x": 0,
            "font": {"size": 11},
            "traceorder": "normal",
            "itemclick": "toggle",
        },
        "xaxis": {
            "type": "date",
            "showgrid": True,
            "gridcolor": "#eef0f3",
            "zeroline": False,
            "title": {"text": "time (UTC)"},
            "range": _x_range(canvas),
        },
        "yaxis": {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": keys,
            "tickmode": "array",
            "tickvals": keys,
            "ticktext": labels,
            # Top to bottom, one row each: autorange pads for marker labels by whole rows.
            "range": [len(keys) - 0.5, -0.7],
            "automargin": True,
            "showgrid": True,
            "gridcolor": "#f3f4f6",
            "fixedrange": True,
        },
        "shapes": _bands(invocations, now),
        "annotations": [],
        # Labels that do not fit inside their bar are hidden, not spilled over the next one.
        "uniformtext": {"mode": "hide", "minsize": 9},
        # Row key → op_id, so a click on any mark can jump to that operation's table row.
        "meta": {
            "rows": {key: op_id for op_id, key in rows.items()},
            "row_names": _row_names(shown, rows),
            "legend_fit": {"top": 10, "height": PLOT_PAD_PX + ROW_HEIGHT * len(keys)},
        },
    }
    if data["execution"]["status"] == "RUNNING":
        layout["shapes"].append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": _naive(now),
                "x1": _naive(now),
                "y0": 0,
                "y1": 1,
                "line": {"color": BLUE, "width": 1, "dash": "dot"},
            }
        )
    total = operation_count(data)
    if total > len(shown):
        first = int(data.get("offset", 0)) + 1
        layout["annotations"].append(
            _note(f"rows {first:,} to {first + len(shown) - 1:,} of {total:,} operations drawn", -30)
        )
    if len(invocations) < len(data["invocations"]):
        layout["annotations"].append(
            _note(f"{len(invocations):,} of {len(data['invocations']):,} invocations drawn", -48)
        )
    breaks, notes = _idle_break_markers(data, now)
    layout["shapes"] += breaks
    layout["annotations"] += notes
    if not layout["annotations"]:
        del layout["annotations"]  # as Plotly writes an empty list: left out
    return layout


def _note(text: str, yshift: int) -> dict[str, Any]:
    """A line of text under the chart's left corner."""
    return {
        "xref": "paper",
        "yref": "paper",
        "x": 0,
        "y": 0,
        "yanchor": "top",
        "yshift": yshift,
        "showarrow": False,
        "text": text,
    }


def _window_span(canvas: Canvas, shown: list[TimelineOperation], now: datetime) -> tuple[datetime, datetime]:
    """When only a window of a long execution is drawn, show that window's time span first, so
    later pages are not squeezed into a sliver. Replays in later invocations lie outside it:
    zoom out (double-click) to see the whole execution."""
    start = max(canvas.start, min(op["started_at"] for op in shown))
    end = min(canvas.end, max(op["ended_at"] or now for op in shown))
    return start, max(end, start + timedelta(milliseconds=1))


def _x_range(canvas: Canvas) -> list[str]:
    start, end = canvas.view or (canvas.start, canvas.end)
    pad = (end - start) * 0.02
    return [_naive(start - pad), _naive(end + pad)]


def _bands(invocations: list[InvocationView], now: datetime) -> list[dict[str, Any]]:
    """A faint band per invocation across every row: which invocation ran (or replayed) what."""
    shapes = []
    for index, invocation in enumerate(invocations):
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "layer": "below",
                "x0": _naive(invocation["started_at"]),
                "x1": _naive(invocation["ended_at"] or now),
                "fillcolor": BLUE if index % 2 == 0 else SKY,
                "opacity": 0.08,
                "line": {"width": 0},
            }
        )
    return shapes
