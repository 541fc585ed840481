"""Where the conformance requirements come from: AWS's pinned wheel inside the checkout.

``make conformance-wheel`` (part of ``make install-dev``, so of ``make test``) downloads the wheel
named in ``pinned-wheel.txt`` into ``.data/conformance/``; the requirements are read straight out of
it (a wheel is a zip), after checking its sha256 against the pin, so nothing outside the checkout
is needed. ``DURABLE_SHARED_DIR`` still points the suite at a folder holding
``conformance/requirements/<suite>/<id>.yaml`` instead, for trying requirements not yet released.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIN_FILE = Path(__file__).with_name("pinned-wheel.txt")
WHEEL_DIR = ROOT / ".data" / "conformance"
MAKE_TARGET = "make conformance-wheel"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+)\s+--hash=sha256:(?P<sha256>[0-9a-f]{64})\s*$", re.M)
MEMBER = re.compile(r"^[^/]+/test_requirements/(?P<suite>[^/]+)/(?P<id>\d+-\d+)\.yaml$")


class RequirementsUnavailable(Exception):
    """The requirements cannot be read; the message says which command makes them available."""


@dataclass(frozen=True)
class RequirementFile:
    """One requirement: its suite (the folder), its id (``1-1``) and its YAML text."""

    suite: str
    id: str
    text: str
    source: str

    def load(self) -> dict[str, Any]:
        return yaml.safe_load(self.text)

    def sort_key(self) -> tuple[int, int]:
        major, minor = self.id.split("-")
        return int(major), int(minor)


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    sha256: str

    @property
    def wheel_name(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-py3-none-any.whl"


def pin() -> Pin:
    found = PIN.search(PIN_FILE.read_text())
    if found is None:
        raise RequirementsUnavailable(f"{PIN_FILE} names no 'package==version --hash=sha256:…' line")
    return Pin(found["name"], found["version"], found["sha256"])


def wheel_path() -> Path:
    return WHEEL_DIR / pin().wheel_name


def requirement_files() -> list[RequirementFile]:
    """Every requirement, ordered by id; raises ``RequirementsUnavailable`` with the fix to run."""
    shared = os.environ.get("DURABLE_SHARED_DIR")
    files = _from_folder(Path(shared) / "conformance" / "requirements") if shared else _from_wheel(wheel_path())
    return sorted(files, key=RequirementFile.sort_key)


def _from_folder(folder: Path) -> list[RequirementFile]:
    files = [
        RequirementFile(path.parent.name, path.stem, path.read_text(), str(path))
        for path in folder.glob("*/*.yaml")
        if re.fullmatch(r"\d+-\d+", path.stem)
    ]
    if not files:
        # A missing spec must fail the run, not skip every requirement quietly.
        raise RequirementsUnavailable(f"no conformance requirements under {folder} (from DURABLE_SHARED_DIR)")
    return files


def _from_wheel(wheel: Path) -> list[RequirementFile]:
    expected = pin()
    if not wheel.is_file():
        raise RequirementsUnavailable(
            f"the conformance requirements wheel {wheel} is missing: run `{MAKE_TARGET}` "
            f"(part of `make install-dev` and `make test`), or set DURABLE_SHARED_DIR"
        )
    data = wheel.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected.sha256:
        raise RequirementsUnavailable(
            f"{wheel} has sha256 {digest}, not the {expected.sha256} pinned in {PIN_FILE.name}: "
            f"delete it and run `{MAKE_TARGET}`"
        )
    files = []
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            found = MEMBER.match(member)
            if found:
                text = archive.read(member).decode()
                files.append(RequirementFile(found["suite"], found["id"], text, f"{wheel.name}:{member}"))
    if not files:
        raise RequirementsUnavailable(f"{wheel} holds no test_requirements/<suite>/<id>.yaml")
    return files
