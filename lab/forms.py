"""Lab forms: what a comparison varies, and the classroom clock (time scale)."""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from lab import scenarios

TIME_SCALES = [
    ("1", "\N{MULTIPLICATION SIGN}1 — real time"),
    ("0.5", "\N{MULTIPLICATION SIGN}0.5 — twice as fast"),
    ("0.25", "\N{MULTIPLICATION SIGN}0.25 — 4\N{MULTIPLICATION SIGN} faster"),
    ("0.1", "\N{MULTIPLICATION SIGN}0.1 — 10\N{MULTIPLICATION SIGN} faster"),
    ("0.01", "\N{MULTIPLICATION SIGN}0.01 — 100\N{MULTIPLICATION SIGN} faster (a minute in 0.6 s)"),
    ("0.005", "\N{MULTIPLICATION SIGN}0.005 — a day in 7.2 min"),
    ("0.001", "\N{MULTIPLICATION SIGN}0.001 — a day in 86 s"),
    ("0.0001", "\N{MULTIPLICATION SIGN}0.0001 — a day in 8.6 s"),
]
TIME_SCALE_HELP = (
    "Multiplies waits, retry delays, callback timeouts and the execution timeout. "
    "A function's Timeout (one invocation's limit) stays real time."
)
TX_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")


def time_scale_field(initial: str) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label="Time scale", choices=TIME_SCALES, coerce=float, initial=initial, help_text=TIME_SCALE_HELP
    )


LANGUAGE_HELP = (
    "The same seed handler written for each SDK: Python runs in the worker, TypeScript on Node 22 "
    "in its own runtime process, as Lambda runs it. Both: side by side, with the same counts."
)


def language_field(initial: str, *, both: bool = True) -> forms.ChoiceField:
    choices = [("python", "Python"), ("typescript", "TypeScript")]
    if both:
        choices.append(("both", "Both, side by side"))
    # Not required: a run without the field (an older page, a script) runs the Python handler.
    return forms.ChoiceField(
        label="Language",
        choices=choices,
        initial=initial,
        required=False,
        widget=forms.RadioSelect,
        help_text=LANGUAGE_HELP,
    )


