"""Dashboard pages. Reads go through ``selectors``, actions through ``services``, charts through ``charts``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlparse

import plotly.io
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from engine import validation
from engine.contrib.django.models import Execution, Operation
from engine.errors import ServiceError
from executions import charts, forms, selectors, services, workers
from executions.templatetags.dashboard import utc

View = Callable[..., HttpResponse]


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def operator_required(view: View) -> View:
    """Logged in, POST, and allowed to operate (staff or ``executions.operate_executions``)."""

    @wraps(view)
    def wrapper(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not services.can_operate(request.user):
            return render(
                request,
                "403.html",
                {"reason": "Only operators (staff, or users with the “operate executions” permission) can do this."},
                status=403,
            )
        return view(request, *args, **kwargs)

    return login_required(require_POST(wrapper))


def refuses_bad_input(view: View) -> View:
    """Answer a query parameter the view cannot use with a 400 page saying why, never a 500."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except validation.InvalidInput as exc:
            return render(request, "400.html", {"reason": str(exc)}, status=400)

    return wrapper


def query_text(request: HttpRequest, key: str, label: str, max_length: int = 200) -> str:
    """Return ``?key=`` stripped and cut to ``max_length``; NUL bytes raise :class:`validation.InvalidInput`."""
    return validation.check_storable(request.GET.get(key, "").strip()[:max_length], label)


def query_int(request: HttpRequest, key: str) -> int | None:
    """Return ``?key=`` as a non-negative int, or None for anything else ("²" and "-1" included)."""
    value = request.GET.get(key, "")
    return int(value) if validation.is_ascii_digits(value) and len(value) <= 18 else None


def path_text(value: str, max_length: int = 256) -> str:
    """A text URL segment no row can match (a NUL byte, a lone surrogate, too long) is a 404, not a 500."""
    try:
        return validation.check_text(value, "URL", max_length=max_length)
    except validation.InvalidInput as exc:
        raise Http404("No such page.") from exc


def _partial(request: HtmxHttpRequest, template: str, fragment: str) -> str:
    return f"{template}#{fragment}" if request.htmx else template


@login_required
def home(request: HtmxHttpRequest) -> HttpResponse:
    return redirect("executions:list")


# --- executions list ------------------------------------------------------------------------


def _filters_from(request: HttpRequest) -> tuple[selectors.ExecutionFilters, dict[str, str]]:
    labels = {"status": "Status", "function": "Function", "name": "Name", "q": "Search", "since": "Since"}
    raw = {
        key: query_text(request, key, label)
        for key, label in {**labels, "from": "From", "to": "To", "quarantined": "Quarantined"}.items()
    }
    status = raw["status"] if raw["status"] in selectors.STATUSES else ""
    after = selectors.time_range_start(raw["since"]) or _parse_local(raw["from"], "From")
    filters = selectors.ExecutionFilters(
        status=status,
        function=raw["function"],
        name=raw["name"],
        q=raw["q"],
        started_after=after,
        started_before=_parse_local(raw["to"], "To"),
        quarantined=raw["quarantined"] == "1",
    )
    return filters, raw


def _parse_local(value: str, label: str) -> datetime | None:
    """A ``datetime-local`` input, read as UTC (the dashboard shows UTC everywhere); empty means no bound."""
    return validation.parse_datetime_text(value, label) if value else None


@login_required
@require_GET
@refuses_bad_input
def execution_list(request: HtmxHttpRequest) -> HttpResponse:
    filters, raw = _filters_from(request)
    after = selectors.Cursor.decode(request.GET.get("after", ""))
    before = selectors.Cursor.decode(request.GET.get("before", "")) if after is None else None
    page = selectors.execution_list(filters=filters, after=after, before=before)
    query = {key: value for key, value in raw.items() if value}
    context = {
        "page": page,
        "raw": raw,
        "filters": filters,
        "statuses": selectors.STATUSES,
        "functions": selectors.function_names(),
        "quarantined": selectors.quarantined_count(),
        "query": urlencode(query),
        "self_url": request.get_full_path(),
        "since_choices": [
            ("", "any time"),
            ("15m", "last 15 min"),
            ("1h", "last hour"),
            ("24h", "last 24 h"),
            ("7d", "last 7 days"),
        ],
    }
    return render(request, _partial(request, "executions/list.html", "results"), context)


