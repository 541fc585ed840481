"""Where a function's handler may come from: its own code, never any importable callable.

A handler ``package.module.attribute`` is accepted only if ``package.module`` is a Python file
under one of the allowed locations: the directories of ``DURABLE_HANDLER_PATHS`` (the Django
adapter passes them to :func:`configure`) and the project's own handler folders, which the
project layer adds with :func:`allow`. The file's real path counts (symlinks resolved), and
nothing in the standard library or in site-packages is ever accepted: otherwise anyone who may
create a function could name ``os.system`` and have a worker call ``os.system(event, context)``.

The module is located with importlib's finders, as ``import`` would find it, without running
any module's code: checking a name never imports it.
"""

from __future__ import annotations

import importlib.machinery
import site
import sys
import sysconfig
import threading
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

_lock = threading.Lock()
_configured: tuple[Path, ...] = ()
_project: tuple[Path, ...] = ()
# Modules already checked and imported, by name: (module object, its file, the locations then).
# A worker loads the same handler for every invocation; this keeps that a dictionary lookup.
_verified: dict[str, tuple[ModuleType, Path, tuple[Path, ...]]] = {}


class HandlerOutsideCode(Exception):
    """The handler's module is not a file under an allowed location (the message says why)."""


def configure(paths: Iterable[str | Path]) -> None:
    """The operator's handler directories (``DURABLE_HANDLER_PATHS``); replaces earlier ones."""
    global _configured
    with _lock:
        _configured = tuple(_real(path) for path in paths)


def allow(*locations: str | Path) -> None:
    """Add the project's own handler folders or module files (demos, conformance, bench)."""
    global _project
    with _lock:
        _project = tuple(dict.fromkeys((*_project, *(_real(location) for location in locations))))


def allowed_locations() -> tuple[Path, ...]:
    return (*_configured, *_project)


def describe_allowed() -> str:
    locations = allowed_locations()
    if not locations:
        return "no handler directory is configured (set DURABLE_HANDLER_PATHS)"
    return "handler directories: " + ", ".join(str(location) for location in locations)


def check(handler: str) -> Path | None:
    """The real path of the handler's module file, if it is inside an allowed location.

    Returns None if no finder knows the module (it may not exist yet: the worker reports that
    when it imports it). Raises :class:`HandlerOutsideCode` if the module is found anywhere else.
    """
    module_name = handler.rpartition(".")[0]
    verified = _verified_file(module_name, sys.modules.get(module_name))
    if verified is not None:
        return verified
    try:
        specs = _find_chain(module_name)
    except HandlerOutsideCode as exc:
        raise HandlerOutsideCode(_refusal(handler, str(exc))) from None
    if specs is None:
        return None
    for name, spec in specs:
        origin = _file_of(spec)
        if origin is not None and _is_python_installation(origin):
            raise HandlerOutsideCode(
                _refusal(handler, f"'{name}' is part of Python or an installed package ({origin})")
            )
    origin = _file_of(specs[-1][1])
    if origin is None:
        raise HandlerOutsideCode(_refusal(handler, f"'{module_name}' is not a Python file"))
    if not _inside_allowed(origin):
        raise HandlerOutsideCode(_refusal(handler, f"'{module_name}' is {origin}"))
    return origin


def check_imported(handler: str, module: ModuleType) -> None:
    """After the import: the module object really is the checked file (not one another import
    put in ``sys.modules`` under that name first).

    A module object already verified under the same locations is not looked at again: resolving
    its file's real path costs ~60 µs of system calls, in every invocation of a worker."""
    module_name = handler.rpartition(".")[0]
    if _verified_file(module_name, module) is not None:
        return
    origin = getattr(module, "__file__", None)
    real = _real(origin) if origin is not None else None
    if real is None or not _inside_allowed(real) or _is_python_installation(real):
        raise HandlerOutsideCode(_refusal(handler, f"the imported module '{module.__name__}' is {origin}"))
    _verified[module_name] = (module, real, allowed_locations())


def _verified_file(module_name: str, module: ModuleType | None) -> Path | None:
    """The file of ``module`` if it is the object verified under that name, with the same
    allowed locations as then; None if it must be checked."""
    verified = _verified.get(module_name)
    if verified is None or module is None or verified[0] is not module or verified[2] != allowed_locations():
        return None
    return verified[1]


def _refusal(handler: str, why: str) -> str:
    return (
        f"Handler {handler!r} is outside the function's code: {why}. A handler's module must be "
        f"a file under one of the allowed {describe_allowed()}."
    )


def _find_chain(module_name: str) -> list[tuple[str, importlib.machinery.ModuleSpec]] | None:
    """The spec of every package on the way to ``module_name`` and of the module itself, found
    with ``sys.meta_path``'s finders and the parents' search locations (nothing is imported)."""
    chain: list[tuple[str, importlib.machinery.ModuleSpec]] = []
    search: list[str] | None = None
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        spec = _find(name, search)
        if spec is None:
            return None
        chain.append((name, spec))
        if depth < len(parts):
            if spec.submodule_search_locations is None:
                return None  # a plain module has no submodules: the import fails too
            search = list(spec.submodule_search_locations)
    return chain


def _find(name: str, search: list[str] | None) -> importlib.machinery.ModuleSpec | None:
    loaded = sys.modules.get(name)
    if loaded is not None:  # ``import`` takes this one: its spec is what counts
        spec = getattr(loaded, "__spec__", None)
        if spec is None:  # __main__ of a script, a module made by hand: no file to check
            raise HandlerOutsideCode(f"'{name}' is a loaded module without a location")
        return spec  # type: ignore[no-any-return]
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(name, search, None)
        except KeyError:
            # PathFinder, on finding a namespace package (a folder without __init__.py) below
            # another one, looks its parent up in sys.modules; nothing is imported here, so the
            # namespace's portions are listed by hand, as the import system would find them.
            spec = _namespace_spec(name, search)
        if spec is not None:
            return spec
    return None


def _namespace_spec(name: str, search: list[str] | None) -> importlib.machinery.ModuleSpec | None:
    last = name.rpartition(".")[2]
    portions = [str(Path(folder, last)) for folder in search or () if Path(folder, last).is_dir()]
    if not portions:
        return None
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = portions
    return spec


def _file_of(spec: importlib.machinery.ModuleSpec) -> Path | None:
    """The real path of the file a spec loads from; None for built-in, frozen and namespace modules."""
    if not spec.has_location or spec.origin is None:
        return None
    return _real(spec.origin)


def _real(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _inside_allowed(origin: Path) -> bool:
    return any(origin == location or origin.is_relative_to(location) for location in allowed_locations())


def _python_installation() -> tuple[Path, ...]:
    """The standard library's and every site-packages folder, real paths."""
    paths = sysconfig.get_paths()
    folders = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    folders += [*site.getsitepackages(), site.getusersitepackages()]
    return tuple(dict.fromkeys(_real(folder) for folder in folders))


_INSTALLATION = _python_installation()


def _is_python_installation(origin: Path) -> bool:
    return any(origin.is_relative_to(folder) for folder in _INSTALLATION)