class TimeScaleForm(forms.Form):
    def __init__(
        self,
        *args: Any,
        initial_scale: str = "0.5",
        languages: bool = False,
        initial_language: str = "both",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_scale"] = time_scale_field(initial_scale)
        if languages:
            self.fields["language"] = language_field(initial_language)

    def languages(self) -> tuple[str, ...]:
        """The languages to run: one, or both side by side."""
        return scenarios.LANGUAGE_CHOICES[self.cleaned_data.get("language") or "python"]


class ComparisonForm(forms.Form):
    """semantics x retry strategy x fault, each a set of choices; every combination is one variant."""

    title = forms.CharField(label="Title", required=False, max_length=200)
    semantics = forms.MultipleChoiceField(
        label="Step semantics",
        widget=forms.CheckboxSelectMultiple,
        initial=list(scenarios.SEMANTICS),
        choices=[(s, f"{scenarios.SEMANTICS_LABEL[s]} ({s})") for s in scenarios.SEMANTICS],
    )
    retries = forms.MultipleChoiceField(
        label="Retry strategy",
        widget=forms.CheckboxSelectMultiple,
        initial=["default", "none"],
        choices=[
            ("default", "SDK default (6 attempts, 5 s \N{MULTIPLICATION SIGN} 2 up to 60 s, full jitter)"),
            ("none", "no retry"),
            ("custom", "custom RetryStrategyConfig (below)"),
        ],
    )
    max_attempts = forms.IntegerField(label="max attempts", min_value=1, max_value=10, initial=4)
    initial_delay = forms.IntegerField(label="initial delay (s)", min_value=1, max_value=600, initial=2)
    backoff_rate = forms.FloatField(label="backoff rate", min_value=1, max_value=5, initial=2)
    max_delay = forms.IntegerField(label="max delay (s)", min_value=1, max_value=3600, initial=30)
    jitter = forms.ChoiceField(
        label="jitter",
        choices=[("NONE", "none"), ("FULL", "full (1 … delay)"), ("HALF", "half (delay/2 … delay)")],
        initial="NONE",
    )
    faults = forms.MultipleChoiceField(
        label="Fault in the charge step",
        widget=forms.CheckboxSelectMultiple,
        initial=["kill_after_body"],
        choices=list(scenarios.FAULTS.items()),
    )
    fail_n = forms.IntegerField(label="N (for “fail N times”)", min_value=1, max_value=9, initial=2)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_scale"] = time_scale_field("0.1")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if all(data.get(k) for k in ("semantics", "retries", "faults")):
            count = len(data["semantics"]) * len(data["retries"]) * len(data["faults"])
            if count > scenarios.MAX_VARIANTS:
                raise ValidationError(f"That is {count} variants; a comparison runs at most {scenarios.MAX_VARIANTS}.")
        return data

    def custom_retry_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("max_attempts", "initial_delay", "backoff_rate", "max_delay", "jitter")]

    def retry_specs(self) -> list[dict[str, Any]]:
        data = self.cleaned_data
        custom = {
            "kind": "custom",
            "max_attempts": data["max_attempts"],
            "initial_delay": data["initial_delay"],
            "backoff_rate": data["backoff_rate"],
            "max_delay": data["max_delay"],
            "jitter": data["jitter"],
        }
        return [custom if kind == "custom" else {"kind": kind} for kind in data["retries"]]

    def fault_specs(self) -> list[dict[str, Any]]:
        return [
            {"kind": k, "n": self.cleaned_data["fail_n"]} if k == "fail_n" else {"kind": k}
            for k in self.cleaned_data["faults"]
        ]

    def variants(self, order: str) -> list[scenarios.VariantSpec]:
        return scenarios.lab_variants(
            self.cleaned_data["semantics"], self.retry_specs(), self.fault_specs(), order=order
        )

    def variant_count(self) -> int:
        data = self.cleaned_data
        return len(list(itertools.product(data["semantics"], data["retries"], data["faults"])))


class FraudForm(forms.Form):
    transaction_id = forms.CharField(
        label="Transaction id",
        max_length=40,
        help_text="The execution is named tx-<id>: submitting the same id twice starts one workflow.",
    )
    amount = forms.FloatField(
        label="Amount",
        min_value=0,
        max_value=1_000_000,
        initial=6500,
        help_text="Below 1000: low risk. 1000 to 9999: medium (customer verification). 10000 and up: high.",
    )

    def __init__(
        self, *args: Any, initial_scale: str = "0.005", initial_language: str = "python", **kwargs: Any
    ) -> None:
        kwargs.setdefault("initial", {}).setdefault("transaction_id", uuid.uuid4().hex[:6])
        super().__init__(*args, **kwargs)
        self.fields["language"] = language_field(initial_language)
        self.fields[
            "language"
        ].help_text = (
            "Both: the same transaction id in each language's function (tx-<id> in each), to answer and compare."
        )
        self.fields["time_scale"] = time_scale_field(initial_scale)

    def languages(self) -> tuple[str, ...]:
        return scenarios.LANGUAGE_CHOICES[self.cleaned_data.get("language") or "python"]

    def clean_transaction_id(self) -> str:
        value = self.cleaned_data["transaction_id"].strip()
        if not TX_ID_RE.fullmatch(value):
            raise ValidationError("Use 1-40 letters, digits, hyphens or underscores.")
        return value


ASYNC_ACTIONS = {"outage", "poison", "healthy", "sync", "fix", "unfix"}


class AsyncForm(forms.Form):
    function = forms.ChoiceField(
        choices=[
            ("async-receipt", "async-receipt (MaximumRetryAttempts 2, the default)"),
            ("async-receipt-no-retry", "async-receipt-no-retry (MaximumRetryAttempts 0)"),
        ]
    )

    def __init__(self, *args: Any, initial_scale: str = "0.1", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_scale"] = time_scale_field(initial_scale)
