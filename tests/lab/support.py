"""Helpers shared by the lab's end-to-end tests."""

from __future__ import annotations

import re
from typing import Any

from lab import selectors
from lab.models import Comparison
from tests.conftest import wait_until
from tests.truth import assert_truthful


def finished_rows(comparison: Comparison, timeout: float = 120) -> dict[str, selectors.VariantRow]:
    """Wait until every variant is terminal; return the table rows by variant label."""

    def done() -> list[selectors.VariantRow] | None:
        rows = selectors.comparison_rows(comparison=comparison)
        return rows if not selectors.any_running(rows) else None

    rows = wait_until(done, timeout=timeout, interval=0.5, message=f"comparison {comparison.pk} to finish")
    for row in rows:  # every demo and comparison must leave a truthful picture behind
        if row.data is not None:
            assert_truthful(row.data)
    return {row.variant.label: row for row in rows}


def step(row: selectors.VariantRow, name: str) -> dict[str, Any]:
    assert row.data is not None
    return next(op for op in row.data["operations"] if op["name"] == name)


def operator_client(unique: str) -> Any:
    """A logged-in staff user's test client (staff may operate)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user(f"op-{unique}", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def table_counts(html: str) -> dict[int, dict[str, str]]:
    """The comparison table's cells by variant position and column (data-col), as shown."""
    rows = {}
    for position, body in re.findall(r'<tr data-variant="(\d+)">(.*?)</tr>', html, re.S):
        cells = {
            col: re.sub(r"<[^>]+>", " ", text).split()[0]
            for col, text in re.findall(r'data-col="(\w+)">(.*?)</td>', body, re.S)
        }
        status = re.search(r'class="status [^"]*">([^<]+)<', body)
        rows[int(position)] = {**cells, "status": status.group(1) if status else ""}
    return rows
