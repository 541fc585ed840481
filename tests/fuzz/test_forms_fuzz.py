"""Fuzz every form POST as an operator and as a read-only user: no 500, no traceback, nothing stored when refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executions.forms import ArmFaultForm
from lab import forms as lab_forms
from lab.demos import DEMOS
from tests.dashboard.support import make_user
from tests.fuzz.conftest import assert_rejection_stores_nothing
from tests.fuzz.hostile import DEEP_JSON, WEB_SEEDS, fuzz_settings, hostile_text, query_string
from tests.fuzz.web import assert_answered, client_for

FUZZ_SETTINGS = fuzz_settings(max_examples=5)
TEXT_SEEDS = WEB_SEEDS
MISSING = 2_000_000_000  # no row has this id
COMPARE = {
    "title": "t",
    "semantics": "no-such-semantics",
    "retries": "none",
    "max_attempts": "4",
    "initial_delay": "2",
    "backoff_rate": "2",
    "max_delay": "30",
    "jitter": "NONE",
    "faults": "kill_after_body",
    "fail_n": "2",
    "time_scale": "0.1",
}
DEMO_FIELDS = {
    "comparison": {"time_scale": "2"},
    "fraud": {"transaction_id": "tx1", "amount": "-1", "time_scale": "0.0001"},
    "async": {"action": "no-such-action", "function": "async-receipt", "time_scale": "0.1"},
}

# Each form: (url, the fields it reads). One field is always wrong (a function, semantics, amount,
# time scale or action that does not exist), so sweeping the others never starts anything, while
# every field is still cleaned: Django validates each field of a form, whatever the others hold.
FORMS: dict[str, tuple[str, dict[str, str]]] = {
    "start": (
        "/executions/start/",
        {"function": "no-such-function", "payload": "{}", "name": "", "invocation_type": "Event", "time_scale": "1"},
    ),
    "arm-fault": ("/executions/{pk}/arm-fault/", {"step_name": "charge", "phase": "no-such-phase"}),
    "approve-missing": (f"/callbacks/{MISSING}/approve/", {"result": "{}", "next": "/callbacks/"}),
    "reject-missing": (
        f"/callbacks/{MISSING}/reject/",
        {"error_type": "Rejected", "error_message": "no", "error_data": "{}", "next": "/callbacks/"},
    ),
    "heartbeat-missing": (f"/callbacks/{MISSING}/heartbeat/", {"next": "/callbacks/"}),
    "compare": ("/lab/compare/", COMPARE),
    **{f"demo-{demo.slug}": (f"/lab/demos/{demo.slug}/run/", DEMO_FIELDS[demo.kind]) for demo in DEMOS},
    "redrive-missing": (f"/lab/dlq/{MISSING}/redrive/", {"next": "/lab/dlq/"}),
    "stop-missing": (f"/executions/{MISSING}/stop/", {}),
    "kill-missing": (f"/executions/{MISSING}/kill/", {}),
    "rerun-missing": (f"/executions/{MISSING}/run-again/", {}),
}

# The comparison form renders slowly (≈90 ms): its text and float fields take every seed, its
# integer and choice fields (Django's own parsing) are left to Hypothesis.
SWEPT = {"compare": ["title", "semantics", "backoff_rate", "time_scale"]}


def refused(form: str, fields: dict[str, str], response: Any) -> bool:
    """Whether the post must have stored nothing (each view's own contract for a refusal)."""
    if response.status_code != 302:
        return True  # a form re-rendered with its errors, a 400, 403 or 404
    if form in {"start", "compare"}:
        return False  # 302: started
    if form == "arm-fault":
        return not ArmFaultForm(fields).is_valid()
    if form.startswith("demo-"):
        return not (
            lab_forms.TimeScaleForm(fields).is_valid()
            or (lab_forms.AsyncForm(fields).is_valid() and fields.get("action") in lab_forms.ASYNC_ACTIONS)
        )
    return form.endswith("-missing")


@pytest.fixture(scope="module")
def clients(fuzz_target: dict[str, Any]) -> dict[str, Any]:
    return {"staff": client_for(make_user(staff=True)), "viewer": client_for(make_user())}


def post(clients: dict[str, Any], user: str, form: str, fields: dict[str, str], pk: int, htmx: bool = False) -> Any:
    url = FORMS[form][0].format(pk=pk)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    def send() -> Any:
        # Encoded by hand: Django's test client cannot encode a lone surrogate, a hostile browser can.
        body = query_string(fields)
        response = clients[user].post(url, body, content_type="application/x-www-form-urlencoded", **headers)
        return assert_answered(response, (url, fields))

    outcome = assert_rejection_stores_nothing(
        send, lambda response: user == "viewer" or refused(form, fields, response), (user, url, fields)
    )
    if user == "viewer":
        # 403, or 404 for a row that does not exist; the comparison form may show its errors first (200).
        assert outcome.status_code in {200, 403, 404} if form == "compare" else {403, 404}, outcome
    return outcome


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_form_field_takes_every_seed(clients: dict[str, Any], fuzz_target: dict[str, Any], form: str) -> None:
    _, fields = FORMS[form]
    for field in SWEPT.get(form, fields) or {"unused": ""}:
        for seed in TEXT_SEEDS:
            post(clients, "staff", form, {**fields, field: seed}, fuzz_target["pk"])
    post(clients, "viewer", form, dict.fromkeys(fields, "\x00"), fuzz_target["pk"])


@pytest.mark.parametrize("form", sorted(FORMS))
@FUZZ_SETTINGS
@given(data=st.data())
def test_forms_answer_any_post(clients: dict[str, Any], fuzz_target: dict[str, Any], form: str, data: Any) -> None:
    _, fields = FORMS[form]
    names = sorted(fields) or ["unused"]
    changes = data.draw(st.dictionaries(st.sampled_from(names), hostile_text, min_size=1, max_size=len(names)))
    user, htmx = data.draw(st.sampled_from(["staff", "viewer"])), data.draw(st.booleans())
    post(clients, user, form, {**fields, **changes}, fuzz_target["pk"], htmx)


def test_start_form_refuses_deep_json_with_a_form_error(clients: dict[str, Any], fuzz_target: dict[str, Any]) -> None:
    fields = {**FORMS["start"][1], "function": "fuzz-target", "payload": DEEP_JSON}
    response = post(clients, "staff", "start", fields, fuzz_target["pk"])
    assert response.status_code == 200
    assert "Input is JSON nested deeper than 64 levels." in response.content.decode()
