"""The variants a comparison runs: each is a label, the knobs it sets, and the input it sends.

A variant's knobs travel in its input, so the same registered function serves every variant
(``demos.lab_scenario`` reads semantics, retry strategy and fault from its event).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import demos as demo_functions
from lab import retry_plan

SEMANTICS = ("AT_LEAST_ONCE_PER_RETRY", "AT_MOST_ONCE_PER_RETRY")
SEMANTICS_LABEL = {"AT_LEAST_ONCE_PER_RETRY": "at-least-once", "AT_MOST_ONCE_PER_RETRY": "at-most-once"}
FAULTS: dict[str, str] = {
    "none": "no fault",
    "timeout": "timeout (body outlives the function Timeout)",
    "kill_body_start": "kill at body start",
    "kill_after_body": "kill after body, before checkpoint",
    "fail_n": "fail N times, then succeed",
}
MAX_VARIANTS = 12
LAB_FUNCTION = "lab-scenario"


@dataclass(frozen=True)
class VariantSpec:
    label: str
    payload: dict[str, Any]
    semantics: str = ""
    retry: dict[str, Any] = field(default_factory=dict)
    fault: dict[str, Any] = field(default_factory=dict)
    # Blank: the comparison's function. A TypeScript variant names its own (one per seed scenario).
    function_name: str = ""
    language: str = ""

    def payload_json(self) -> str:
        return json.dumps(self.payload, sort_keys=True)


@dataclass(frozen=True)
class Scenario:
    """A function and how to build its variants' inputs."""

    key: str
    title: str
    function_name: str
    demo: str = ""


SCENARIOS = {
    "lab": Scenario("lab", "Semantics \N{MULTIPLICATION SIGN} retry \N{MULTIPLICATION SIGN} fault", LAB_FUNCTION),
    "seed-000": Scenario("seed-000", "Replay is not retry (seed 000)", "replay-not-retry", demo="replay-not-retry"),
    "idempotency": Scenario("idempotency", "Idempotency keys", "idempotency-keys", demo="idempotency"),
    "express": Scenario(
        "express", "At-least-once without checkpoints (seed 002)", "express-vs-checkpoints", demo="express"
    ),
}


def fault_label(fault: dict[str, Any]) -> str:
    kind = fault.get("kind", "none")
    if kind == "fail_n":
        return f"fail {fault.get('n', 2)}\N{MULTIPLICATION SIGN} then succeed"
    return FAULTS.get(kind, kind)


def lab_variants(
    semantics: list[str], retries: list[dict[str, Any]], faults: list[dict[str, Any]], *, order: str, sleep: float = 4
) -> list[VariantSpec]:
    """The cartesian product semantics x retry x fault, in that nesting order."""
    variants = []
    for sem, retry, fault in itertools.product(semantics, retries, faults):
        label = f"{SEMANTICS_LABEL[sem]} · {retry_plan.short_name(retry)} · {fault_label(fault)}"
        payload = {"semantics": sem, "retry": retry, "fault": fault, "order": order, "sleep": sleep}
        variants.append(VariantSpec(label, payload, sem, retry, fault))
    return variants


LANGUAGE_LABEL = {"python": "Python", "typescript": "TypeScript"}
# What a demo's language choice runs: one language, or both side by side.
LANGUAGE_CHOICES = {"python": ("python",), "typescript": ("typescript",), "both": ("python", "typescript")}
SEED_000_RETRIES = ("default", "none")


def seed_000_variants(languages: tuple[str, ...] = ("python",)) -> list[VariantSpec]:
    """Seed 000's four scenarios: semantics x (default retry, no retry), a 10 s body under a 3 s Timeout.

    In Python one function takes the scenario in its input; in TypeScript each scenario is its own
    export of the seed's handler (``demos/ts/step_semantics_scenarios.ts``), so its own function.
    With both languages, each language's four follow each other in the same order, and every label
    names its language.
    """
    variants = []
    for language in languages:
        for sem, retry in itertools.product(SEMANTICS, SEED_000_RETRIES):
            label = seed_000_label(sem, retry)
            if languages != ("python",):
                label = f"{label} · {LANGUAGE_LABEL[language]}"
            spec = {"kind": retry}, {"kind": "timeout"}
            if language == "python":
                payload = {"semantics": sem, "retry": retry, "sleep": 10}
                variants.append(VariantSpec(label, payload, sem, *spec, language="python"))
            else:
                function = demo_functions.SEED_000_TS[(sem, retry)]
                variants.append(VariantSpec(label, {}, sem, *spec, function_name=function, language=language))
    return variants


def seed_000_label(semantics: str, retry: str) -> str:
    return f"{SEMANTICS_LABEL[semantics]} · {'default retry' if retry == 'default' else 'no retry'}"


def idempotency_variants(order: str) -> list[VariantSpec]:
    kill = {"kind": "kill_after_body"}
    return [
        VariantSpec(
            "without idempotency key",
            {"order": order, "use_idempotency_key": False},
            "AT_LEAST_ONCE_PER_RETRY",
            {"kind": "default"},
            kill,
        ),
        VariantSpec(
            "with idempotency key",
            {"order": order, "use_idempotency_key": True},
            "AT_LEAST_ONCE_PER_RETRY",
            {"kind": "default"},
            kill,
        ),
    ]


EXPRESS_RETRY = {
    "kind": "custom",
    "max_attempts": 3,
    "initial_delay": 2,
    "backoff_rate": 2.0,
    "max_delay": 300,
    "jitter": "NONE",
}


def express_variants(order: str) -> list[VariantSpec]:
    fault = {"kind": "fail_n", "n": 1}
    return [
        VariantSpec(
            "one big step (re-runs everything, like Express)",
            {"mode": "one_big_step", "order": order, "fail_attempts": 1},
            "AT_LEAST_ONCE_PER_RETRY",
            EXPRESS_RETRY,
            fault,
        ),
        VariantSpec(
            "a checkpoint per step",
            {"mode": "checkpointed", "order": order, "fail_attempts": 1},
            "AT_LEAST_ONCE_PER_RETRY",
            EXPRESS_RETRY,
            fault,
        ),
    ]
