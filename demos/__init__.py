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
]
