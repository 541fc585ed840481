"""B11's rows in bench/report.py: steps/s at 2 processes and 2 hosts ÷ 1 process (pure, no stack)."""

from __future__ import annotations

from bench import report


def _b11(two: float, hosts: float, four: float) -> dict:
    def ratio(value: float) -> dict:
        return {"median": value, "min": value - 0.1, "max": value + 0.1, "rounds": 2}

    runs = {
        key: {"steps_per_s": 400.0 * value} for key, value in (("1", 1.0), ("2", two), ("4", four), ("2_hosts", hosts))
    }
    return {
        "cpus": 2,
        "runs": runs,
        "ratios": {"1": ratio(1.0), "2": ratio(two), "4": ratio(four), "2_hosts": ratio(hosts)},
    }


def test_b11_judges_two_processes_and_two_hosts_against_benchmarks_md_and_shows_four() -> None:
    rows = {row.key: row for row in report.rows_for({"B11": _b11(1.7, 1.65, 1.5)})}
    assert set(rows) == {"B11_2_processes", "B11_2_hosts", "B11_4_processes"}
    two = rows["B11_2_processes"]
    assert (two.floor, two.target, two.higher_is_better) == (1.0, 1.6, True)
    assert two.verdict() == "target" and rows["B11_2_hosts"].verdict() == "target"
    assert "680 vs 400/s" in two.label
    assert rows["B11_4_processes"].kind == "reference" and "on 2 cores" in rows["B11_4_processes"].label
    worse = {row.key: row for row in report.rows_for({"B11": _b11(0.9, 1.2, 1.0)})}
    assert worse["B11_2_processes"].verdict() == report.FLOOR_FAILED
    assert worse["B11_2_hosts"].verdict() == "below target"
    assert report.rows_for({}) == []
