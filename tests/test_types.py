"""The type gate: ``mypy`` over the engine, with the project's configuration (pyproject.toml
``[tool.mypy]``: strict for ``engine``), so that ``make test`` fails on a type error as it does
on a failing test. mypy runs in a subprocess, as a developer would run it, and its own cache is
kept out of the worktree: a cold run takes ~10 s, a warm one ~1 s."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / f"durable-lab-mypy-{os.getuid()}"


def run_mypy(*targets: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mypy", "--cache-dir", str(CACHE), "--no-color-output", *targets]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_engine_is_clean_under_mypy_strict() -> None:
    result = run_mypy()  # the files and flags are pyproject.toml's
    assert result.returncode == 0, f"mypy found type errors:\n{result.stdout}{result.stderr}"
    checked = int(result.stdout.rsplit(" in ", 1)[1].split()[0])  # "Success: no issues found in 54 source files"
    assert checked >= 50, f"mypy checked only {checked} files: is pyproject.toml's `files` still the engine?"


def test_the_gate_fails_on_a_type_error(tmp_path: Path) -> None:
    """A gate that cannot fail proves nothing: the same configuration refuses a planted error,
    and a function without annotations (which only ``strict`` refuses)."""
    planted = tmp_path / "planted.py"
    planted.write_text('def answer() -> int:\n    return "forty-two"\n\n\ndef untyped(x):\n    return x\n')
    result = run_mypy("--config-file", str(ROOT / "pyproject.toml"), str(planted))
    assert result.returncode == 1, result.stdout
    assert 'planted.py:2: error: Incompatible return value type (got "str", expected "int")' in result.stdout
    assert "planted.py:5: error: Function is missing a type annotation" in result.stdout
