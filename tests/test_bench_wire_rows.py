"""B9's and B10's rows in bench/report.py, judged against benchmarks.md's levels (pure, no stack)."""

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


def test_b10_row_judges_the_step_out_of_process_against_benchmarks_md() -> None:
    b10 = {"ratio": 2.6, "ratio_min": 2.2, "ratio_max": 3.8, "warm_start_ms": 140.0, "cold_start_ms": 700.0}
    rows = {row.key: row for row in report.rows_for({"B10": b10})}
    assert set(rows) == {"B10_http_step"}
    row = rows["B10_http_step"]
    assert (row.floor, row.target, row.stretch) == (6.0, 3.0, 2.0)
    assert row.verdict() == "target" and row.spread == {"median": 2.6, "min": 2.2, "max": 3.8}
    assert report.rows_for({"B10": {**b10, "ratio": 7.0}})[0].verdict() == report.FLOOR_FAILED
