"""The Node.js runtime: where its Node 22 binary and bootstrap are (issue 18).

``make install`` puts a project-local Node 22 (the npm registry's ``node`` package) and AWS's JS
durable SDK under ``.data/node/node_modules``, from this folder's committed ``package-lock.json``. The
out-of-process invoker starts ``[node_binary(), bootstrap()]`` with the function's code directory
as cwd; ``bootstrap.mjs`` speaks the runtime process protocol on stdin and file descriptor 3.

To change a version: edit package.json, run ``npm install --package-lock-only`` in this folder
(no node_modules here: the tests scan the engine's Python files), commit both files.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Where `make install` runs `npm ci` (bootstrap.mjs finds the SDK there too): the checkout's own
# .data, whatever DURABLE_DATA_DIR says, as the venv is the checkout's own.
NODE_HOME = HERE.parents[2] / ".data" / "node"
INSTALLED_NODE = NODE_HOME / "node_modules" / "node" / "bin" / "node"


class NodeRuntimeMissing(RuntimeError):
    """No Node binary where the project installs it (or where ``DURABLE_NODE`` points)."""


def node_binary() -> Path:
    """The Node 22 binary: ``DURABLE_NODE`` if set, else the one ``make install`` put here."""
    override = os.environ.get("DURABLE_NODE")
    binary = Path(override) if override else INSTALLED_NODE
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        source = "DURABLE_NODE" if override else "make install (engine/runtimes/node/package-lock.json)"
        raise NodeRuntimeMissing(f"no Node.js binary at {binary}: run {source}")
    return binary


def bootstrap() -> Path:
    """The bootstrap script the runtime process runs (``node bootstrap.mjs``)."""
    return HERE / "bootstrap.mjs"


def command() -> list[str]:
    """The runtime process's argv."""
    return [str(node_binary()), str(bootstrap())]
