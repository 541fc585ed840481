"""The dashboard's one read layer: the engine's tables as unmanaged models that refuse every write."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.urls import reverse

from engine.contrib.django.models import EngineRow, Execution, Function, Operation, ReadOnlyError
from tests.dashboard.seed import seed_execution

ROOT = Path(__file__).resolve().parents[2]
WRITES: dict[str, Callable[[Execution], Any]] = {
    "create": lambda e: Execution.objects.create(arn=e.arn + "-copy", function_name=e.function_name, name="copy"),
    "bulk_create": lambda e: Operation.objects.bulk_create([Operation(execution=e, op_id="x", type="STEP")]),
    "get_or_create": lambda e: Function.objects.get_or_create(name="nope", defaults={"handler": "a.b"}),
    "update_or_create": lambda e: Execution.objects.update_or_create(pk=e.pk, defaults={"status": "FAILED"}),
    "update": lambda e: Execution.objects.filter(pk=e.pk).update(status="FAILED"),
    "bulk_update": lambda e: Execution.objects.bulk_update([e], ["status"]),
    "queryset delete": lambda e: Execution.objects.filter(pk=e.pk).delete(),
    "related delete": lambda e: e.operations.all().delete(),
    "save": lambda e: e.save(),
    "instance delete": lambda e: e.delete(),
}


@pytest.mark.parametrize("write", WRITES)
def test_every_write_through_the_models_is_refused_and_changes_nothing(write: str, unique: str) -> None:
    execution = seed_execution(function=f"ro-{unique}", operations=3)
    execution.status = "FAILED"
    with pytest.raises(ReadOnlyError, match=r"read-only here; change them through engine\.client\(\)"):
        WRITES[write](execution)
    stored = Execution.objects.get(pk=execution.pk)
    assert stored.status == "SUCCEEDED"
    assert Operation.objects.filter(execution_id=execution.pk).count() == 3
    assert not Execution.objects.filter(arn=execution.arn + "-copy").exists()
    assert not Function.objects.filter(name="nope").exists()


def test_every_engine_model_is_unmanaged_and_read_only() -> None:
    models = list(apps.get_app_config("durable_engine").get_models())
    assert len(models) == 12
    for model in models:
        assert issubclass(model, EngineRow) and model._meta.managed is False, model.__name__
        assert type(model._default_manager.get_queryset()).__name__ == "ReadOnlyQuerySet", model.__name__


def test_the_models_match_the_migrations() -> None:
    """Model options (managed, ordering) and migrations stay in step.

    ``makemigrations`` does not compare the fields of unmanaged models: a change to an engine
    table is a hand-written migration (``RunSQL`` with ``state_operations``).
    """
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


PAGES = [
    ("executions:list", False),
    ("executions:detail", True),
    ("executions:timeline_data", True),
    ("executions:history", True),
    ("executions:callbacks", False),
    ("executions:functions", False),
]


def test_pages_read_the_engine_tables_through_djangos_connection_only(
    op_client: Any, count_queries: Any, unique: str
) -> None:
    """One connection per request: the engine's read models run on Django's, the engine's pool stays idle."""
    execution = seed_execution(function=f"one-{unique}", operations=5)
    for name, per_execution in PAGES:
        url = reverse(name, args=[execution.pk] if per_execution else [])
        op_client.get(url)
        with count_queries() as counted:
            assert op_client.get(url).status_code == 200
        assert counted.engine == 0 and counted.django > 0, (name, counted.sql)
    op_id = Operation.objects.filter(execution=execution, name="step-3").values_list("op_id", flat=True).get()
    with count_queries() as counted:
        assert op_client.get(reverse("executions:operation", args=[execution.pk, op_id])).status_code == 200
    assert counted.engine == 0, counted.sql
