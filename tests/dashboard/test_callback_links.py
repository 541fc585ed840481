"""Signed approval links (issue #17 point 4): a verification answered from the customer's email or
SMS with no login, once, before the callback times out; GET never answers.

Real fraud executions (worker, scheduler, SDK); the customer is a fresh test client with no session.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta

import pytest
from django.core import signing
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import engine
from engine.contrib.django.models import Execution, Operation
from executions import links
from executions.models import AuditEntry
from tests.conftest import wait_until
from tests.dashboard.test_actions import finished, pending_callback
from tests.dashboard.test_callback_inbox import fraud, waiting


def link(cb: Operation, action: str, *, deadline: object = "callback's") -> str:
    """The path a message's link points to; ``deadline`` overrides the callback's own."""
    expires = cb.deadline if deadline == "callback's" else deadline  # type: ignore[attr-defined]
    token = links.link_token(callback_id=cb.callback_id, action=action, deadline=expires, now=timezone.now())
    return reverse("executions:callback_link", args=[token])


def by_channel(execution: Execution) -> dict[str, Operation]:
    return {cb.channel: cb for cb in waiting(execution)}


def status_of(cb: Operation) -> str:
    return Operation.objects.get(pk=cb.pk).status


def answers_in_history(execution: Execution) -> list[str]:
    events = engine.client().get_durable_execution_history(DurableExecutionArn=execution.arn)["Events"]
    return [e["EventType"] for e in events if e["EventType"] in {"CallbackSucceeded", "CallbackFailed"}]


def link_audits(execution: Execution) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(execution_pk=execution.pk, detail__via="signed link").order_by("at"))


def ended(execution: Execution) -> Execution:
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status != "RUNNING", message="the execution to end")
    return Execution.objects.get(pk=execution.pk)


# --- the token alone ----------------------------------------------------------------------------


def test_a_token_names_its_callback_its_action_and_when_it_expires() -> None:
    now = timezone.now()
    token = links.link_token(callback_id="cb-1", action="approve", deadline=now + timedelta(minutes=5), now=now)
    claim = links.link_claim(token, now=now)
    assert (claim.callback_id, claim.action) == ("cb-1", "approve")
    assert abs((claim.expires_at - (now + timedelta(minutes=5))).total_seconds()) < 1
    with pytest.raises(links.ExpiredLink, match="It expired at "):
        links.link_claim(token, now=now + timedelta(minutes=6))


def test_a_token_with_any_part_changed_is_refused() -> None:
    now = timezone.now()
    token = links.link_token(callback_id="cb-1", action="approve", deadline=None, now=now)
    rest = token.split(":", 1)[1]
    # The same claim for "reject", re-encoded but not re-signed: the signature no longer fits.
    forged = signing.b64_encode(json.dumps({"c": "cb-1", "a": "reject", "e": 2**31}).encode()).decode()
    other_salt = signing.dumps({"c": "cb-1", "a": "approve", "e": 2**31}, salt="another purpose")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (f"{forged}:{rest}", other_salt, flipped, token[:-5], "", "not-a-token", "eyJ\ud800:1:2", "a" * 5000):
        with pytest.raises(links.TamperedLink):
            links.link_claim(bad, now=now)
    with pytest.raises(ValueError, match="heartbeat"):
        links.link_token(callback_id="cb-1", action="heartbeat", deadline=None, now=now)


# --- the pages, against real executions -------------------------------------------------------------


def test_opening_a_link_shows_what_is_approved_and_answers_nothing(stack) -> None:
    execution = fraud(6500, scale=0.005)
    email = by_channel(execution)["email"]
    customer = Client()
    for _ in range(2):  # a mail scanner's prefetch, then the customer
        page = customer.get(link(email, "approve"))
        assert page.status_code == 200
        assert "no-store" in page["Cache-Control"]
    body = page.content.decode()
    assert "Approve this request?" in body and "Yes, approve</button>" in body
    assert "<dt>amount</dt><dd>6500</dd>" in body and "<dt>merchant</dt><dd>Durable Lab Store</dd>" in body
    assert "did you just pay 6,500.00 at Durable Lab Store" in body
    assert "data-countdown" in body and "Time to answer" in body
    assert status_of(email) == "STARTED" and not link_audits(execution) and not answers_in_history(execution)
    assert 'action="/accounts/logout/"' not in body  # no session, no operator navigation
    customer.post(link(email, "reject"))
    assert ended(execution).status == "SUCCEEDED"


def test_the_approve_link_answers_once_and_every_later_use_is_refused(stack) -> None:
    execution = fraud(6500, scale=0.005)
    cards = by_channel(execution)
    approve = link(cards["email"], "approve")
    page = Client().post(approve)
    assert page.status_code == 200 and "Approved. Thank you." in page.content.decode()
    done = ended(execution)
    assert json.loads(done.result)["decision"] == "approved"
    assert json.loads(done.result)["why"] == "customer confirmed"
    [entry] = link_audits(execution)
    assert (entry.user, entry.action, entry.ok) == (None, "callback.success", True)
    assert json.loads(entry.detail["result"]) == {"approved": True, "via": "signed link"}

    for method, url in (("post", approve), ("get", approve), ("post", link(cards["email"], "reject"))):
        again = getattr(Client(), method)(url)
        assert again.status_code == 410, method
        assert "This request was already answered" in again.content.decode()
        assert "It was approved at " in again.content.decode()
    # The SMS was never answered, but the transaction is settled: its link has nothing left to do.
    sms = Client().get(link(cards["sms"], "approve"))
    assert sms.status_code == 410 and "No answer is needed any more" in sms.content.decode()
    assert answers_in_history(execution) == ["CallbackSucceeded"]
    assert len(link_audits(execution)) == 1  # refusals before the engine write no audit entry


def test_the_reject_link_fails_the_callback_and_the_transaction_is_escalated(stack) -> None:
    execution = fraud(5000, scale=0.005)
    sms = by_channel(execution)["sms"]
    page = Client().post(link(sms, "reject"))
    assert page.status_code == 200 and "Rejected. Thank you." in page.content.decode()
    assert json.loads(ended(execution).result)["decision"] == "escalated"
    [entry] = link_audits(execution)
    assert entry.user is None and entry.action == "callback.failure"
    assert entry.detail["error"]["ErrorType"] == "Rejected"
    assert answers_in_history(execution) == ["CallbackFailed"]


def test_a_tampered_or_expired_link_gets_a_clear_page_and_changes_nothing(stack) -> None:
    execution = fraud(6500, scale=0.005)
    email = by_channel(execution)["email"]
    good = link(email, "approve")
    tampered = good[:-3] + ("x" if good[-3] != "x" else "y") + good[-2:]  # one character of the signature
    expired = link(email, "approve", deadline=timezone.now() - timedelta(seconds=1))
    for method in ("get", "post"):
        page = getattr(Client(), method)(tampered)
        assert page.status_code == 400 and "This link is not valid" in page.content.decode()
        page = getattr(Client(), method)(expired)
        assert page.status_code == 410 and "This link has expired" in page.content.decode()
    assert Client().put(good).status_code == 405
    assert status_of(email) == "STARTED" and not link_audits(execution) and not answers_in_history(execution)
    Client().post(link(email, "reject"))
    ended(execution)


def test_a_link_used_after_the_callback_timed_out_is_refused(stack) -> None:
    execution = fraud(6500, scale=0.0001)  # one day in 8.6 s
    email = by_channel(execution)["email"]
    # A link minted with a later expiry (as if the clock had drifted) still meets the engine's timeout.
    late = link(email, "approve", deadline=timezone.now() + timedelta(hours=1))
    wait_until(lambda: status_of(email) == "TIMED_OUT", timeout=60, message="the timeout")
    page = Client().post(late)
    assert page.status_code == 410 and "This link has expired" in page.content.decode()
    assert "The request timed out at " in page.content.decode()
    assert not link_audits(execution)


def test_two_clicks_at_once_answer_once_and_the_other_says_already_answered(stack) -> None:
    execution = fraud(6500, scale=0.005)
    approve = link(by_channel(execution)["email"], "approve")
    start = threading.Barrier(2)
    pages: list[tuple[int, str]] = []

    def click() -> None:
        try:
            start.wait()
            page = Client().post(approve)
            pages.append((page.status_code, page.content.decode()))
        finally:
            connection.close()  # this thread's own connection

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(timeout=60)
    assert sorted(code for code, _ in pages) == [200, 410]
    refused = next(body for code, body in pages if code == 410)
    assert "This request was already answered" in refused
    ended(execution)
    assert answers_in_history(execution) == ["CallbackSucceeded"]
    # One answer audited, and the loser too when the engine (not the page's first read) refused it.
    assert sorted(e.ok for e in link_audits(execution)) in ([True], [False, True])


# --- the customer's inbox -----------------------------------------------------------------------


def test_the_customer_inbox_shows_the_email_and_the_sms_with_their_links_for_operators_only(
    stack, op_client: Client, viewer_client: Client
) -> None:
    execution = fraud(6500, scale=0.005)
    cards = by_channel(execution)
    url = reverse("executions:customer_inbox", args=[execution.pk])
    body = op_client.get(url).content.decode()
    assert "Did you make this payment?" in body and "CARD-SECURITY" in body
    found = re.findall(r'href="http://testserver/answer/([^/"]+)/" data-link="(\w+)"', body)
    claims = {(links.link_claim(t, now=timezone.now()).callback_id, a) for t, a in found}
    assert claims == {(cards[c].callback_id, a) for c in ("email", "sms") for a in ("approve", "reject")}
    inbox = op_client.get(reverse("executions:callbacks")).content.decode()
    assert f"{url}#msg-{cards['email'].pk}" in inbox and "open the customer's email" in inbox
    assert "open the customer's SMS" in inbox

    assert viewer_client.get(url).status_code == 403  # a link answers: read-only users see none
    assert Client().get(url).status_code == 302

    Client().post(link(cards["sms"], "approve"))
    ended(execution)
    after = op_client.get(url).content.decode()
    assert "/answer/" not in after and "approved</span>" in after and "No answer is needed any more" in after


def test_a_plain_callback_outside_the_fraud_demo_gets_a_message_and_working_links(
    op_client: Client, lam: object
) -> None:
    arn = lam.invoke(FunctionName="human-approval", InvocationType="Event", Payload=b'{"amount": 9}')[  # type: ignore[attr-defined]
        "DurableExecutionArn"
    ]
    execution = Execution.objects.get(arn=arn)
    pending_callback(execution)
    body = op_client.get(reverse("executions:customer_inbox", args=[execution.pk])).content.decode()
    assert "Your answer is needed: manager-approval" in body and "No SMS." in body
    [token] = re.findall(r'href="http://testserver/answer/([^/"]+)/" data-link="approve"', body)
    confirm = Client().get(reverse("executions:callback_link", args=[token])).content.decode()
    assert "A request for your answer" in confirm and "<dt>amount</dt><dd>9</dd>" in confirm
    assert Client().post(reverse("executions:callback_link", args=[token])).status_code == 200
    done = finished(execution)
    assert json.loads(json.loads(done.result)["decision"]) == {"approved": True, "via": "signed link"}
