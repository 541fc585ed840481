"""Lab actions: start comparisons and demo runs through the engine's public API, audited like the dashboard's."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import transaction

import engine
from engine.contrib.django.models import Execution
from engine.errors import ServiceError
from executions.services import audit
from lab import scenarios
from lab.models import Comparison, Variant

FRAUD_FUNCTION = "fraud-detection"
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
    """Save the comparison, then start every variant at once (Event invocations with ``TimeScale``)."""
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
            )
            for index, v in enumerate(variants)
        ]
        Variant.objects.bulk_create(rows)
    for variant in comparison.variants.all():
        _start_variant(comparison, variant, user)
    _audit(
        user,
        "lab.comparison.start",
        f"comparison {comparison.pk}",
        scenario=scenario,
        variants=len(variants),
        time_scale=time_scale,
    )
    return comparison


def _start_variant(comparison: Comparison, variant: Variant, user: Any = None) -> None:
    params: dict[str, Any] = {
        "FunctionName": comparison.function_name,
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
        scenarios.VariantSpec(v.label, json.loads(v.payload), v.semantics, v.retry, v.fault)
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


def fraud_submit(*, user: Any, transaction_id: str, amount: float, time_scale: float, risk: str = "") -> FraudStart:
    """Start the fraud workflow named ``tx-<id>``; a second submit of the same transaction returns the first."""
    payload: dict[str, Any] = {
        "id": transaction_id,
        "amount": amount,
        "card": "4111…1111",
        "merchant": "Durable Lab Store",
    }
    if risk:
        payload["risk"] = risk
    name = f"tx-{transaction_id}"
    existed = Execution.objects.filter(function_name=FRAUD_FUNCTION, name=name).exists()
    params: dict[str, Any] = {
        "FunctionName": FRAUD_FUNCTION,
        "InvocationType": "Event",
        "Payload": json.dumps(payload, sort_keys=True),
        "DurableExecutionName": name,
    }
    if time_scale != 1:
        params["TimeScale"] = time_scale
    detail = {"transaction": transaction_id, "amount": amount}
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
