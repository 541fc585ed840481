"""Lab actions: start comparisons and demo runs through the engine's public API, audited like the dashboard's."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

import demos as demo_functions
import engine
from engine.contrib.django.models import Execution
from engine.errors import ServiceError
from engine.rows import INVOCATION_LOST
from executions.services import audit
from lab import scenarios
from lab.models import Comparison, Variant

FRAUD_FUNCTION = "fraud-detection"
# Seed 001's handler in each language: the Python twin in the worker, the seed's TypeScript on Node 22.
FRAUD_FUNCTIONS = {"python": FRAUD_FUNCTION, "typescript": demo_functions.FRAUD_TS}
ASYNC_FUNCTIONS = ("async-receipt", "async-receipt-no-retry")
FIXED_TEMPLATES = "standard,holiday"

T = TypeVar("T")


def _audit(user: Any, action: str, target: str, ok: bool = True, **detail: Any) -> None:
    if user is not None:
        audit(user=user, action=action, target=target, ok=ok, **detail)


def _refusal_audited(user: Any, action: str, target: str, call: Callable[[], T], **detail: Any) -> T:
    """Run an engine call; if the engine refuses, the refusal is audited (with its error) before it is raised."""
    try:
        return call()
    except ServiceError as exc:
        _audit(user, action, target, ok=False, error=str(exc), **detail)
        raise


# --- comparisons ------------------------------------------------------------------------------


def comparison_start(
    *, user: Any, scenario: str, variants: list[scenarios.VariantSpec], time_scale: float, title: str = ""
) -> Comparison:
    """Save the comparison, then start as many variants as there are free worker slots (Event
    invocations with ``TimeScale``); the scheduler starts the others as running ones end."""
    spec = scenarios.SCENARIOS[scenario]
    if not 1 <= len(variants) <= scenarios.MAX_VARIANTS:
        raise ValueError(f"A comparison runs 1 to {scenarios.MAX_VARIANTS} variants, not {len(variants)}.")
    with transaction.atomic():
        comparison = Comparison.objects.create(
            title=title or spec.title,
            scenario=scenario,
            demo=spec.demo,
            function_name=spec.function_name,
            time_scale=time_scale,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        rows = [
            Variant(
                comparison=comparison,
                position=index,
                label=v.label,
                semantics=v.semantics,
                retry=v.retry,
                fault=v.fault,
                payload=v.payload_json(),
                function_name=v.function_name,
                language=v.language,
            )
            for index, v in enumerate(variants)
        ]
        Variant.objects.bulk_create(rows)
    admit_waiting_variants()
    _audit(
        user,
        "lab.comparison.start",
        f"comparison {comparison.pk}",
        scenario=scenario,
        variants=len(variants),
        time_scale=time_scale,
    )
    return comparison


# One admission at a time, across processes (web requests, the scheduler's duty): two would
# count the same free slot twice.
ADMISSION_LOCK = 0x1AB_AD417


def admit_waiting_variants() -> int:
    """Start waiting variants, oldest comparison first, while fewer than ``DURABLE_LAB_PARALLEL``
    run; return how many started.

    A variant's execution starts only when a worker process is free for it. Started all at once,
    variants queued behind each other's invocations while their execution timeouts and scaled
    timers ran: a comparison measured how busy the workers were, not the variants. Run by the
    scheduler (``DURABLE_SCHEDULER_DUTIES``), so no page needs to be open.
    """
    waiting = Variant.objects.filter(execution_arn="", start_error="")
    if not waiting.exists():
        return 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADMISSION_LOCK])
        free = settings.DURABLE_LAB_PARALLEL - busy_variants()
        admitted = list(
            waiting.select_related("comparison", "comparison__created_by").order_by(
                "comparison__created_at", "comparison_id", "position"
            )[: max(0, free)]
        )
        for variant in admitted:
            _start_variant(variant.comparison, variant, variant.comparison.created_by)
    return len(admitted)


# A worker replaces a pool process killed at its Timeout (or by a fault) with a fresh one: a fork
# and the handler imports, a few seconds on a busy 2-core machine. Until then that slot is not free.
WORKER_RESPAWN = timedelta(seconds=3)
KILLED_OUTCOMES = sorted(outcome.value for outcome in INVOCATION_LOST)
# An invocation message that no worker has taken up for this long means every worker is busy.
QUEUE_BACKLOG = timedelta(milliseconds=250)
STALE_BACKLOG = timedelta(seconds=60)  # older ones are stranded (the scheduler re-sends them), not a queue


def busy_variants() -> int:
    """Worker slots the lab's variants hold: a running execution, an invocation still being cut
    short, or a process just killed that the worker is still replacing."""
    if _workers_backlogged():
        return settings.DURABLE_LAB_PARALLEL
    now = timezone.now()
    started = Variant.objects.exclude(execution_arn="").values("execution_arn")
    running = Execution.objects.filter(arn__in=started).filter(
        Q(status="RUNNING")
        | Q(invocations__ended_at__isnull=True)
        | Q(invocations__outcome__in=KILLED_OUTCOMES, invocations__ended_at__gt=now - WORKER_RESPAWN)
    )
    return running.values("id").distinct().count()


def _workers_backlogged() -> bool:
    """Whether an invocation (of any execution, in or out of the lab) waits for a worker now."""
    now = timezone.now()
    return Execution.objects.filter(
        status="RUNNING",
        running=False,
        needs_invoke=True,
        quarantined_at__isnull=True,
        dispatched_at__lt=now - QUEUE_BACKLOG,
        dispatched_at__gt=now - STALE_BACKLOG,
    ).exists()


def _start_variant(comparison: Comparison, variant: Variant, user: Any = None) -> None:
    params: dict[str, Any] = {
        "FunctionName": variant.function_name or comparison.function_name,
        "InvocationType": "Event",
        "Payload": variant.payload,
        # Named after the comparison, so starting a variant twice returns the same execution.
        "DurableExecutionName": f"cmp{comparison.pk}-v{variant.position}",
    }
    if comparison.time_scale != 1:
        params["TimeScale"] = comparison.time_scale
    try:
        variant.execution_arn = engine.client().invoke(**params)["DurableExecutionArn"]
    except ServiceError as exc:
        variant.start_error = str(exc)
        # The comparison goes on without this variant; the refusal is audited with the engine's error.
        _audit(
            user,
            "lab.comparison.start",
            params["DurableExecutionName"],
            ok=False,
            error=str(exc),
            variant=variant.label,
        )
    variant.save(update_fields=["execution_arn", "start_error"])


def comparison_rerun(*, user: Any, comparison: Comparison) -> Comparison:
    """Run the same variants again, as a new comparison."""
    variants = [
        scenarios.VariantSpec(
            v.label, json.loads(v.payload), v.semantics, v.retry, v.fault, v.function_name, v.language
        )
        for v in comparison.variants.all()
    ]
    return comparison_start(
        user=user,
        scenario=comparison.scenario,
        variants=variants,
        time_scale=comparison.time_scale,
        title=comparison.title,
    )


def demo_order_id() -> str:
    """A fresh business id: idempotency keys are global, so each run needs its own order."""
    return f"o-{uuid.uuid4().hex[:8]}"


# --- fraud detection --------------------------------------------------------------------------


@dataclass(frozen=True)
class FraudStart:
    arn: str
    created: bool


def fraud_submit(
    *,
    user: Any,
    transaction_id: str,
    amount: float,
    time_scale: float,
    risk: str = "",
    language: str = "python",
) -> FraudStart:
    """Start the fraud workflow named ``tx-<id>`` in one language's function; a second submit of
    the same transaction to the same function returns the first."""
    function = FRAUD_FUNCTIONS[language]
    payload: dict[str, Any] = {
        "id": transaction_id,
        "amount": amount,
        "card": "4111…1111",
        "merchant": "Durable Lab Store",
    }
    if risk:
        payload["risk"] = risk
    name = f"tx-{transaction_id}"
    existed = Execution.objects.filter(function_name=function, name=name).exists()
    params: dict[str, Any] = {
        "FunctionName": function,
        "InvocationType": "Event",
        "Payload": json.dumps(payload, sort_keys=True),
        "DurableExecutionName": name,
    }
    if time_scale != 1:
        params["TimeScale"] = time_scale
    detail = {"transaction": transaction_id, "amount": amount, "language": language}
    response = _refusal_audited(user, "lab.fraud.submit", name, lambda: engine.client().invoke(**params), **detail)
    arn = response["DurableExecutionArn"]
    _audit(user, "lab.fraud.submit", arn, created=not existed, **detail)
    return FraudStart(arn, created=not existed)


# --- async retries and the dead-letter queue --------------------------------------------------


def async_event(*, user: Any, function_name: str, scenario: str, time_scale: float) -> str:
    """Invoke a receipt function with ``Event``: transient outage, poison template, or a healthy event.

    Returns the request id, which every retry of this event shares.
    """
    payload = _receipt_payload(scenario, time_scale)
    params: dict[str, Any] = {"FunctionName": function_name, "InvocationType": "Event", "Payload": json.dumps(payload)}
    if time_scale != 1:
        params["TimeScale"] = time_scale
    detail = {"function": function_name, "scenario": scenario, "time_scale": time_scale}
    response = _refusal_audited(
        user, "lab.async.invoke", function_name, lambda: engine.client().invoke(**params), **detail
    )
    request_id = response["ResponseMetadata"]["RequestId"]
    _audit(user, "lab.async.invoke", request_id, **detail)
    return str(request_id)


def async_sync_call(*, user: Any, function_name: str, scenario: str) -> dict[str, Any]:
    """Invoke with ``RequestResponse``: one attempt, and the error comes straight back to the caller."""
    payload = _receipt_payload(scenario, 1.0)
    response = _refusal_audited(
        user,
        "lab.async.sync_call",
        function_name,
        lambda: engine.client().invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(payload)
        ),
        scenario=scenario,
    )
    body = response["Payload"].read().decode()
    _audit(user, "lab.async.sync_call", function_name, scenario=scenario, error=response.get("FunctionError"))
    return {"function_error": response.get("FunctionError"), "payload": body}


def _receipt_payload(scenario: str, time_scale: float) -> dict[str, Any]:
    order = demo_order_id()
    if scenario == "outage":
        # Down for 90 s of modelled time: the retry after 1 min fails, the one after 2 more succeeds.
        return {"order": order, "outage_until": time.time() + 90 * time_scale}
    if scenario == "poison":
        return {"order": order, "template": "holiday"}
    return {"order": order}


def receipt_fix(*, user: Any, deployed: bool) -> None:
    """Deploy (or roll back) the fix for the poison event: the holiday receipt template."""
    templates = FIXED_TEMPLATES if deployed else "standard"
    for name in ASYNC_FUNCTIONS:
        _refusal_audited(
            user,
            "lab.async.fix",
            name,
            lambda name=name: engine.client().update_function_configuration(
                FunctionName=name, Environment={"Variables": {"RECEIPT_TEMPLATES": templates}}
            ),
            deployed=deployed,
        )
    _audit(user, "lab.async.fix", ",".join(ASYNC_FUNCTIONS), deployed=deployed)


def dead_letter_redrive(*, user: Any, invocation_id: int) -> dict[str, Any]:
    row = _refusal_audited(
        user,
        "lab.dlq.redrive",
        str(invocation_id),
        lambda: engine.client().redrive_async_invocation(InvocationId=invocation_id),
    )
    _audit(user, "lab.dlq.redrive", str(invocation_id), new_request_id=row["request_id"])
    return row
