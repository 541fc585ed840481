"""Seed 001 in both languages: one transaction submitted from the fraud demo's page to the Python
twin and to the seed's TypeScript handler (on Node 22), each approved from the callbacks inbox over
real HTTP, both SUCCEEDED with the same counts."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from engine.contrib.django.models import Execution, Invocation
from executions import selectors as execution_selectors
from lab import counts, selectors, services
from tests.conftest import wait_until
from tests.lab.support import operator_client

# One day of callback timeout in 86 s: time enough to answer, over before anyone forgets the test.
SCALE = "0.001"


class Browserless:
    """A logged-in session on the web server over plain HTTP (cookies, CSRF), as a browser's forms post."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.post("/accounts/login/", {"username": username, "password": password}, form_page="/accounts/login/")

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=60) as response:
            return str(response.read().decode())

    def post(self, path: str, data: dict[str, str], form_page: str) -> tuple[int, str]:
        page = self.get(form_page)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page[:500]
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token.group(1)}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + form_page})
        with self.opener.open(request, timeout=60) as response:
            return response.status, str(response.read().decode())


def suspended_with_two_callbacks(execution: Execution) -> list[Any] | None:
    """The execution's two pending callbacks once its first invocation has ended (suspended)."""
    first = Invocation.objects.filter(execution=execution, seq=1).values_list("ended_at", "outcome").first()
    if first is None or first[0] is None:
        return None
    pending = execution_selectors.pending_callback_list(execution=execution)
    return pending if len(pending) == 2 else None


@pytest.fixture(scope="module")
def transaction(ts_stack: Any, web_server: str) -> dict[str, Any]:
    unique = uuid.uuid4().hex[:8]
    client = operator_client(unique)
    tx = f"both{unique[:6]}"
    response = client.post(
        "/lab/demos/fraud/run/",
        {"transaction_id": tx, "amount": "6500", "language": "both", "time_scale": SCALE},
    )
    assert response.status_code == 302, response.content[:800]
    executions = {
        language: Execution.objects.get(function_name=function, name=f"tx-{tx}")
        for language, function in services.FRAUD_FUNCTIONS.items()
    }
    # Another operator answers, through the web server's login form and the inbox's own form.
    from django.contrib.auth import get_user_model

    answerer = get_user_model().objects.create_user(f"inbox-{unique}", password="inbox-pw", is_staff=True)
    http = Browserless(web_server, answerer.username, "inbox-pw")
    answered = {}
    for language, execution in executions.items():
        pending = wait_until(
            lambda execution=execution: suspended_with_two_callbacks(execution),
            timeout=60,
            message=f"{language}: two callbacks and a suspended first invocation",
        )
        # The inbox's Approve button: its form posts {"approved": true} to the callback's approve action.
        status, _ = http.post(
            f"/callbacks/{pending[0].pk}/approve/", {"result": '{"approved": true}', "note": ""}, "/callbacks/"
        )
        assert status == 200
        answered[language] = pending[0]
    for execution in executions.values():
        wait_until(
            lambda execution=execution: Execution.objects.get(pk=execution.pk).status != "RUNNING",
            timeout=60,
            message=f"{execution.function_name} to finish",
        )
    response = client.get("/lab/demos/fraud/")
    assert response.status_code == 200
    page = response.content.decode()
    return {"tx": tx, "executions": executions, "answered": answered, "page": page}


def test_both_languages_finish_succeeded_and_approved(transaction: dict[str, Any]) -> None:
    for language, execution in transaction["executions"].items():
        execution.refresh_from_db()
        assert execution.status == "SUCCEEDED", (language, execution.error)
        decision, _ = selectors.fraud_decision(json.loads(execution.result))
        assert decision == "approved", (language, execution.result)
    typescript = json.loads(transaction["executions"]["typescript"].result)
    tx = transaction["tx"]
    # The seed's finalize step: the capture with its own idempotency key (BP1).
    assert typescript == {"authorized": True, "final": True, "amount": 6500, "idempotencyKey": f"finalize-{tx}"}


def test_the_typescript_answer_went_through_the_inbox_and_its_node_runtime(transaction: dict[str, Any]) -> None:
    from engine.contrib.django.models import LogLine
    from executions.models import AuditEntry

    execution = transaction["executions"]["typescript"]
    answered = transaction["answered"]["typescript"]
    audit = AuditEntry.objects.filter(action="callback.success", target=answered.callback_id, ok=True)
    assert audit.exists(), list(AuditEntry.objects.order_by("-id").values("action", "target")[:5])
    lines = list(LogLine.objects.filter(execution=execution).values_list("message", flat=True))
    # The seed's notification texts, written by the TypeScript handler in its Node process.
    assert any(f"Answer with callback {answered.callback_id}" in line for line in lines), lines


def test_the_same_counts_side_by_side(transaction: dict[str, Any]) -> None:
    rows = selectors.fraud_transactions(function_names=tuple(services.FRAUD_FUNCTIONS.values()), limit=50)
    pair = next(p for p in counts.fraud_side_by_side(rows, limit=50) if p.name == f"tx-{transaction['tx']}")
    python, typescript = pair.by_language["python"], pair.by_language["typescript"]
    assert python is not None and typescript is not None
    # Invocation 1: the score step and the two notifications; invocation 2, after the answer: the charge.
    assert python.runs == typescript.runs == (3, 1), (python, typescript)
    assert python.attempts == typescript.attempts == 4
    assert (python.answered, python.callbacks) == (typescript.answered, typescript.callbacks) == (1, 2)
    assert pair.verdict == "same"
    page = transaction["page"]
    row = re.search(rf'<tr data-transaction="tx-{transaction["tx"]}">(.*?)</tr>', page, re.S)
    assert row and "✓ same counts" in row.group(1)
    assert row.group(1).count('data-runs="3 1"') == 2
