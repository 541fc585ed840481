"""Fuzz the callbacks inbox's approve, reject and heartbeat on a callback that is really pending.

The one fuzz module that needs the worker: a callback exists only once a handler has asked for it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.contrib.django.models import Operation
from tests.conftest import wait_until
from tests.dashboard.support import make_user
from tests.fuzz.conftest import assert_rejection_stores_nothing, wait_quiet
from tests.fuzz.hostile import DEEP_JSON, DEEPER_JSON, HOSTILE_STRINGS, hostile_text, query_string
from tests.fuzz.web import assert_answered, client_for

HTMX = {"HTTP_HX_REQUEST": "true"}
# Each one invalid as a JSON result, so the callback stays pending for the next.
BAD_JSON = [
    *(text for text in HOSTILE_STRINGS if text not in {"-1", "", "x" * 70_000}),
    '{"a": NaN}',
    "x" * 70_000,
    DEEP_JSON,
    DEEPER_JSON,
    "{oops",
]
BAD_NEXT = ["/callbacks/\r\nX-Injected: 1", "/lab/\r\n", "\x00", "//evil.example/", "javascript:alert(1)", "\ud800"]


@pytest.fixture(scope="module")
def pending(stack: Any, fuzz_target: dict[str, Any]) -> Operation:
    arn = engine.client().invoke(
        FunctionName=fuzz_target["function"],
        InvocationType="Event",
        Payload=b'{"amount": 7}',
        DurableExecutionName="cb",
    )["DurableExecutionArn"]
    callback = wait_until(
        lambda: Operation.objects.filter(execution__arn=arn, type="CALLBACK", status="STARTED").first(),
        message="a pending callback",
    )
    wait_quiet()  # the invocation that asked for it has ended
    return callback


@pytest.fixture(scope="module")
def operator_client(pending: Operation) -> Any:
    return client_for(make_user(staff=True))


def post(client: Any, pending: Operation, action: str, fields: dict[str, str], htmx: bool) -> Any:
    url = f"/callbacks/{pending.pk}/{action}/"

    def send() -> Any:
        body = query_string(fields)
        response = client.post(url, body, content_type="application/x-www-form-urlencoded", **(HTMX if htmx else {}))
        return assert_answered(response, (url, fields))

    outcome = assert_rejection_stores_nothing(send, lambda _: action != "heartbeat", (url, fields))
    if outcome.status_code == 302:
        assert outcome["Location"].startswith("/"), outcome["Location"]
        assert "\r" not in outcome["Location"] and "\n" not in outcome["Location"]
    return outcome


def test_approve_and_reject_refuse_every_bad_json(operator_client: Any, pending: Operation) -> None:
    for htmx in (True, False):
        for bad in BAD_JSON:
            post(operator_client, pending, "approve", {"result": bad, "next": "/callbacks/"}, htmx)
            post(operator_client, pending, "reject", {"error_type": "R", "error_data": bad}, htmx)
    deep = post(operator_client, pending, "approve", {"result": DEEP_JSON}, htmx=True).content.decode()
    assert "Result is JSON nested deeper than 64 levels." in deep
    deep = post(operator_client, pending, "reject", {"error_type": "R", "error_data": DEEP_JSON}, htmx=True)
    assert "Error data is JSON nested deeper than 64 levels." in deep.content.decode()
    pending.refresh_from_db()
    assert pending.status == "STARTED"


def test_redirects_after_an_action_ignore_a_hostile_next(operator_client: Any, pending: Operation) -> None:
    for target in BAD_NEXT:
        post(operator_client, pending, "heartbeat", {"next": target}, htmx=False)
        post(operator_client, pending, "approve", {"result": "{oops", "next": target}, htmx=False)


@settings(
    derandomize=True,
    deadline=None,
    max_examples=10,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(error_type=st.just(""), error_message=hostile_text, error_data=hostile_text, htmx=st.booleans())
def test_reject_answers_any_post(
    operator_client: Any, pending: Operation, error_type: str, error_message: str, error_data: str, htmx: bool
) -> None:
    # No error type: the form is always refused, and every other field is still cleaned.
    fields = {"error_type": error_type, "error_message": error_message, "error_data": error_data}
    assert post(operator_client, pending, "reject", fields, htmx).status_code in {200, 302}


def test_the_callback_was_pending_all_along(operator_client: Any, pending: Operation) -> None:
    """A valid answer still works after the fuzzing: the refusals above were real refusals."""
    response = operator_client.post(f"/callbacks/{pending.pk}/approve/", {"result": '{"approved": true}'}, **HTMX)
    assert response.status_code == 200 and "Approved" in response.content.decode(), response.content[-500:]
