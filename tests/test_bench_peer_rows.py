"""B8's rows in bench/report.py: the engine against AWS's local runner (pure, no stack, no peer)."""

from __future__ import annotations

from bench import report


def test_b8a_is_judged_against_the_peer_on_the_same_sdk_and_shown_against_the_sdk_as_shipped() -> None:
    b8 = {"ratio_inline_100": 3.0, "ratio_inline_100_sdk_as_shipped": 0.45, "ratio_waits_10": 1.01}
    rows = {row.key: row for row in report.rows_for({"B8": b8})}
    judged, shipped = rows["B8a_100_steps_vs_peer"], rows["B8a_peer_sdk_as_shipped"]
    assert (judged.kind, judged.target, judged.verdict()) == ("ratio", 1.5, "below target")
    assert shipped.kind == "reference" and shipped.value == 0.45
    assert shipped.verdict() == "reference (would be: stretch)"
    assert rows["B8b_10_waits_vs_peer"].verdict() == "target"
    # A result without the as-shipped figure (an older JSON) has no such row.
    older = {row.key for row in report.rows_for({"B8": {"ratio_inline_100": 3.0}})}
    assert older == {"B8a_100_steps_vs_peer"}
