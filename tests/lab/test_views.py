"""The lab's pages through Django's test client, against the real stack."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from engine import async_invoke
from engine.contrib.django.models import AsyncInvocation, Execution
from lab.models import Comparison
from tests.conftest import wait_until
from tests.lab.support import finished_rows, operator_client


@pytest.fixture
def client(stack, unique):
    return operator_client(unique)


@pytest.fixture
def viewer(unique):
    user = get_user_model().objects.create_user(f"viewer-{unique}", password="pw")
    client = Client()
    client.force_login(user)
    return client


def comparison_from(response) -> Comparison:
    assert response.status_code == 302, response.content[:800]
    return Comparison.objects.get(pk=int(re.search(r"/comparisons/(\d+)/", response["Location"]).group(1)))


def test_home_links_every_demo_and_the_tools(client):
    html = client.get("/lab/").content.decode()
    for slug in ("replay-not-retry", "fraud", "idempotency", "express", "async-retries"):
        assert f"/lab/demos/{slug}/" in html
    assert "/lab/compare/" in html and "/lab/diff/" in html and "/lab/dlq/" in html


@pytest.mark.parametrize("slug", ["replay-not-retry", "fraud", "idempotency", "express", "async-retries"])
def test_every_demo_page_explains_what_to_notice_and_offers_a_time_scale(client, slug):
    response = client.get(f"/lab/demos/{slug}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "What to notice" in html
    assert 'name="time_scale"' in html


def test_unknown_demo_is_404(client):
    assert client.get("/lab/demos/nope/").status_code == 404


def test_comparison_form_runs_the_cartesian_product_live(client):
    form = {
        "semantics": ["AT_LEAST_ONCE_PER_RETRY", "AT_MOST_ONCE_PER_RETRY"],
        "retries": ["custom"],
        "max_attempts": 3,
        "initial_delay": 1,
        "backoff_rate": 2,
        "max_delay": 10,
        "jitter": "HALF",
        "faults": ["fail_n"],
        "fail_n": 1,
        "time_scale": "0.1",
        "title": "fail once, half jitter",
    }
    comparison = comparison_from(client.post("/lab/compare/", form))
    assert comparison.title == "fail once, half jitter" and comparison.time_scale == 0.1
    assert [v.label for v in comparison.variants.all()] == [
        "at-least-once · retry 3\N{MULTIPLICATION SIGN}1s\N{MULTIPLICATION SIGN}2 half · fail 1\N{MULTIPLICATION SIGN} then succeed",
        "at-most-once · retry 3\N{MULTIPLICATION SIGN}1s\N{MULTIPLICATION SIGN}2 half · fail 1\N{MULTIPLICATION SIGN} then succeed",
    ]
    live = client.get(f"/lab/comparisons/{comparison.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert live.lstrip().startswith('<div id="live"') and "<html" not in live
    rows = finished_rows(comparison, timeout=60)
    assert all(row.status == "SUCCEEDED" for row in rows.values())
    html = client.get(f"/lab/comparisons/{comparison.pk}/").content.decode()
    assert "all variants finished" in html and 'hx-trigger="every 2s' not in html
    figure = json.loads(
        re.search(r'data-plot="retries-plot">(.*?)</script>', html, re.S).group(1).replace("<\\/", "</")
    )
    planned = next(t for t in figure["data"] if t["name"].startswith("Planned"))
    # HALF jitter: after attempt 1 (base 1 s) 1 … 1 s, after attempt 2 (base 2 s) 1 … 2 s; drawn x 0.1.
    # The exact 1 s is drawn as a thin band centred on 0.1; the 1 … 2 s range spans 0.1 … 0.2.
    assert [b + y / 2 for b, y in zip(planned["base"], planned["y"], strict=True)] == pytest.approx([0.1, 0.15])
    assert planned["y"][1] == pytest.approx(0.1)
    timelines = json.loads(
        re.search(r'data-plot="timelines-plot">(.*?)</script>', html, re.S).group(1).replace("<\\/", "</")
    )
    assert len([k for k in timelines["layout"] if k.startswith("yaxis")]) == 2
    assert timelines["layout"]["yaxis"]["categoryarray"] == timelines["layout"]["yaxis2"]["categoryarray"]


def test_too_many_variants_are_refused(client):
    form = {
        "semantics": ["AT_LEAST_ONCE_PER_RETRY", "AT_MOST_ONCE_PER_RETRY"],
        "retries": ["default", "none", "custom"],
        "max_attempts": 3,
        "initial_delay": 1,
        "backoff_rate": 2,
        "max_delay": 10,
        "jitter": "NONE",
        "faults": ["none", "timeout", "fail_n"],
        "fail_n": 1,
        "time_scale": "0.1",
    }
    response = client.post("/lab/compare/", form)
    assert response.status_code == 200
    assert "That is 18 variants" in response.content.decode()


def test_viewers_can_look_but_not_start(viewer):
    assert viewer.get("/lab/").status_code == 200
    assert viewer.post("/lab/demos/idempotency/run/", {"time_scale": "0.1"}).status_code == 403
    assert viewer.post("/lab/compare/", {}).status_code == 200  # the form, with errors; nothing started


def test_diff_of_the_idempotency_variants_marks_the_duplicate(client):
    comparison = comparison_from(client.post("/lab/demos/idempotency/run/", {"time_scale": "0.1"}))
    rows = finished_rows(comparison, timeout=60)
    without, with_key = (row.variant.execution_arn for row in rows.values())
    response = client.get("/lab/diff/", {"a": without, "b": with_key})
    html = response.content.decode()
    assert response.status_code == 200
    duplicates = re.search(r'data-counter="Duplicate side effects">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]+)</td>', duplicates)[:2] == ["1", "0"]
    assert "charge-payment" in html and 'data-plot="timelines-plot"' in html


def test_diff_of_an_unknown_execution_says_so(client):
    arn = "arn:aws:lambda:us-east-1:123456789012:function:x:$LATEST/durable-execution/n/0000"
    html = client.get("/lab/diff/", {"a": arn, "b": arn}).content.decode()
    assert "not found" in html.lower()


def test_fraud_double_submit_starts_one_workflow(client, unique):
    form = {"transaction_id": f"t{unique}", "amount": "250", "time_scale": "0.0001"}
    first = client.post("/lab/demos/fraud/run/", form, follow=True).content.decode()
    second = client.post("/lab/demos/fraud/run/", form, follow=True).content.decode()
    assert "Started the workflow" in first
    assert "already has a workflow" in second
    assert Execution.objects.filter(function_name="fraud-detection", name=f"tx-t{unique}").count() == 1
    assert (
        f"tx-t{unique}" in client.get("/lab/demos/fraud/", {"section": "live"}, HTTP_HX_REQUEST="true").content.decode()
    )


def test_async_demo_poison_event_reaches_the_dlq_page_and_redrives(client):
    try:
        client.post(
            "/lab/demos/async-retries/run/",
            {"action": "poison", "function": "async-receipt-no-retry", "time_scale": "0.01"},
        )
        dead = wait_until(
            lambda: async_invoke.dead_letters(function_name="async-receipt-no-retry", include_redriven=False),
            timeout=30,
            message="a dead letter",
        )[0]
        listing = client.get("/lab/dlq/").content.decode()
        assert dead["request_id"][:10] in listing
        detail = client.get(f"/lab/dlq/{dead['id']}/").content.decode()
        assert "holiday" in detail and "UnknownTemplateError" in detail
        client.post("/lab/demos/async-retries/run/", {"action": "fix", "function": "async-receipt", "time_scale": "1"})
        response = client.post(f"/lab/dlq/{dead['id']}/redrive/", {"next": "/lab/dlq/"})
        assert response.status_code == 302 and response["Location"] == "/lab/dlq/"
        assert async_invoke.get(dead["id"])["redriven_at"] is not None
        redrive = AsyncInvocation.objects.get(redrive_of_id=dead["id"])
        wait_until(
            lambda: AsyncInvocation.objects.get(pk=redrive.pk).status == "SUCCEEDED",
            timeout=30,
            message="the redriven event to succeed with the fix deployed",
        )
        listing = client.get("/lab/dlq/").content.decode()
        row = re.search(rf"<tr>(?:(?!</tr>).)*{dead['request_id'][:10]}.*?</tr>", listing, re.S).group(0)
        assert ">REDRIVEN<" in row and ">SUCCEEDED<" in row and "DEAD_LETTERED" not in row
        # The async demo remembers which function was chosen.
        demo = client.get("/lab/demos/async-retries/").content.decode()
        assert re.search(r'<option value="async-receipt" selected>', demo)
    finally:
        client.post(
            "/lab/demos/async-retries/run/", {"action": "unfix", "function": "async-receipt", "time_scale": "1"}
        )


def test_async_demo_request_response_reports_the_error_at_once(client):
    html = client.post(
        "/lab/demos/async-retries/run/", {"action": "sync", "function": "async-receipt", "time_scale": "1"}, follow=True
    ).content.decode()
    assert "FunctionError=Unhandled" in html and "no retry" in html
