"""Forms validate what people type before anything reaches the engine: JSON, names, phases."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from engine import validation

EXECUTION_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
INVOCATION_TYPES = [
    ("Event", "Event — return at once, watch it run"),
    ("RequestResponse", "RequestResponse — wait here for the result (up to 15 minutes)"),
]
PHASES = [
    ("body_start", "when the step's body starts (before any side effect)"),
    ("after_body", "after the body ran, before its result is checkpointed"),
]


def parse_json(text: str, *, field: str, allow_empty: bool = True, max_bytes: int = 256 * 1024) -> str | None:
    """Return the text if it is one JSON document (None when empty and allowed); else raise a clear error."""
    text = text.strip()
    if not text:
        if allow_empty:
            return None
        raise ValidationError(f'{field} is required: type a JSON value, e.g. {{}} or "yes".')
    try:
        # Strict JSON within the engine's limits: no NaN, no nesting past 64 levels (no RecursionError).
        return validation.check_json_text(text, field, max_bytes=max_bytes)
    except validation.InvalidInput as exc:
        raise ValidationError(str(exc)) from exc


class StartForm(forms.Form):
    function = forms.ChoiceField(label="Function")
    payload = forms.CharField(
        label="Input (JSON)",
        required=False,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
    )
    name = forms.CharField(
        label="Execution name",
        required=False,
        max_length=64,
        help_text="Optional. Letters, digits, - and _. Starting twice with one name returns the same execution.",
    )
    invocation_type = forms.ChoiceField(
        label="Invocation type", choices=INVOCATION_TYPES, initial="Event", widget=forms.RadioSelect
    )
    time_scale = forms.FloatField(
        label="Time scale",
        required=False,
        min_value=0.0001,
        max_value=1,
        initial=1,
        help_text="1 = real time; 0.1 makes waits, retries and timeouts 10 times shorter.",
    )
    semantics = forms.CharField(
        label="Step semantics / retry strategy",
        required=False,
        disabled=True,
        help_text="Coming with the teaching lab: run the same workflow under other semantics or retry strategies.",
        widget=forms.TextInput(attrs={"placeholder": "coming with the teaching lab"}),
    )

    def __init__(self, *args: Any, functions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["function"].choices = [(name, name) for name in functions]

    def clean_payload(self) -> str | None:
        # Event invocations take at most 1 MiB, as on AWS Lambda; RequestResponse ones 6 MiB.
        return parse_json(self.cleaned_data.get("payload") or "", field="Input", max_bytes=6 * 1024 * 1024)

    def clean_name(self) -> str | None:
        name = (self.cleaned_data.get("name") or "").strip()
        if name and not EXECUTION_NAME_RE.fullmatch(name):
            raise ValidationError("Use 1-64 letters, digits, hyphens or underscores.")
        return name or None


class ApproveForm(forms.Form):
    result = forms.CharField(
        label="Result (JSON)",
        required=False,
        initial='{"approved": true}',
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "class": "mono"}),
    )

    note = forms.CharField(label="Note (optional)", max_length=2048, required=False)

    def clean_result(self) -> str:
        return parse_json(self.cleaned_data.get("result") or "", field="Result", allow_empty=False) or "null"

    def result_with_note(self) -> str:
        """The JSON result sent, with the operator's note in it (``"note"`` of an object result)."""
        result, note = self.cleaned_data["result"], self.cleaned_data.get("note", "").strip()
        if not note:
            return result
        value = json.loads(result)
        answer = {**value, "note": note} if isinstance(value, dict) else {"result": value, "note": note}
        return json.dumps(answer, ensure_ascii=False)


class RejectForm(forms.Form):
    error_type = forms.CharField(label="Error type", max_length=128, initial="Rejected")
    error_message = forms.CharField(
        label="Message", max_length=2048, required=False, initial="Rejected from the dashboard"
    )
    error_data = forms.CharField(
        label="Error data (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "class": "mono"}),
    )

    def clean_error_data(self) -> str | None:
        return parse_json(self.cleaned_data.get("error_data") or "", field="Error data")

    note = forms.CharField(label="Note (optional)", max_length=2048, required=False)

    def error_object(self) -> dict[str, str]:
        # The note, when given, is the message: it is what the workflow and the audit read.
        message = self.cleaned_data.get("note", "").strip() or self.cleaned_data["error_message"]
        error = {"ErrorType": self.cleaned_data["error_type"], "ErrorMessage": message}
        if self.cleaned_data.get("error_data"):
            error["ErrorData"] = self.cleaned_data["error_data"]
        return error


class ArmFaultForm(forms.Form):
    step_name = forms.CharField(label="Step name", max_length=256)
    phase = forms.ChoiceField(
        label="Kill the invocation", choices=PHASES, initial="after_body", widget=forms.RadioSelect
    )
