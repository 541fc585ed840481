"""Demo durable functions, registered by default (set DURABLE_REGISTER_DEMOS=0 to skip)."""

from __future__ import annotations

from typing import Any

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
    "idempotency-keys": {"order": "o-17", "use_idempotency_key": True},
    "express-vs-checkpoints": {"mode": "checkpointed", "order": "o-1", "fail_attempts": 1},
    "async-receipt": {"order": "o-1", "template": "standard"},
    "async-receipt-no-retry": {"order": "o-1", "template": "holiday"},
}
