"""Demo durable functions, registered by default (set DURABLE_REGISTER_DEMOS=0 to skip).

The Python demos run in the worker (``Handler`` is an import path). The TypeScript seed handlers in
``ts/`` run as Lambda runs them, out of process on Node 22 (``Runtime: nodejs22.x``, their code a
zip of that folder), so the lab can run each seed in both languages and compare the counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.runtimes.code import zip_files

TS_DIR = Path(__file__).resolve().parent / "ts"
TS_RUNTIME = "nodejs22.x"


def ts_code() -> dict[str, bytes]:
    """``Code`` for the TypeScript demos: the ``ts/`` folder's sources as a zip.

    The entries carry a fixed timestamp and order, so the same sources give the same bytes, the
    same CodeSha256 at every ``migrate``, and the workers keep their warm Node processes.
    """
    return {"ZipFile": zip_files(TS_DIR, sorted(TS_DIR.glob("*.ts")))}


# Seed 000's four scenarios in TypeScript: one export each of ts/step_semantics_scenarios.ts, as the
# seed sets its two commented-out options. Keys: (semantics, retry) as the Python demo's input names them.
SEED_000_TS: dict[tuple[str, str], str] = {
    ("AT_LEAST_ONCE_PER_RETRY", "default"): "replay-not-retry-ts-at-least-once",
    ("AT_LEAST_ONCE_PER_RETRY", "none"): "replay-not-retry-ts-at-least-once-no-retry",
    ("AT_MOST_ONCE_PER_RETRY", "default"): "replay-not-retry-ts-at-most-once",
    ("AT_MOST_ONCE_PER_RETRY", "none"): "replay-not-retry-ts-at-most-once-no-retry",
}
SEED_000_TS_EXPORTS = {
    ("AT_LEAST_ONCE_PER_RETRY", "default"): ("atLeastOnceRetry", "scenario 1: default semantics, default retry"),
    ("AT_LEAST_ONCE_PER_RETRY", "none"): ("atLeastOnceNoRetry", "scenario 2: default semantics, no retry"),
    ("AT_MOST_ONCE_PER_RETRY", "default"): ("atMostOnceRetry", "scenario 3: AtMostOncePerRetry, default retry"),
    ("AT_MOST_ONCE_PER_RETRY", "none"): ("atMostOnceNoRetry", "scenario 4: AtMostOncePerRetry, no retry"),
}
FRAUD_TS = "fraud-detection-ts"


def _typescript_demos() -> list[dict[str, Any]]:
    code = ts_code()
    seed_000 = [
        {
            "FunctionName": SEED_000_TS[key],
            "Runtime": TS_RUNTIME,
            "Handler": f"step_semantics_scenarios.{export}",
            "Code": code,
            "Description": f"Seed 000 in TypeScript, {what}: a 10 s step under a 3 s Timeout.",
            "Timeout": 3,
            "DurableConfig": {"ExecutionTimeout": 60, "RetentionPeriodInDays": 7},
        }
        for key, (export, what) in SEED_000_TS_EXPORTS.items()
    ]
    fraud = {
        "FunctionName": FRAUD_TS,
        "Runtime": TS_RUNTIME,
        "Handler": "fraud_detection.handler",
        "Code": code,
        "Description": "Seed 001 in TypeScript: score, verify by email and SMS in parallel (1-day callbacks), "
        "finalize or escalate.",
        # As the seed's demo sets them: 120 s per invocation, 25 h for the whole execution (BP4).
        "Timeout": 120,
        "DurableConfig": {"ExecutionTimeout": 90000, "RetentionPeriodInDays": 7},
    }
    return [*seed_000, fraud]


DEMO_FUNCTIONS: list[dict[str, Any]] = [
    {
        "FunctionName": "hello-steps",
        "Handler": "demos.hello.handler",
        "Description": "Three steps around a short wait: the smallest durable workflow.",
        "Timeout": 30,
        "DurableConfig": {"ExecutionTimeout": 300, "RetentionPeriodInDays": 7},
    },
    {
        "FunctionName": "human-approval",
        "Handler": "demos.approval.handler",
        "Description": "Waits for a person to approve or reject from the callbacks inbox.",
        "Timeout": 30,
        "DurableConfig": {"ExecutionTimeout": 86400, "RetentionPeriodInDays": 7},
    },
    {
        "FunctionName": "replay-not-retry",
        "Handler": "demos.replay_not_retry.handler",
        "Description": "Seed 000: a 10 s step under a 3 s Timeout. Replay is not retry.",
        "Timeout": 3,
        "DurableConfig": {"ExecutionTimeout": 60, "RetentionPeriodInDays": 7},
    },
    # The teaching lab (lab/): the comparison scenario and one function per demo.
    {
        "FunctionName": "lab-scenario",
        "Handler": "demos.lab_scenario.handler",
        "Description": "Lab: one charge step under the semantics, retry strategy and fault in the input.",
        "Timeout": 2,
        "DurableConfig": {"ExecutionTimeout": 120, "RetentionPeriodInDays": 7},
    },
    {
        "FunctionName": "fraud-detection",
        "Handler": "demos.fraud.handler",
        "Description": "Seed 001: score, verify by email and SMS in parallel (1-day callbacks), charge or escalate.",
        "Timeout": 30,
        "DurableConfig": {"ExecutionTimeout": 129600, "RetentionPeriodInDays": 7},
    },
    {
        "FunctionName": "idempotency-keys",
        "Handler": "demos.idempotency.handler",
        "Description": "A payment step killed after its body: charged twice without an idempotency key, once with.",
        "Timeout": 10,
        "DurableConfig": {"ExecutionTimeout": 300, "RetentionPeriodInDays": 7},
    },
    {
        "FunctionName": "express-vs-checkpoints",
        "Handler": "demos.express.handler",
        "Description": "Seed 002: one big step re-runs everything on retry; one step per action does not.",
        "Timeout": 10,
        "DurableConfig": {"ExecutionTimeout": 300, "RetentionPeriodInDays": 7},
    },
    {
        "FunctionName": "async-receipt",
        "Handler": "demos.async_retry.handler",
        "Description": "Seed 003: a plain function; Event invocations are retried twice, then dead-lettered.",
        "Timeout": 5,
        "MaximumRetryAttempts": 2,
        "Environment": {"Variables": {"RECEIPT_TEMPLATES": "standard"}},
    },
    {
        "FunctionName": "async-receipt-no-retry",
        "Handler": "demos.async_retry.handler",
        "Description": "Seed 003: the same plain function with MaximumRetryAttempts 0: one try, then the DLQ.",
        "Timeout": 5,
        "MaximumRetryAttempts": 0,
        "Environment": {"Variables": {"RECEIPT_TEMPLATES": "standard"}},
    },
    *_typescript_demos(),
]

# An input that shows what each demo does, prefilled on the Start page when its function is chosen.
EXAMPLE_INPUTS: dict[str, dict[str, Any]] = {
    "hello-steps": {"name": "Ada", "wait_seconds": 3},
    "human-approval": {"amount": 420},
    "replay-not-retry": {"sleep": 10, "semantics": "AT_LEAST_ONCE_PER_RETRY", "retry": "default"},
    "lab-scenario": {
        "semantics": "AT_LEAST_ONCE_PER_RETRY",
        "retry": {"kind": "default"},
        "fault": {"kind": "kill_after_body"},
        "order": "o-1",
    },
    "fraud-detection": {"id": "3", "amount": 6500, "card": "4111…1111", "merchant": "Durable Lab Store"},
    FRAUD_TS: {"id": "3", "amount": 6500, "card": "4111…1111", "merchant": "Durable Lab Store"},
    **{name: {} for name in SEED_000_TS.values()},
    "idempotency-keys": {"order": "o-17", "use_idempotency_key": True},
    "express-vs-checkpoints": {"mode": "checkpointed", "order": "o-1", "fail_attempts": 1},
    "async-receipt": {"order": "o-1", "template": "standard"},
    "async-receipt-no-retry": {"order": "o-1", "template": "holiday"},
}
