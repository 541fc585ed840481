"""Import boundaries: a declared map of layers, and no import that runs upward through it.

Every module of the project is parsed (not imported), so an import inside a function, or a
module named in a string to ``importlib.import_module``, counts as much as a top-level one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first: a module may import its own layer and the layers before it, never one after it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("engine core", ("engine",)),
    ("engine adapters", ("engine.contrib", "engine.celery_tasks")),
    ("project apps", ("durable_site", "executions", "accesskeys", "lab", "demos", "wire")),
    ("bench", ("bench",)),
    ("tests", ("tests", "unit_tests")),
]
LAYER_ORDER = " < ".join(name for name, _ in LAYERS)

# The engine core runs in processes without Django or Celery (the CLI, a notebook, a handler).
CORE_FORBIDDEN_PACKAGES = {"django", "celery", "kombu", "billiard"}

# Upward imports another change removes; each entry must still be there (else delete it here).
KNOWN_UPWARD: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    path: str
    line: int
    importer: str
    imported: str

    def describe(self, why: str) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported} ({why})"


def layer_of(module: str) -> int | None:
    """The index in LAYERS of the most specific prefix naming ``module``; None for outside code."""
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imported_names(node: ast.AST, importer: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = _absolute(node, importer, is_package)
        # ``from engine import faults`` names the module engine.faults; ``from x import name`` names x.
        return [f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base for alias in node.names]
    if isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return [first.value]
    return []


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in {"import_module", "__import__"}


def imports_in(source: str, path: str, importer: str, is_package: bool = False) -> Iterator[Import]:
    """Every import in ``source``: statements at any depth and ``import_module("literal")`` calls."""
    for node in ast.walk(ast.parse(source, filename=path)):
        for imported in _imported_names(node, importer, is_package):
            yield Import(path, getattr(node, "lineno", 0), importer, imported)


def project_imports() -> Iterator[Import]:
    for _, prefixes in LAYERS:
        for prefix in prefixes:
            base = ROOT / prefix.replace(".", "/")
            paths = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
            for path in paths:
                if path.exists() and layer_of(module_name(path)) is not None:
                    rel = str(path.relative_to(ROOT))
                    yield from imports_in(path.read_text(), rel, module_name(path), path.name == "__init__.py")


def upward(imports: Iterator[Import]) -> list[Import]:
    found = []
    for imp in imports:
        low, high = layer_of(imp.importer), layer_of(imp.imported)
        if low is not None and high is not None and high > low:
            found.append(imp)
    return sorted(set(found), key=lambda i: (i.path, i.line, i.imported))


def _upward_message(imp: Import) -> str:
    low, high = LAYERS[layer_of(imp.importer) or 0][0], LAYERS[layer_of(imp.imported) or 0][0]
    return imp.describe(f"{low} may not import {high}; layers: {LAYER_ORDER}")


def test_no_import_runs_upward_through_the_layers() -> None:
    offenders = [imp for imp in upward(project_imports()) if (imp.importer, imp.imported) not in KNOWN_UPWARD]
    assert not offenders, "upward imports:\n" + "\n".join(_upward_message(imp) for imp in offenders)


def test_every_known_upward_import_still_exists() -> None:
    present = {(imp.importer, imp.imported) for imp in upward(project_imports())}
    stale = sorted(KNOWN_UPWARD - present)
    assert not stale, f"no longer imported, delete from KNOWN_UPWARD: {stale}"


def test_engine_core_names_no_django_or_celery() -> None:
    offenders = [
        imp.describe("the engine core runs without Django and Celery")
        for imp in project_imports()
        if layer_of(imp.importer) == 0 and imp.imported.split(".")[0] in CORE_FORBIDDEN_PACKAGES
    ]
    assert not offenders, "\n".join(offenders)


def test_engine_core_loads_without_django_or_celery() -> None:
    """What the parse cannot see (a dependency pulling Django in) shows up in a fresh interpreter."""
    core = sorted(module_name(path) for path in (ROOT / "engine").rglob("*.py") if layer_of(module_name(path)) == 0)
    code = (
        f"import sys, importlib; [importlib.import_module(m) for m in {core!r}]; "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {CORE_FORBIDDEN_PACKAGES | {'executions', 'lab', 'demos', 'durable_site', 'bench', 'tests'}!r}); "
        "print(','.join(bad))"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert result.stdout.strip() == "", f"engine core pulled in: {result.stdout.strip()}"


# --- the checker itself: each way of importing is seen, and the message names the layers ------


PLANTED = """
import json
import demos
from engine import store
from ..lab import charts

def late():
    from bench import suite
    import importlib
    return importlib.import_module("tests.conformance")
"""


def test_the_checker_sees_every_kind_of_upward_import() -> None:
    found = upward(imports_in(PLANTED, "engine/api.py", "engine.api"))
    assert [(i.line, i.imported) for i in found] == [
        (3, "demos"),
        (5, "lab.charts"),
        (8, "bench.suite"),
        (10, "tests.conformance"),
    ]
    assert _upward_message(found[0]) == (
        "engine/api.py:3: engine.api imports demos (engine core may not import project apps; layers: "
        "engine core < engine adapters < project apps < bench < tests)"
    )


def test_a_downward_or_sideways_import_is_allowed() -> None:
    source = "import engine\nfrom engine.contrib.django.models import Execution\nfrom executions import charts\n"
    assert upward(imports_in(source, "lab/charts.py", "lab.charts")) == []
    assert upward(imports_in("from engine.contrib.django import setup\n", "engine/x.py", "engine.x")) != []
