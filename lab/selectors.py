"""Reads for the lab pages: each variant's replay record, its table row, and its retries planned vs actual."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Subquery
from django.http import Http404

from engine import timeline
from engine.contrib.django.models import AsyncInvocation, Execution, Function, Operation
from engine.errors import ResourceNotFoundException
from engine.rows import ATTEMPT_FAILED
from engine.timeline_types import Timeline
from lab import retry_plan
from lab.models import Comparison, Variant


@dataclass(frozen=True)
class ActualRetry:
    """What happened after failed attempt ``after_attempt`` of the focus step."""

    after_attempt: int
    outcome: str
    chosen_delay: float | None  # the delay the strategy returned (NextAttemptDelaySeconds), strategy seconds
    gap_seconds: float | None  # measured: failure → next attempt start, real seconds
    modelled_gap: float | None  # the measured gap divided by the time scale
    due_seconds: float | None = None  # the chosen delay times the time scale: when the attempt became due


@dataclass
class VariantRow:
    variant: Variant
    data: Timeline | None
    time_scale: float
    planned: list[retry_plan.PlannedRetry] = field(default_factory=list)
    actual: list[ActualRetry] = field(default_factory=list)
    focus_step: str = ""
    execution_pk: int | None = None

    @property
    def status(self) -> str:
        if self.data is None:
            if self.variant.start_error:
                return "NOT STARTED"
            # Not started yet: the lab runs as many variants at once as there are worker processes.
            return "WAITING" if not self.variant.execution_arn else "PENDING"
        return str(self.data["execution"]["status"])

    @property
    def status_text(self) -> str:
        return "waiting for a worker" if self.status == "WAITING" else self.status

    @property
    def running(self) -> bool:
        """Still changing: the execution runs, or it ended while its last invocation was still being cut short."""
        if self.status in {"RUNNING", "PENDING", "WAITING"}:
            return True
        return any(inv["ended_at"] is None for inv in (self.data or {}).get("invocations", []))

    @property
    def counters(self) -> dict[str, Any]:
        return self.data["counters"] if self.data else {}

    @property
    def error(self) -> str:
        if self.variant.start_error:
            return self.variant.start_error
        error = (self.data or {}).get("execution", {}).get("error") or {}
        if not error:
            return ""
        # The SDK's types are fully qualified; the class name is what a reader needs.
        error_type = str(error.get("ErrorType", "")).rsplit(".", 1)[-1]
        return f"{error_type}: {error.get('ErrorMessage', '')}".strip(": ")

    @property
    def retry_description(self) -> str:
        return retry_plan.describe(self.variant.retry) if self.variant.retry else ""


def comparison_get(*, pk: int) -> Comparison:
    try:
        return Comparison.objects.get(pk=pk)
    except Comparison.DoesNotExist as exc:
        raise Http404("No such comparison.") from exc


def comparison_list(*, demo: str | None = None, limit: int = 20) -> list[Comparison]:
    qs = Comparison.objects.all()
    if demo is not None:
        qs = qs.filter(demo=demo)
    return list(qs.prefetch_related("variants")[:limit])


def comparison_rows(*, comparison: Comparison) -> list[VariantRow]:
    """One row per variant, with its replay record (one timeline read per variant)."""
    variants = list(comparison.variants.all())
    pks = dict(
        Execution.objects.filter(arn__in=[v.execution_arn for v in variants if v.execution_arn]).values_list(
            "arn", "id"
        )
    )
    return [_row(variant, comparison.time_scale, pks.get(variant.execution_arn)) for variant in variants]


def _row(variant: Variant, time_scale: float, execution_pk: int | None) -> VariantRow:
    data = _timeline(variant.execution_arn)
    row = VariantRow(variant, data, time_scale, execution_pk=execution_pk)
    if variant.retry:
        row.planned = retry_plan.planned_retries(variant.retry)
    if data is not None:
        row.focus_step, row.actual = actual_retries(data, time_scale)
    return row


def _timeline(arn: str) -> Timeline | None:
    if not arn:
        return None
    try:
        return timeline.execution_timeline(arn)
    except ResourceNotFoundException:
        return None


def actual_retries(data: Timeline, time_scale: float) -> tuple[str, list[ActualRetry]]:
    """The step with the most attempts, and for each of its failed attempts what followed."""
    steps = [op for op in data["operations"] if op["type"] == "STEP"]
    if not steps:
        return "", []
    focus = max(
        steps,
        key=lambda op: (
            len(op["attempts"]),
            sum(1 for a in op["attempts"] if a["outcome"] in ATTEMPT_FAILED),
            len(op.get("body_runs") or []),
        ),
    )
    attempts = focus["attempts"]
    result = []
    for index, attempt in enumerate(attempts):
        if attempt["outcome"] not in ATTEMPT_FAILED:
            continue
        following = attempts[index + 1] if index + 1 < len(attempts) else None
        gap = _gap(attempt["ended_at"], following["started_at"] if following else None)
        chosen = attempt.get("next_attempt_delay")
        result.append(
            ActualRetry(
                attempt["attempt"],
                attempt["outcome"],
                chosen,
                gap,
                round(gap / time_scale, 2) if gap is not None and time_scale else None,
                round(chosen * time_scale, 3) if chosen is not None else None,
            )
        )
    return focus["name"] or focus["op_id"], result


def _gap(failed_at: datetime | None, next_start: datetime | None) -> float | None:
    if failed_at is None or next_start is None:
        return None
    return round((next_start - failed_at).total_seconds(), 3)


def any_running(rows: list[VariantRow]) -> bool:
    return any(row.running for row in rows)


# --- executions for the diff and the demos ----------------------------------------------------


def execution_by_arn(*, arn: str) -> Execution:
    execution = Execution.objects.filter(arn=arn).first()
    if execution is None:
        raise Http404("No such execution.")
    return execution


def recent_async(*, function_names: tuple[str, ...], limit: int = 20) -> list[AsyncInvocation]:
    return list(AsyncInvocation.objects.filter(function_name__in=function_names).order_by("-created_at", "-id")[:limit])


def dead_letters(*, limit: int = 200) -> list[AsyncInvocation]:
    """The queue, and the events that left it by a successful redrive, each with its redrive's status."""
    redrives = AsyncInvocation.objects.filter(redrive_of_id=OuterRef("pk")).order_by("id")
    rows = AsyncInvocation.objects.filter(status__in=("DEAD_LETTERED", "REDRIVEN")).annotate(
        redrive_status=Subquery(redrives.values("status")[:1])
    )
    return list(rows.order_by("-dead_lettered_at", "-id")[:limit])


