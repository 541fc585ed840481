"""Seed 003: a plain (non-durable) function that sends a receipt, for Lambda's async retries and DLQ.

Two ways to fail, both chosen by the event:

- ``outage_until`` (epoch seconds): the mail service is down until then, a transient error that a
  later retry may outlive;
- ``template``: a receipt template this deployment does not know, a poison event that fails on
  every retry until a fix is deployed (the function's ``RECEIPT_TEMPLATES`` variable), after
  which it can be redriven from the dead-letter queue.
"""

from __future__ import annotations

import os
import time
from typing import Any

KNOWN_TEMPLATES_DEFAULT = "standard"


class MailServiceUnavailableError(Exception):
    """The downstream mail service answered 503."""


class UnknownTemplateError(Exception):
    """The event asks for a template this version of the function cannot render."""


def known_templates() -> set[str]:
    return {t.strip() for t in os.environ.get("RECEIPT_TEMPLATES", KNOWN_TEMPLATES_DEFAULT).split(",") if t.strip()}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    template = str(event.get("template", "standard"))
    if template not in known_templates():
        raise UnknownTemplateError(f"no receipt template {template!r} in this deployment")
    if time.time() < float(event.get("outage_until") or 0):
        raise MailServiceUnavailableError("mail service unavailable (503), try again later")
    request_id = getattr(context, "aws_request_id", None)
    return {"sent": True, "order": event.get("order"), "template": template, "request_id": request_id}
