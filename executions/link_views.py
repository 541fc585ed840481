"""Signed approval links: the page a customer opens from an email or SMS (no login), and the
customer's inbox, where operators and the fraud demo see those messages with their links.

Opening a link (GET) changes nothing: mail scanners fetch every link they see. Only the page's
button (POST) answers, through ``services``, like every other answer.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from engine.contrib.django.models import Execution, Operation
from engine.errors import ServiceError
from executions import links, selectors, services
from executions.templatetags.dashboard import COUNTDOWN_WORDS, utc

ANSWERED_WORDS = {"SUCCEEDED": "approved", "FAILED": "rejected"}


# never_cache: a shared cache must not serve a confirmation page after the callback was answered.
@never_cache
@require_http_methods(["GET", "POST"])
def callback_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET: what the link would answer, and a button. POST: answer, once."""
    try:
        claim = links.link_claim(token, now=timezone.now())
    except links.LinkError as exc:
        return _refusal(request, exc.status, exc.title, str(exc))
    operation = selectors.callback_by_id(callback_id=claim.callback_id)
    if operation is None:
        return _refusal(request, 410, "This request no longer exists", "It was deleted.")
    closed = closed_reason(operation)
    if closed:
        return _refusal(request, 410, *closed, cb=operation, claim=claim)
    if request.method == "GET":
        return _link_page(request, cb=operation, claim=claim)
    try:
        services.callback_answer_by_link(operation=operation, action=claim.action)
    except ServiceError as exc:
        # Another click (or the other channel, or the timeout) came first: the engine refused this one.
        operation = selectors.callback_by_id(callback_id=claim.callback_id) or operation
        title, reason = closed_reason(operation) or ("This request could not be answered", exc.message)
        return _refusal(request, 410, title, reason, cb=operation, claim=claim)
    return _link_page(request, cb=operation, claim=claim, answered=True)


def closed_reason(operation: Operation) -> tuple[str, str] | None:
    """(title, reason) when the callback can take no answer any more, else None."""
    execution = operation.execution
    if operation.status == "TIMED_OUT":
        return "This link has expired", f"The request timed out at {utc(operation.ended_at)} UTC."
    if operation.status != "STARTED":
        done = ANSWERED_WORDS.get(operation.status, operation.status.lower())
        return "This request was already answered", f"It was {done} at {utc(operation.ended_at)} UTC."
    if execution.status != "RUNNING":
        return (
            "This request was already answered",
            f"No answer is needed any more: it was settled at {utc(execution.ended_at)} UTC "
            "(another message was answered first, or it timed out).",
        )
    return None


def _refusal(request: HttpRequest, status: int, title: str, reason: str, **context: Any) -> HttpResponse:
    return _link_page(request, status=status, refused=title, reason=reason, **context)


def _link_page(request: HttpRequest, *, status: int = 200, **context: Any) -> HttpResponse:
    # The customer has no session, so the countdown's words come with the page, not the navigation.
    return render(request, "executions/link.html", {"countdown_words": COUNTDOWN_WORDS, **context}, status=status)


@login_required
@require_GET
def customer_inbox(request: HttpRequest, pk: int) -> HttpResponse:
    """The messages an execution's callbacks sent, as the customer received them, with live links.

    Operators only: whoever sees a link can answer with it.
    """
    if not services.can_operate(request.user):
        reason = "Only operators can open the customer's messages: their links answer the callbacks."
        return render(request, "403.html", {"reason": reason}, status=403)
    execution = get_object_or_404(Execution.objects.only("id", "arn", "name", "function_name", "status"), pk=pk)
    now = timezone.now()
    messages = [_message(request, cb, now) for cb in selectors.execution_callback_list(execution=execution)]
    context = {
        "execution": execution,
        "mails": [m for m in messages if m["cb"].channel != "sms"],
        "texts": [m for m in messages if m["cb"].channel == "sms"],
    }
    return render(request, "executions/customer_inbox.html", context)


def _message(request: HttpRequest, cb: Operation, now: Any) -> dict[str, Any]:
    closed = closed_reason(cb)
    return {
        "cb": cb,
        "closed": closed,
        "links": {} if closed else {action: _absolute_link(request, cb, action, now) for action in links.ACTIONS},
    }


def _absolute_link(request: HttpRequest, cb: Operation, action: str, now: Any) -> str:
    token = links.link_token(
        callback_id=cb.callback_id or "", action=action, deadline=getattr(cb, "deadline", None), now=now
    )
    return request.build_absolute_uri(reverse("executions:callback_link", args=[token]))