# --- starting -------------------------------------------------------------------------------


@login_required
def execution_start(request: HtmxHttpRequest) -> HttpResponse:
    functions = selectors.function_names()
    if request.method == "POST":
        if not services.can_operate(request.user):
            return render(request, "403.html", {"reason": "Only operators can start executions."}, status=403)
        form = forms.StartForm(request.POST, functions=functions)
        if form.is_valid():
            response = _start_from_form(request, form)
            if response is not None:
                return response
    else:
        form = forms.StartForm(initial=_start_initial(request), functions=functions)
    return render(request, "executions/start.html", {"form": form, "can_operate": services.can_operate(request.user)})


def _start_initial(request: HttpRequest) -> dict[str, Any]:
    """Prefill from ``?function=`` or from ``?from=<execution id>`` (run again with changes)."""
    initial: dict[str, Any] = {"function": request.GET.get("function", "")}
    source = query_int(request, "from")
    if source is not None:
        execution = Execution.objects.filter(pk=source).only("function_name", "input", "time_scale").first()
        if execution is not None:
            initial.update(
                function=execution.function_name, payload=execution.input or "", time_scale=execution.time_scale
            )
    return initial


def _start_from_form(request: HtmxHttpRequest, form: forms.StartForm) -> HttpResponse | None:
    data = form.cleaned_data
    try:
        outcome = services.execution_start(
            user=request.user,
            function_name=data["function"],
            payload=data["payload"],
            name=data["name"],
            invocation_type=data["invocation_type"],
            time_scale=data["time_scale"],
        )
    except ServiceError as exc:
        form.add_error(None, f"{exc.code}: {exc.message}")
        return None
    if data["invocation_type"] == "RequestResponse":
        verdict = f"failed ({outcome.function_error})" if outcome.function_error else "returned"
        messages.info(request, f"RequestResponse {verdict}: {outcome.payload or 'no payload'}")
    else:
        messages.success(request, outcome.started_message(data["function"]))
    pk = selectors.execution_id_for_arn(arn=outcome.arn)
    return redirect("executions:detail", pk=pk) if pk else redirect("executions:list")


# --- one execution --------------------------------------------------------------------------


def _row_window(request: HttpRequest) -> selectors.RowWindow:
    return selectors.RowWindow.parse(request.GET.get("from", ""), request.GET.get("rows", ""))


def _detail_context(request: HttpRequest, execution: Execution) -> dict[str, Any]:
    window = _row_window(request)
    data = selectors.execution_timeline_data(execution=execution, offset=window.offset, limit=window.size)
    now = timezone.now()
    operations = [{**op, "duration": (op["ended_at"] or now) - op["started_at"]} for op in data["operations"]]
    running = data["execution"]["status"] == "RUNNING"
    logs = selectors.invocation_logs(execution=execution)
    return {
        "execution": execution,
        "data": data,
        "x": data["execution"],
        "counters": data["counters"],
        "operations": operations,
        "pager": window.pager(data["operation_count"]),
        "pending_callbacks": selectors.pending_callback_list(execution=execution) if running else [],
        "invocations": selectors.invocations_with_logs(data, logs),
        "step_names": selectors.step_names(execution=execution),
        "running": running,
        "can_operate": services.can_operate(request.user),
        "approve_form": forms.ApproveForm(),
        "reject_form": forms.RejectForm(),
        "arm_form": forms.ArmFaultForm(),
        "version": data["version"],
        "now": now,
    }


