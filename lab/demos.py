"""The lab's demos: what each teaches, which function it runs, and where its curriculum comes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Demo:
    slug: str
    title: str
    seed: str
    teaches: str
    functions: tuple[str, ...]
    # "comparison" demos run their variants as a saved comparison; the others have their own page.
    kind: str = "comparison"
    scenario: str = ""
    default_scale: str = "0.5"
    # The languages the demo's handler is written in; more than one offers a choice, and both side by side.
    languages: tuple[str, ...] = ("python",)

    @property
    def multilingual(self) -> bool:
        return len(self.languages) > 1


DEMOS = (
    Demo(
        "replay-not-retry",
        "Replay is not retry",
        "seed 000",
        "A step whose body outlives the function's Timeout, under both step semantics, with and without retries: "
        "replays re-run an at-least-once step within one attempt; only at-most-once plus no retry runs it once.",
        ("replay-not-retry",),
        scenario="seed-000",
        default_scale="0.5",
        languages=("python", "typescript"),
    ),
    Demo(
        "fraud",
        "Fraud detection",
        "seed 001",
        "Score, then approve, verify by email and SMS in parallel (first answer wins, one-day callbacks), or escalate. "
        "Idempotency keys on the charge, execution names from the transaction id.",
        ("fraud-detection", "fraud-detection-ts"),
        kind="fraud",
        languages=("python", "typescript"),
        # A one-day callback timeout leaves about 7 minutes: time for a person to read and answer.
        default_scale="0.005",
    ),
    Demo(
        "idempotency",
        "Idempotency keys",
        "seed 001 · BP1",
        "The same payment step killed after its body, before its checkpoint: the body runs again and charges twice "
        "without an idempotency key, once with one.",
        ("idempotency-keys",),
        scenario="idempotency",
        default_scale="0.1",
    ),
    Demo(
        "express",
        "At-least-once without checkpoints",
        "seed 002",
        "One big step re-runs every side effect when it is retried, like an Express workflow; a checkpoint per step "
        "re-runs only the step that failed.",
        ("express-vs-checkpoints",),
        scenario="express",
        default_scale="0.25",
    ),
    Demo(
        "async-retries",
        "Async retries and a dead-letter queue",
        "seed 003",
        "A plain function invoked with Event is retried twice (after 1 min, then 2 min), then its event goes to the "
        "dead-letter queue to be inspected and redriven; RequestResponse errors go back to the caller, never retried.",
        ("async-receipt", "async-receipt-no-retry"),
        kind="async",
        default_scale="0.1",
    ),
)
BY_SLUG = {demo.slug: demo for demo in DEMOS}
BY_SCENARIO = {demo.scenario: demo for demo in DEMOS if demo.scenario}