def async_get(*, pk: int) -> AsyncInvocation:
    try:
        return AsyncInvocation.objects.get(pk=pk)
    except AsyncInvocation.DoesNotExist as exc:
        raise Http404("No such invocation.") from exc


def execution_pk(*, arn: str) -> int | None:
    return Execution.objects.filter(arn=arn).values_list("id", flat=True).first()


def fraud_transactions(
    *, function_names: tuple[str, ...] = ("fraud-detection",), limit: int = 15
) -> list[dict[str, Any]]:
    """Recent transactions of either language's function, with the decision the workflow returned
    (or None while it runs)."""
    executions = Execution.objects.filter(function_name__in=function_names).order_by("-started_at", "-id")
    runtimes = dict(Function.objects.filter(name__in=function_names).values_list("name", "runtime"))
    executions = list(executions[:limit])
    scored = _scored_risks([e.pk for e in executions])
    rows = []
    for execution in executions:
        result = _json(execution.result) or {}
        tx = _json(execution.input) or {}
        decision, why = fraud_decision(result)
        rows.append(
            {
                "execution": execution,
                "language": language_of(runtimes.get(execution.function_name)),
                "amount": tx.get("amount"),
                "decision": decision,
                "why": why,
                "risk": scored.get(execution.pk) or (result.get("risk") or {}).get("risk"),
            }
        )
    return rows


def _scored_risks(execution_ids: list[int]) -> dict[int, str]:
    """The risk each execution's ``score-<id>`` step checkpointed, as soon as it did (both
    handlers name the step so; the Python twin's result is an object with ``risk``)."""
    steps = Operation.objects.filter(
        execution_id__in=execution_ids, type="STEP", parent_id__isnull=True, name__startswith="score-"
    ).values_list("execution_id", "doc")
    risks = {}
    for execution_id, doc in steps:
        result = _json((doc.get("StepDetails") or {}).get("Result"))
        risk = result.get("v", {}).get("risk", {}).get("v") if isinstance(result, dict) else result
        if isinstance(risk, str):
            risks[execution_id] = risk
    return risks


def language_of(runtime: str | None) -> str:
    """The language a function's handler is written in: Python in the worker, or its Runtime's."""
    return "typescript" if (runtime or "").startswith("nodejs") else "python"


def fraud_decision(result: Any) -> tuple[str | None, str]:
    """(decision, why) from either handler's result.

    The Python twin returns its decision by name; the seed's TypeScript returns what its last step
    returned: the capture (``authorized``, ``final``) or the fraud case (``escalated``).
    """
    if not isinstance(result, dict) or not result:
        return None, ""
    if "decision" in result:
        return result["decision"], result.get("why") or (result.get("case") or {}).get("reason", "")
    if result.get("authorized"):
        return "approved", "customer confirmed" if result.get("final") else "low risk"
    if "escalated" in result:
        return (
            ("escalated", "verification failed or said no") if result["escalated"] else ("sent_to_fraud", "high risk")
        )
    return None, ""


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def attempts_with_gaps(invocation: AsyncInvocation) -> list[dict[str, Any]]:
    """The invocation's tries, each with the wait since the previous one ended (Lambda's retry delay)."""
    result, previous_end = [], None
    for attempt in invocation.attempts:
        started = datetime.fromisoformat(attempt["started_at"])
        gap = (started - previous_end).total_seconds() if previous_end is not None else None
        result.append({**attempt, "gap": gap})
        previous_end = datetime.fromisoformat(attempt["ended_at"])
    return result


def fix_deployed(*, function_name: str) -> bool:
    """Whether the receipt function's environment has the holiday template (the poison event's fix)."""
    environment = Function.objects.filter(name=function_name).values_list("environment", flat=True).first()
    return "holiday" in (environment or {}).get("RECEIPT_TEMPLATES", "")
