"""Import boundaries (house style): the engine core imports neither Django, Celery nor the dashboard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = [
    "engine",
    "engine.api",
    "engine.duties.unit",
    "engine.duties.tokens",
    "engine.duties.transition",
    "engine.duties.finish",
    "engine.duties.start",
    "engine.duties.claim",
    "engine.duties.checkpoint",
    "engine.duties.callbacks",
    "engine.duties.timers",
    "engine.duties.stop",
    "engine.duties.end",
    "engine.duties.recovery",
    "engine.duties.sweep",
    "engine.duties.loops",
    "engine.machine",
    "engine.store",
    "engine.timeline",
    "engine.invoker",
    "engine.journal",
    "engine.effects",
    "engine.faults",
    "engine.scheduler",
    "engine.registry",
]


def test_engine_core_imports_no_django_celery_or_dashboard():
    code = (
        f"import sys, importlib; [importlib.import_module(m) for m in {CORE!r}]; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'celery', 'executions', 'lab'}); "
        "print(','.join(bad))"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert result.stdout.strip() == "", f"engine core pulled in: {result.stdout.strip()}"


def test_nothing_in_engine_imports_the_dashboard():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "engine").rglob("*.py")
        if "import executions" in path.read_text() or "from executions" in path.read_text()
    ]
    assert offenders == []
