"""Seed 001: fraud detection with human verification, the six best practices in one workflow.

A transaction is scored. Low risk is authorised at once; high risk goes straight to the fraud
team; medium risk asks the customer by email and SMS at the same time (``context.parallel`` with
``min_successful=1``), each a callback with a one-day timeout. The first "yes" authorises the
charge; a "no", a rejected callback or the timeout escalates to the fraud team.

Input: ``{"id": "3", "amount": 6500, "card": "4111…1111", "merchant": "…", "risk": optional}``.
Start it with ``DurableExecutionName=f"tx-{id}"`` so a double click starts one workflow (BP2).
"""

from __future__ import annotations

import json
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, ParallelBranch, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import CompletionConfig, Duration, ParallelConfig, WaitForCallbackConfig
from aws_durable_execution_sdk_python.types import WaitForCallbackContext

from engine import effects

LOW_RISK_BELOW = 1000
HIGH_RISK_FROM = 10000
CALLBACK_TIMEOUT = Duration.from_days(1)
# Either channel's "yes" is enough; a "no" or a rejected/timed-out callback on either ends the wait.
VERIFICATION = ParallelConfig(
    max_concurrency=2, completion_config=CompletionConfig(min_successful=1, tolerated_failure_count=0)
)


def risk_of(tx: dict[str, Any]) -> dict[str, Any]:
    if tx.get("risk") in {"low", "medium", "high"}:
        return {"risk": tx["risk"], "score": {"low": 1, "medium": 5, "high": 9}[tx["risk"]], "forced": True}
    amount = float(tx.get("amount", 0))
    risk = "low" if amount < LOW_RISK_BELOW else "high" if amount >= HIGH_RISK_FROM else "medium"
    return {"risk": risk, "score": min(10, int(amount // 1000) + 1), "forced": False}


def authorize(tx: dict[str, Any]) -> Any:
    def body(step_context: StepContext) -> dict[str, Any]:
        # BP1: the payment API deduplicates on the key, so a replayed or retried step charges once.
        charge = effects.record("charge", f"tx-{tx['id']}", idempotency_key=f"tx-{tx['id']}")
        return {"authorized": True, "amount": tx.get("amount"), "charged_now": charge.performed}

    return body


def send_to_fraud(tx: dict[str, Any], reason: str) -> Any:
    def body(step_context: StepContext) -> dict[str, Any]:
        effects.record("fraud-case", f"tx-{tx['id']}", idempotency_key=f"fraud-{tx['id']}")
        return {"escalated": True, "reason": reason}

    return body


def verification_text(tx: dict[str, Any], channel: str) -> str:
    """The message the customer reads: what is being verified, in their words."""
    medium = "Email" if channel == "email" else "SMS"
    amount = tx.get("amount")
    shown = f"{amount:,.2f}" if isinstance(amount, (int, float)) else str(amount)
    return (
        f"{medium} to the holder of card {tx.get('card', 'on file')}: did you just pay {shown} "
        f"at {tx.get('merchant', 'a merchant')} (transaction {tx['id']})? Answer yes or no with the link."
    )


def verification_branch(tx: dict[str, Any], channel: str) -> ParallelBranch[Any]:
    def submit(callback_id: str, ctx: WaitForCallbackContext) -> None:
        # The link in the message carries the callback id; the customer's answer completes it.
        effects.record("notification", f"{channel}-tx-{tx['id']}")
        ctx.logger.info("%s (callback %s)", verification_text(tx, channel), callback_id)

    name = "SendVerificationEmail" if channel == "email" else "SendVerificationSMS"
    config = WaitForCallbackConfig(timeout=CALLBACK_TIMEOUT)
    return ParallelBranch(lambda ctx: ctx.wait_for_callback(submit, name=name, config=config), name=channel)


def customer_answer(context: DurableContext, tx: dict[str, Any]) -> tuple[bool, str]:
    """(approved, why): the first answer of either channel, or why there is none."""
    try:
        batch = context.parallel(
            [verification_branch(tx, "email"), verification_branch(tx, "sms")],
            name="human-verification",
            config=VERIFICATION,
        )
    except Exception as exc:  # BP6: a timeout or rejection must escalate, never wait forever
        return False, f"verification failed: {type(exc).__name__}"
    if not batch.succeeded():
        errors = [e.message for e in batch.get_errors() if e is not None]
        timed_out = any("timed out" in (m or "").lower() or "timeout" in (m or "").lower() for m in errors)
        return False, "customer verification timed out" if timed_out else "customer rejected the verification"
    answer = _parse(batch.succeeded()[0].result)
    approved = bool(answer.get("approved", True)) if isinstance(answer, dict) else bool(answer)
    return approved, "customer confirmed" if approved else "customer said it was not them"


def _parse(result: Any) -> Any:
    if isinstance(result, str):
        try:
            return json.loads(result)
        except json.JSONDecodeError:
            return result
    return result


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    tx = dict(event) if isinstance(event, dict) else {}
    tx.setdefault("id", "0")
    scored = context.step(lambda _: risk_of(tx), name=f"score-{tx['id']}")
    if scored["risk"] == "low":
        return {
            "decision": "approved",
            "risk": scored,
            "auth": context.step(authorize(tx), name=f"authorize-{tx['id']}"),
        }
    if scored["risk"] == "high":
        case = context.step(send_to_fraud(tx, "high risk score"), name=f"send-to-fraud-{tx['id']}")
        return {"decision": "sent_to_fraud", "risk": scored, "case": case}
    approved, why = customer_answer(context, tx)
    if not approved:
        case = context.step(send_to_fraud(tx, why), name=f"escalate-{tx['id']}")
        return {"decision": "escalated", "risk": scored, "why": why, "case": case}
    auth = context.step(authorize(tx), name=f"authorize-{tx['id']}")
    return {"decision": "approved", "risk": scored, "why": why, "auth": auth}
