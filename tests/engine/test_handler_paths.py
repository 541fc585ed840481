"""Issue #17 point 3: a handler resolves only inside the function's own code (a file under a
handler directory, or the project's own handlers), never to any importable callable. Checked
when a function is created or updated; what is refused is not stored."""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import handler_paths, registry
from engine.errors import InvalidParameterValueException, ResourceNotFoundException

HANDLER = "from aws_durable_execution_sdk_python import durable_execution\n\n@durable_execution\ndef handler(event, context):\n    return {'ok': True}\n"


@pytest.fixture
def lam() -> Any:
    return engine.client()


@pytest.fixture
def name() -> str:
    return f"hp-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The handler directories are one temporary folder (on sys.path); the project's stay."""
    allowed = tmp_path / "handlers"
    allowed.mkdir()
    monkeypatch.syspath_prepend(str(allowed))
    monkeypatch.setattr(handler_paths, "_configured", (allowed.resolve(),))
    yield allowed


def _module(folder: Path, name: str, text: str = HANDLER) -> Path:
    path = folder / f"{name}.py"
    path.write_text(text)
    return path


def _refused(lam: Any, name: str, handler: str) -> str:
    with pytest.raises(InvalidParameterValueException) as refused:
        lam.create_function(FunctionName=name, Handler=handler)
    with pytest.raises(ResourceNotFoundException):
        lam.get_function(FunctionName=name)  # nothing stored
    return str(refused.value)


@pytest.mark.parametrize(
    ("handler", "why"),
    [
        ("os.system", "'os' is not a Python file"),  # frozen at start-up
        ("subprocess.run", "'subprocess' is part of Python or an installed package"),
        ("builtins.eval", "'builtins' is not a Python file"),
        ("email.mime.text.MIMEText", "'email' is part of Python or an installed package"),
        ("celery.bin.celery.main", "'celery' is part of Python or an installed package"),
        ("engine.db.close", "'engine.db' is"),  # the project's own code is not a handler
    ],
)
def test_a_callable_outside_the_functions_code_is_refused(
    lam: Any, only: Path, name: str, handler: str, why: str
) -> None:
    message = _refused(lam, name, handler)
    assert f"Handler '{handler}' is outside the function's code" in message
    assert why in message
    assert str(only.resolve()) in message  # the directories it may come from


def test_a_loaded_module_without_a_file_is_refused(
    lam: Any, only: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script's ``__main__`` or a module made at run time: nothing to check, so refused."""
    monkeypatch.setitem(sys.modules, "made_at_run_time", types.ModuleType("made_at_run_time"))
    message = _refused(lam, name, "made_at_run_time.run")
    assert "'made_at_run_time' is a loaded module without a location" in message


def test_a_module_outside_the_handler_directories_is_refused(lam: Any, only: Path, name: str, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _module(elsewhere, "stray_orders")
    sys.path.insert(0, str(elsewhere))  # importable, but not a handler directory
    try:
        message = _refused(lam, name, "stray_orders.handler")
    finally:
        sys.path.remove(str(elsewhere))
    assert f"'stray_orders' is {elsewhere.resolve() / 'stray_orders.py'}" in message


def test_a_symlink_out_of_the_handler_directory_is_refused(lam: Any, only: Path, name: str, tmp_path: Path) -> None:
    outside = _module(tmp_path, "outside_code")
    (only / "escape.py").symlink_to(outside)
    message = _refused(lam, name, "escape.handler")
    assert str(outside.resolve()) in message


def test_a_handler_directory_reached_through_a_symlink_is_its_real_folder(
    lam: Any, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    _module(real, "linked_orders")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    monkeypatch.syspath_prepend(str(link))
    handler_paths.configure([link])
    try:
        created = lam.create_function(FunctionName=name, Handler="linked_orders.handler")
        assert created["Handler"] == "linked_orders.handler"
        assert callable(registry.load_handler("linked_orders.handler"))
    finally:
        from django.conf import settings

        handler_paths.configure(settings.DURABLE_HANDLER_PATHS)


def test_a_handler_in_a_handler_directory_and_the_projects_demos_are_accepted(lam: Any, only: Path, name: str) -> None:
    _module(only, "orders_ok")
    assert lam.create_function(FunctionName=f"{name}-1", Handler="orders_ok.handler")["Handler"] == "orders_ok.handler"
    assert lam.create_function(FunctionName=f"{name}-2", Handler="demos.hello.handler")["Handler"]
    assert lam.create_function(FunctionName=f"{name}-3", Handler="bench.handlers.noop")["Handler"]
    # A module that does not exist yet is accepted, as Lambda accepts it: the worker reports it.
    assert lam.create_function(FunctionName=f"{name}-4", Handler="not_written_yet.handler")["Handler"]
    # Of the benchmarks, only their handlers' file: not the rest of the package.
    assert "outside the function's code" in _refused(lam, f"{name}-5", "bench.suite.run_in_process")


def test_an_update_to_a_callable_outside_the_code_is_refused_and_changes_nothing(
    lam: Any, only: Path, name: str
) -> None:
    _module(only, "orders_upd")
    before = lam.create_function(FunctionName=name, Handler="orders_upd.handler")
    with pytest.raises(InvalidParameterValueException, match="outside the function's code"):
        lam.update_function_configuration(FunctionName=name, Handler="os.system")
    after = lam.get_function(FunctionName=name)["Configuration"]
    assert (after["Handler"], after["RevisionId"]) == ("orders_upd.handler", before["RevisionId"])


def test_checking_a_name_imports_nothing(only: Path) -> None:
    _module(only, "loud_orders", "raise SystemExit('imported')\n")
    assert handler_paths.check("loud_orders.handler") == (only / "loud_orders.py").resolve()
    assert "loud_orders" not in sys.modules
    with pytest.raises(handler_paths.HandlerOutsideCode):
        handler_paths.check("antigravity.fly")  # a stdlib module with a side effect: found, refused, not run
    assert "antigravity" not in sys.modules


def test_a_handler_inside_nested_folders_without_init_files_is_found(only: Path) -> None:
    # Namespace packages two deep: the import system finds them; the check must too (it once
    # raised KeyError here, a 500 over the wire API), without importing them.
    (only / "shop" / "orders").mkdir(parents=True)
    (only / "shop" / "orders" / "pay.py").write_text("def handler(event, context):\n    return event\n")
    assert handler_paths.check("shop.orders.pay.handler") == (only / "shop" / "orders" / "pay.py").resolve()
    assert "shop" not in sys.modules and "shop.orders" not in sys.modules
    assert handler_paths.check("shop.orders.missing.handler") is None  # not written yet: the worker reports it


def test_a_verified_module_replaced_by_another_object_under_its_name_is_checked_again(
    only: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The worker skips the real-path look for the module object it verified before (every
    # invocation loads the same handler); a different object under that name gets the full check.
    _module(only, "orders_cached")
    handler = registry.load_handler("orders_cached.handler")
    assert registry.load_handler("orders_cached.handler") is handler
    impostor = types.ModuleType("orders_cached")
    impostor.__file__ = str(_module(tmp_path, "elsewhere"))
    impostor.handler = handler  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "orders_cached", impostor)
    with pytest.raises(handler_paths.HandlerOutsideCode, match="the imported module 'orders_cached'"):
        handler_paths.check_imported("orders_cached.handler", impostor)
