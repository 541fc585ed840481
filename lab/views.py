"""Lab pages. Reads go through ``selectors``, actions through ``services``, figures through ``charts``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import plotly.io
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from engine import validation
from engine.errors import ResourceNotFoundException, ServiceError
from executions import selectors as execution_selectors
from executions.forms import ApproveForm, RejectForm
from executions.services import can_operate
from executions.views import safe_next
from lab import charts, counts, demos, diff, forms, scenarios, selectors, services
from lab.models import Comparison

View = Callable[..., HttpResponse]


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def operator_required(view: View) -> View:
    """Logged in, POST, and allowed to operate: starting runs changes the system like the dashboard's actions."""

    @wraps(view)
    def wrapper(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_operate(request.user):
            return render(
                request,
                "403.html",
                {
                    "reason": "Only operators (staff, or users with the "
                    "“operate executions” permission) can start lab runs."
                },
                status=403,
            )
        return view(request, *args, **kwargs)

    return login_required(require_POST(wrapper))


def _figure_json(figure: Any) -> str:
    # Embedded in a <script> element: "</" must not appear raw, or text could close the element.
    return str(plotly.io.to_json(figure, validate=False)).replace("</", "<\\/")


# --- home -------------------------------------------------------------------------------------


@login_required
@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    context = {
        "demos": demos.DEMOS,
        "comparisons": selectors.comparison_list(limit=15),
        "dead_letters": len(selectors.dead_letters(limit=500)),
        "can_operate": can_operate(request.user),
    }
    return render(request, "lab/home.html", context)


# --- comparisons ------------------------------------------------------------------------------


@login_required
def comparison_new(request: HtmxHttpRequest) -> HttpResponse:
    form = forms.ComparisonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not can_operate(request.user):
            return render(request, "403.html", {"reason": "Only operators can start comparisons."}, status=403)
        comparison = services.comparison_start(
            user=request.user,
            scenario="lab",
            variants=form.variants(services.demo_order_id()),
            time_scale=form.cleaned_data["time_scale"],
            title=form.cleaned_data["title"],
        )
        return redirect("lab:comparison", pk=comparison.pk)
    return render(request, "lab/compare.html", {"form": form, "can_operate": can_operate(request.user)})


# Why a TypeScript variant's body runs and side effects show as "—" in the variants table.
NODE_UNRECORDED = (
    "Not recorded for a function run on Node: the engine's body-run and side-effect records come from "
    "the Python SDK's plugin. The counts table reads body runs from the log and the checkpoints, for both languages."
)


def _comparison_context(comparison: Comparison) -> dict[str, Any]:
    rows = selectors.comparison_rows(comparison=comparison)
    panels = [
        charts.Panel(f"{row.variant.label} — {row.status_text}", row.data, row.variant.retry, comparison.time_scale)
        for row in rows
    ]
    now = timezone.now()
    languages, side_by_side = counts.seed_000_side_by_side(rows) if comparison.scenario == "seed-000" else ([], [])
    return {
        "comparison": comparison,
        "rows": rows,
        "functions": list(dict.fromkeys(row.variant.invoked_function for row in rows)),
        "languages": languages,
        "language_names": [scenarios.LANGUAGE_LABEL[language] for language in languages],
        "side_by_side": side_by_side,
        # Diff a variant with its twin in the other language, when there is one.
        "diff_b": len(rows) // len(languages) if len(languages) > 1 else 1,
        "NODE_UNRECORDED": NODE_UNRECORDED,
        "running": selectors.any_running(rows),
        "waiting": sum(1 for row in rows if row.status == "WAITING"),
        "parallel": settings.DURABLE_LAB_PARALLEL,
        "demo": demos.BY_SCENARIO.get(comparison.scenario),
        "scale_note": _scale_note(comparison.time_scale),
        "timelines_json": _figure_json(charts.small_multiples(panels, now=now)),
        "retries_json": _figure_json(charts.retry_schedule(rows)),
        # Demos that keep one strategy show its plan only once a retry really happened.
        "any_planned": any(row.planned for row in rows),
        "has_retries": any(row.planned for row in rows)
        and (comparison.scenario == "lab" or any(row.actual for row in rows)),
    }


def _scale_note(scale: float) -> str:
    if scale == 1:
        return "real time"
    return f"\N{MULTIPLICATION SIGN}{scale:g}: waits, retry delays, callback timeouts and the execution timeout run {1 / scale:g}\N{MULTIPLICATION SIGN} faster"


@login_required
@require_GET
def comparison_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    comparison = selectors.comparison_get(pk=pk)
    context = {**_comparison_context(comparison), "can_operate": can_operate(request.user)}
    template = "lab/comparison.html#live" if request.htmx else "lab/comparison.html"
    return render(request, template, context)


@operator_required
def comparison_rerun(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    comparison = selectors.comparison_get(pk=pk)
    again = services.comparison_rerun(user=request.user, comparison=comparison)
    messages.success(request, f"Started the same {again.variants.count()} variants again.")
    return redirect("lab:comparison", pk=again.pk)


# --- diff -------------------------------------------------------------------------------------


@login_required
@require_GET
def execution_diff(request: HtmxHttpRequest) -> HttpResponse:
    arn_a, arn_b = request.GET.get("a", "").strip(), request.GET.get("b", "").strip()
    context: dict[str, Any] = {"arn_a": arn_a, "arn_b": arn_b}
    if arn_a and arn_b:
        try:
            for arn, label in ((arn_a, "Execution A"), (arn_b, "Execution B")):
                validation.check_text(arn, label, max_length=1024)
            result = diff.execution_diff(arn_a, arn_b)
        except (ResourceNotFoundException, validation.InvalidInput) as exc:
            context["error"] = str(exc)
        else:
            now = timezone.now()
            panels = [
                charts.Panel(f"A — {result.a['execution']['name']} ({result.a['execution']['status']})", result.a),
                charts.Panel(f"B — {result.b['execution']['name']} ({result.b['execution']['status']})", result.b),
            ]
            context.update(
                diff=result,
                timelines_json=_figure_json(charts.small_multiples(panels, now=now)),
                pk_a=selectors.execution_pk(arn=arn_a),
                pk_b=selectors.execution_pk(arn=arn_b),
            )
    return render(request, "lab/diff.html", context)


# --- demos ------------------------------------------------------------------------------------


def _demo(slug: str) -> demos.Demo:
    demo = demos.BY_SLUG.get(slug)
    if demo is None:
        raise Http404("No such demo.")
    return demo


@login_required
@require_GET
def demo_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    demo = _demo(slug)
    context: dict[str, Any] = {"demo": demo, "can_operate": can_operate(request.user)}
    scale = _remembered_scale(request, demo)
    language = request.session.get(f"lab:language:{demo.slug}")
    if demo.kind == "comparison":
        form = forms.TimeScaleForm(
            initial_scale=scale, languages=demo.multilingual, initial_language=language or "both"
        )
        context.update(form=form, comparisons=selectors.comparison_list(demo=demo.slug, limit=10))
    elif demo.kind == "fraud":
        context.update(form=forms.FraudForm(initial_scale=scale, initial_language=language or "python"))
        context.update(_fraud_context())
    else:
        function = request.session.get(f"lab:function:{demo.slug}")  # the choice survives the submit
        context.update(form=forms.AsyncForm(initial_scale=scale, initial={"function": function}), **_async_context())
    if request.htmx and request.GET.get("section") == "live":
        return render(request, f"lab/demo_{demo.kind}.html#live", context)
    return render(request, f"lab/demo_{demo.kind}.html", context)


def _remembered_scale(request: HttpRequest, demo: demos.Demo) -> str:
    """The time scale last used on this demo page, so the form shows the clock the runs below used."""
    scale = request.session.get(f"lab:scale:{demo.slug}", demo.default_scale)
    return scale if scale in dict(forms.TIME_SCALES) else demo.default_scale


def _remember_scale(request: HttpRequest, demo: demos.Demo) -> None:
    if request.POST.get("time_scale") in dict(forms.TIME_SCALES):
        request.session[f"lab:scale:{demo.slug}"] = request.POST["time_scale"]
    if request.POST.get("function") in dict(forms.AsyncForm.base_fields["function"].choices):
        request.session[f"lab:function:{demo.slug}"] = request.POST["function"]
    if demo.multilingual and request.POST.get("language") in scenarios.LANGUAGE_CHOICES:
        request.session[f"lab:language:{demo.slug}"] = request.POST["language"]


def _fraud_context() -> dict[str, Any]:
    transactions = selectors.fraud_transactions(function_names=tuple(services.FRAUD_FUNCTIONS.values()))
    pending = sorted(
        (
            callback
            for function in services.FRAUD_FUNCTIONS.values()
            for callback in execution_selectors.pending_callback_list(function_name=function)
        ),
        key=lambda callback: (callback.started_at, callback.pk),
    )
    return {
        "transactions": transactions,
        "side_by_side": counts.fraud_side_by_side(transactions),
        "running": any(t["execution"].status == "RUNNING" for t in transactions),
        "pending_callbacks": pending,
        "approve_form": ApproveForm(),
        "reject_form": RejectForm(),
    }


def _async_context() -> dict[str, Any]:
    invocations = selectors.recent_async(function_names=services.ASYNC_FUNCTIONS)
    running = any(i.status in {"QUEUED", "RUNNING", "RETRY_SCHEDULED"} for i in invocations)
    figure = charts.async_attempts(invocations, now=timezone.now()) if invocations else None
    return {
        "invocations": invocations,
        "running": running,
        "fix_deployed": selectors.fix_deployed(function_name=services.ASYNC_FUNCTIONS[0]),
        "attempts_json": _figure_json(figure) if figure is not None else "",
    }


@operator_required
def demo_run(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    demo = _demo(slug)
    _remember_scale(request, demo)
    if demo.kind == "fraud":
        return _fraud_submit(request, demo)
    if demo.kind == "async":
        return _async_action(request, demo)
    form = forms.TimeScaleForm(request.POST, initial_scale=demo.default_scale, languages=demo.multilingual)
    if not form.is_valid():
        messages.error(request, "Pick a time scale (and a language) from the lists.")
        return redirect("lab:demo", slug=slug)
    comparison = services.comparison_start(
        user=request.user,
        scenario=demo.scenario,
        variants=_demo_variants(demo, form.languages() if demo.multilingual else ("python",)),
        time_scale=form.cleaned_data["time_scale"],
        title=demo.title,
    )
    return redirect("lab:comparison", pk=comparison.pk)


def _demo_variants(demo: demos.Demo, languages: tuple[str, ...]) -> list[scenarios.VariantSpec]:
    if demo.scenario == "seed-000":
        return scenarios.seed_000_variants(languages)
    order = services.demo_order_id()
    return (
        scenarios.idempotency_variants(order) if demo.scenario == "idempotency" else scenarios.express_variants(order)
    )


def _fraud_submit(request: HtmxHttpRequest, demo: demos.Demo) -> HttpResponse:
    form = forms.FraudForm(request.POST)
    if not form.is_valid():
        context = {"demo": demo, "form": form, "can_operate": True, **_fraud_context()}
        return render(request, "lab/demo_fraud.html", context, status=400)
    data = form.cleaned_data
    tx = data["transaction_id"]
    for language in form.languages():
        where = f"{scenarios.LANGUAGE_LABEL[language]} ({services.FRAUD_FUNCTIONS[language]})"
        try:
            started = services.fraud_submit(
                user=request.user,
                transaction_id=tx,
                amount=data["amount"],
                time_scale=data["time_scale"],
                language=language,
            )
        except ServiceError as exc:
            messages.error(request, f"{where}: {exc.code}: {exc.message}")
            continue
        if started.created:
            messages.success(request, f"Started the workflow for transaction {tx} (tx-{tx}) in {where}.")
        else:
            messages.info(
                request,
                f"Transaction {tx} already has a workflow in {where}: the same execution was "
                "returned and no new one started (DurableExecutionName = tx-<id>).",
            )
    return redirect("lab:demo", slug=demo.slug)


def _async_action(request: HtmxHttpRequest, demo: demos.Demo) -> HttpResponse:
    action = request.POST.get("action", "")
    form = forms.AsyncForm(request.POST)
    if action not in forms.ASYNC_ACTIONS or not form.is_valid():
        messages.error(request, "Unknown action.")
        return redirect("lab:demo", slug=demo.slug)
    data = form.cleaned_data
    if action in {"fix", "unfix"}:
        services.receipt_fix(user=request.user, deployed=action == "fix")
        messages.success(
            request,
            "Deployed the fix: the holiday template exists now."
            if action == "fix"
            else "Rolled the fix back: holiday receipts fail again.",
        )
    elif action == "sync":
        outcome = services.async_sync_call(user=request.user, function_name=data["function"], scenario="poison")
        messages.info(
            request,
            f"RequestResponse answered at once with FunctionError={outcome['function_error']}: "
            f"{outcome['payload']} — one attempt, no retry, nothing in the dead-letter queue.",
        )
    else:
        request_id = services.async_event(
            user=request.user, function_name=data["function"], scenario=action, time_scale=data["time_scale"]
        )
        messages.success(request, f"202 Accepted: event {request_id[:8]}… queued ({action}).")
    return redirect("lab:demo", slug=demo.slug)


# --- dead-letter queue --------------------------------------------------------------------------


@login_required
@require_GET
def dead_letter_queue(request: HtmxHttpRequest) -> HttpResponse:
    context = {"rows": selectors.dead_letters(), "can_operate": can_operate(request.user)}
    return render(request, "lab/dlq.html", context)


@login_required
@require_GET
def dead_letter_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    invocation = selectors.async_get(pk=pk)
    context = {
        "inv": invocation,
        "attempts": selectors.attempts_with_gaps(invocation),
        "redrives": list(invocation.redrives.order_by("id")),
        "can_operate": can_operate(request.user),
    }
    return render(request, "lab/dlq_detail.html", context)


@operator_required
def dead_letter_redrive(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        row = services.dead_letter_redrive(user=request.user, invocation_id=pk)
    except ServiceError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
        return redirect("lab:dlq_detail", pk=pk)
    messages.success(
        request,
        f"Redriven: the event was sent to {row['function_name']} again as a new Event "
        f"invocation ({row['request_id'][:8]}…).",
    )
    fallback = reverse("lab:dlq_detail", args=[pk])
    target = safe_next(request, fallback)
    return redirect(target if target.startswith("/lab/") else fallback)
