"""Seed 000's four scenarios, run from its demo page as one 2 x 2 comparison; the table's counts checked."""

from __future__ import annotations

import pytest

from lab.models import Comparison
from tests.lab.support import finished_rows, operator_client, step, table_counts

# Half speed: the 60 s ExecutionTimeout becomes 30 s; the 3 s function Timeout stays real.
SCALE = "0.5"


@pytest.fixture(scope="module")
def page(stack):
    import uuid

    client = operator_client(uuid.uuid4().hex[:8])
    response = client.post("/lab/demos/replay-not-retry/run/", {"time_scale": SCALE})
    assert response.status_code == 302, response.content[:500]
    comparison = Comparison.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))
    rows = finished_rows(comparison, timeout=120)
    html = client.get(f"/lab/comparisons/{comparison.pk}/").content.decode()
    return {"comparison": comparison, "rows": rows, "table": table_counts(html), "html": html}


def cell(page, position: int, column: str) -> int:
    return int(page["table"][position][column])


def test_the_comparison_has_the_four_scenarios_in_order(page):
    labels = [row.variant.label for row in page["rows"].values()]
    assert labels == [
        "at-least-once · default retry",
        "at-least-once · no retry",
        "at-most-once · default retry",
        "at-most-once · no retry",
    ]
    assert page["comparison"].time_scale == 0.5
    assert "time scale \N{MULTIPLICATION SIGN}0.5" in page["html"]


@pytest.mark.parametrize("position", [0, 1])
def test_at_least_once_table_shows_many_invocations_one_attempt_a_body_run_each(page, position):
    row = page["table"][position]
    assert row["status"] == "TIMED_OUT"
    invocations = cell(page, position, "invocations")
    assert invocations >= 3
    # Step #1 succeeded once; Step #2 never got past attempt 1: a replay is not a retry.
    assert cell(page, position, "attempts") == 2
    # Step #1 ran once; Step #2's body ran in every invocation the Timeout killed (the last one
    # may instead be cut short by the execution timeout before it reaches the step).
    timeline = list(page["rows"].values())[position].data
    killed = sum(1 for i in timeline["invocations"] if i["outcome"] == "timed_out")
    assert killed >= invocations - 1
    assert cell(page, position, "body_runs") == 1 + killed
    assert cell(page, position, "duplicates") == killed - 1


def test_at_most_once_with_retry_runs_the_body_every_second_invocation(page):
    row = list(page["rows"].values())[2]
    invocations = cell(page, 2, "invocations")
    runs = [r["invocation_seq"] for r in step(row, "Step #2")["body_runs"]]
    assert page["table"][2]["status"] in {"TIMED_OUT", "FAILED"}
    assert runs == list(range(1, 2 * len(runs), 2))
    assert cell(page, 2, "body_runs") == 1 + len(runs)
    assert invocations in {2 * len(runs) - 1, 2 * len(runs), 2 * len(runs) + 1}
    assert cell(page, 2, "duplicates") == len(runs) - 1


def test_at_most_once_without_retry_is_exactly_once(page):
    row = page["table"][3]
    assert row["status"] == "FAILED"
    assert cell(page, 3, "invocations") == 2
    assert cell(page, 3, "body_runs") == 2  # Step #1 and Step #2, once each
    assert cell(page, 3, "duplicates") == 0
    assert "interrupted" in list(page["rows"].values())[3].error.lower()
