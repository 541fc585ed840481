"""B9's rows in bench/report.py: both operations judged against benchmarks.md's levels (pure, no stack)."""

from __future__ import annotations

from bench import report


def _summary(ratio: float) -> dict:
    return {"ratio_p50": ratio, "ratio_blocks": {"median": ratio, "min": ratio, "max": ratio, "rounds": 5}}


def test_b9_rows_and_verdicts() -> None:
    rows = {
        row.key: row
        for row in report.rows_for({"B9": {"callback_success": _summary(1.4), "invoke_event": _summary(4.5)}})
    }
    assert set(rows) == {"B9_callback_success_p50", "B9_invoke_event_p50"}
    assert (rows["B9_callback_success_p50"].floor, rows["B9_callback_success_p50"].target) == (4.0, 2.0)
    assert rows["B9_callback_success_p50"].verdict() == "stretch"
    assert rows["B9_invoke_event_p50"].verdict() == report.FLOOR_FAILED
    assert report.rows_for({}) == []
