"""The audit trail shows what was done through the AWS API, with the access key that signed it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.browser.helpers import shot
from tests.wire.conftest import ROLE, boto3_client, credentials

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def test_audit_page_shows_api_writes(logged_in: Any, web_server: str) -> None:
    page = logged_in
    keys = credentials()
    name = f"w-audit-{uuid.uuid4().hex[:8]}"
    boto3_client(web_server, keys).create_function(
        FunctionName=name, Role=ROLE, Handler="tests.handlers.engine_sdk.echo", Code={}
    )
    page.goto("/audit/")
    row = page.locator("table.audit tr", has_text=name).first
    assert "function.create" in row.inner_text()
    assert f"via aws api · {keys['aws_access_key_id']}" in row.inner_text()
    for label, viewport in (("1440", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        shot(page, f"wire-audit-{label}", full_page=False)
