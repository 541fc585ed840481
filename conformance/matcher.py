"""The conformance README's matching rules: recursive subset compare with placeholders."""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
REGEX = re.compile(r"^\$\{/(.*)/\}$", re.S)


class Mismatch(AssertionError):
    pass


def match(expected: Any, actual: Any, bindings: dict[str, Any], path: str = "$") -> None:
    """Raise ``Mismatch`` naming the first path where ``actual`` does not satisfy ``expected``."""
    if expected == "*" or expected == {}:
        return
    if isinstance(expected, str):
        _match_string(expected, actual, bindings, path)
    elif isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{path}: expected an object, got {actual!r}")
        for key, value in expected.items():
            if key not in actual:
                raise Mismatch(f"{path}.{key}: missing (actual keys: {sorted(actual)})")
            match(value, actual[key], bindings, f"{path}.{key}")
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            raise Mismatch(f"{path}: expected a list of {len(expected)}, got {actual!r}")
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            match(want, got, bindings, f"{path}[{index}]")
    elif expected != actual:
        raise Mismatch(f"{path}: expected {expected!r}, got {actual!r}")


def _match_string(expected: str, actual: Any, bindings: dict[str, Any], path: str) -> None:
    regex = REGEX.match(expected)
    if regex:
        if not re.search(substitute(regex.group(1), bindings), str(actual)):
            raise Mismatch(f"{path}: {actual!r} does not match /{regex.group(1)}/")
        return
    whole = PLACEHOLDER.fullmatch(expected)
    if whole and whole.group(1) not in bindings:
        bindings[whole.group(1)] = actual
        return
    wanted = substitute(expected, bindings)
    if wanted != actual:
        raise Mismatch(f"{path}: expected {wanted!r}, got {actual!r}")


def substitute(value: Any, bindings: dict[str, Any]) -> Any:
    """Replace bound ``${NAME}`` placeholders inside strings (recursively)."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in bindings and not isinstance(bindings[whole.group(1)], str):
            return bindings[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(bindings.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: substitute(v, bindings) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, bindings) for v in value]
    return value