@login_required
@require_GET
def execution_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    execution = selectors.execution_get(pk=pk)
    context = _detail_context(request, execution)
    context["history"] = selectors.history_page(execution=execution)
    context["audit_entries"] = selectors.audit_for_execution(execution=execution)
    return render(request, "executions/detail.html", context)


@login_required
@require_GET
def execution_section(request: HtmxHttpRequest, pk: int, section: str) -> HttpResponse:
    """Live fragments of the execution page, refreshed when the timeline poll sees a change."""
    if section not in {"live", "callbacks"}:
        raise Http404("No such section.")
    execution = selectors.execution_get(pk=pk)
    context = _detail_context(request, execution)
    context["oob"] = True  # the fragments after the first swap into their own places by id
    return render(request, f"executions/detail.html#{section}", context)


@login_required
@require_GET
def timeline_data(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The figure as JSON for ``Plotly.react``; ``uirevision`` keeps the user's zoom across polls."""
    execution = selectors.execution_get(pk=pk)
    window = _row_window(request)
    data = selectors.execution_timeline_data(execution=execution, offset=window.offset, limit=window.size)
    now = timezone.now()
    payload = {
        "figure": charts.timeline_figure(data, now=now, max_rows=window.size),
        "rangebreaks": charts.idle_rangebreaks(data, now=now),
        "status": data["execution"]["pause_state"] or data["execution"]["status"],
        # An invocation can outlive its execution (stopped mid-body): keep polling until it ends.
        "running": data["execution"]["status"] == "RUNNING" or data["invocation_running"],
        "version": data["version"],
        "hidden_rows": charts.hidden_rows(data, window.size),
        "counters": data["counters"],
    }
    return HttpResponse(plotly.io.json.to_json_plotly(payload), content_type="application/json")


@login_required
@require_GET
def operation_detail(request: HtmxHttpRequest, pk: int, op_id: str) -> HttpResponse:
    """One operation's outcome, attempts and events: a side panel on the execution page, or a page."""
    execution = selectors.execution_get(pk=pk)
    op = selectors.operation_detail(execution=execution, op_id=path_text(op_id, max_length=64))
    context = {"execution": execution, "op": op}
    return render(request, _partial(request, "executions/operation.html", "panel"), context)


@login_required
@require_GET
def history(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    execution = selectors.execution_get(pk=pk)
    after = query_int(request, "after")
    page = selectors.history_page(execution=execution, group=request.GET.get("group", ""), after=after or 0)
    # "Load more" asks for rows to append; a filter change asks for the whole section.
    fragment = "history-rows" if after is not None else "history"
    return render(request, f"executions/detail.html#{fragment}", {"execution": execution, "history": page})


@login_required
@require_GET
def history_export(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    execution = selectors.execution_get(pk=pk)
    response = JsonResponse(selectors.history_export(execution=execution), json_dumps_params={"indent": 2})
    filename = f"{execution.function_name}-{execution.name}-history.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- actions on an execution ----------------------------------------------------------------


def _act(request: HttpRequest, pk: int, action: Callable[[Execution], Any], done: str) -> HttpResponse:
    execution = selectors.execution_get(pk=pk)
    try:
        action(execution)
    except ServiceError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
    else:
        messages.success(request, done)
    return redirect("executions:detail", pk=pk)


@operator_required
def execution_stop(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, lambda e: services.execution_stop(user=request.user, execution=e), "Execution stopped.")


@operator_required
def execution_pause(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    done = "Paused: no invocation until you resume it (one at work stops at its next checkpoint)."
    return _act(request, pk, lambda e: services.execution_pause(user=request.user, execution=e), done)


@operator_required
def execution_resume(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    done = "Resumed: the handler runs again if anything completed while paused."
    return _act(request, pk, lambda e: services.execution_resume(user=request.user, execution=e), done)


@operator_required
def execution_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    execution = selectors.execution_get(pk=pk)
    try:
        services.execution_delete(user=request.user, execution=execution)
    except ServiceError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
        return redirect("executions:detail", pk=pk)
    messages.success(request, f"Deleted execution {execution.name} of {execution.function_name} and all its data.")
    return redirect("executions:list")


@operator_required
def execution_kill(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    done = "Killed the running invocation (as a Lambda timeout would). The engine will invoke again."
    return _act(request, pk, lambda e: services.execution_kill(user=request.user, execution=e), done)


@operator_required
def execution_release_quarantine(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    done = "Released from quarantine: the scheduler will try this execution again."
    return _act(request, pk, lambda e: services.execution_release_quarantine(user=request.user, execution=e), done)


@operator_required
def execution_arm_fault(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    form = forms.ArmFaultForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Arm a fault: " + "; ".join(e for errors in form.errors.values() for e in errors))
        return redirect("executions:detail", pk=pk)
    step, phase = form.cleaned_data["step_name"], form.cleaned_data["phase"]
    done = f"Armed: the next invocation that reaches “{step}” ({phase}) will be killed."
    return _act(
        request,
        pk,
        lambda e: services.execution_arm_fault(user=request.user, execution=e, step_name=step, phase=phase),
        done,
    )


@operator_required
def execution_rerun(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    execution = selectors.execution_get(pk=pk)
    try:
        outcome = services.execution_rerun(user=request.user, execution=execution)
    except ServiceError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
        return redirect("executions:detail", pk=pk)
    messages.success(request, f"Started again with the same input (from execution {execution.name}).")
    new_pk = selectors.execution_id_for_arn(arn=outcome.arn)
    return redirect("executions:detail", pk=new_pk or pk)


# --- callbacks ------------------------------------------------------------------------------


@require_GET
def callback_badge(request: HtmxHttpRequest) -> HttpResponse:
    """The navigation's pending-callback badge alone: every page polls it, so the count moves
    as callbacks start and are answered, not only on a full page load."""
    if not request.user.is_authenticated:
        return HttpResponse(status=204)  # logged out meanwhile: htmx swaps nothing
    return render(request, "base.html#callback_badge")


@login_required
@require_GET
def callback_inbox(request: HtmxHttpRequest) -> HttpResponse:
    context = {
        "callbacks": selectors.pending_callback_list(),
        "can_operate": services.can_operate(request.user),
        "approve_form": forms.ApproveForm(),
        "reject_form": forms.RejectForm(),
        "now": timezone.now(),
    }
    return render(request, _partial(request, "executions/callbacks.html", "inbox"), context)


CALLBACK_ACTIONS = {"approve", "reject", "heartbeat"}


@operator_required
def callback_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    """Approve, reject or heartbeat one callback; errors come back inline next to the form."""
    if action not in CALLBACK_ACTIONS:
        raise Http404("No such action.")
    operation = selectors.pending_callback_get(pk=pk)
    approve, reject = forms.ApproveForm(), forms.RejectForm()
    outcome, error = "", ""
    answered_at = timezone.now()
    if action == "approve":
        approve = forms.ApproveForm(request.POST)
        if approve.is_valid():
            outcome, error = _send(
                lambda: services.callback_succeed(
                    user=request.user, operation=operation, result=approve.result_with_note()
                ),
                "Approved",
            )
    elif action == "reject":
        reject = forms.RejectForm(request.POST)
        if reject.is_valid():
            outcome, error = _send(
                lambda: services.callback_fail(user=request.user, operation=operation, error=reject.error_object()),
                "Rejected",
            )
    else:
        outcome, error = _send(
            lambda: services.callback_heartbeat(user=request.user, operation=operation), "Heartbeat sent"
        )
    late = ""
    if error:
        operation = selectors.pending_callback_get(pk=pk)  # what the engine found: timed out, answered, ended
        late = _too_late_text(operation, answered_at)
    if not request.htmx:
        _flash(request, outcome, late or error or _form_errors(approve, reject))
        return redirect(_safe_next(request))
    context = {
        "cb": operation,
        "approve_form": approve,
        "reject_form": reject,
        "outcome": outcome,
        "action_error": "" if late else error,
        "too_late": late,
        "can_operate": True,
        # The inbox and the fraud demo name each callback's execution; the execution page does not.
        "show_execution": not urlparse(request.htmx.current_url or "").path.startswith("/executions/"),
        "done": outcome and action != "heartbeat",
        "now": timezone.now(),
    }
    return render(request, "executions/callbacks.html#answered", context)


def _too_late_text(operation: Operation, answered_at: datetime) -> str:
    """Why an answer came too late, in words, or "" when the refusal was something else."""
    execution = operation.execution
    if operation.status == "TIMED_OUT":
        timed_out = operation.ended_at or getattr(operation, "deadline", None)
        if timed_out is None:
            return "Too late: this callback timed out; the execution took its timeout path."
        before = max(0, int((answered_at - timed_out).total_seconds()))
        return (
            f"Too late: this callback timed out at {utc(timed_out)} UTC ({before} s before you answered); "
            "the execution took its timeout path."
        )
    if operation.status != "STARTED":
        return f"Too late: this callback was already answered ({operation.status}); nothing was sent."
    if execution.status != "RUNNING":
        ended = f" at {utc(execution.ended_at)} UTC" if execution.ended_at else ""
        return (
            f"Too late: the execution already ended ({execution.status}{ended}), before you answered: "
            "another answer or a timeout came first. Nothing was sent."
        )
    return ""


def _send(call: Callable[[], None], done: str) -> tuple[str, str]:
    try:
        call()
    except ServiceError as exc:
        return "", f"{exc.code}: {exc.message}"
    return done, ""


def _form_errors(*bound: Any) -> str:
    return "; ".join(e for form in bound if form.is_bound for errors in form.errors.values() for e in errors)


def _flash(request: HttpRequest, outcome: str, error: str) -> None:
    if error:
        messages.error(request, error)
    elif outcome:
        messages.success(request, f"{outcome}.")


def _safe_next(request: HttpRequest) -> str:
    return safe_next(request, reverse("executions:callbacks"))


def safe_next(request: HttpRequest, fallback: str) -> str:
    """``POST["next"]`` if it is a local URL fit for a Location header, else ``fallback``."""
    target = request.POST.get("next", "")
    # A control character (CR, LF, NUL) in a redirect would make Django raise BadHeaderError, and
    # redirect() takes text without a "/" for a view name to reverse: both were 500s.
    if not target.startswith("/") or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return fallback
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


# --- functions and audit --------------------------------------------------------------------


@login_required
@require_GET
def function_list(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "executions/functions.html", {"rows": selectors.function_list()})


@login_required
@require_GET
def function_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    function = selectors.function_get(name=path_text(name, max_length=64))
    page = selectors.execution_list(filters=selectors.ExecutionFilters(function=name), limit=20)
    context = {
        "function": function,
        "page": page,
        "counts": selectors.function_status_counts(name=name),
        "can_operate": services.can_operate(request.user),
    }
    return render(request, "executions/function.html", context)


@login_required
@require_GET
def audit_list(request: HtmxHttpRequest) -> HttpResponse:
    if not (request.user.is_staff or request.user.has_perm("executions.view_auditentry")):
        return render(request, "403.html", {"reason": "The audit trail is for staff."}, status=403)
    entries, older = selectors.audit_list(before_id=query_int(request, "before"))
    return render(request, "executions/audit.html", {"entries": entries, "older": older})


# --- workers and queue (issue 19) -----------------------------------------------------------


@login_required
@require_GET
def workers_page(request: HtmxHttpRequest) -> HttpResponse:
    """Hosts, their worker processes and the queue; the page polls its own ``#workers`` part."""
    page = workers.workers_page()
    context = {
        "w": page,
        "lease_s": f"{page.lease.total_seconds():g}",
        "broker": workers.broker_address(),
        "queue": workers.QUEUE,
    }
    return render(request, _partial(request, "executions/workers.html", "workers"), context)
