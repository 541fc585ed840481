"""A function's code as Lambda takes it: a zip archive, checked, stored by content, unpacked per version.

The zip lives in PostgreSQL (``durable_function_code``, keyed by its SHA-256): every worker host
reaches it through the database it already uses, it commits with the function's row, and a
backup of the database is a backup of the code. A worker unpacks each version once, into
``<data dir>/code/<sha256>``, and every runtime process of that version starts there.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from engine import db
from engine.duties.unit import utcnow
from engine.errors import InvalidParameterValueException
from engine.store import store

MAX_ZIPPED_BYTES = 50 * 1024 * 1024  # Lambda's limit for a direct upload
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda's limit for the unpacked code
MAX_ENTRIES = 20_000


class InvalidCode(InvalidParameterValueException):
    """The uploaded zip cannot be a function's code."""


def zip_bytes(code: Any) -> bytes | None:
    """The bytes of ``Code={"ZipFile": …}`` (bytes, or base64 text as the JSON API carries it).

    ``Code={}`` (boto3 requires the field) is no code: ``Handler`` is then an import path run in the worker.
    """
    if not isinstance(code, dict) or set(code) - {"ZipFile"}:
        raise InvalidCode("Code must be {'ZipFile': <zip bytes>}; S3 locations and images are not supported.")
    if "ZipFile" not in code:
        return None
    data = code["ZipFile"]
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except ValueError as exc:
            raise InvalidCode("Code.ZipFile is neither bytes nor base64 text.") from exc
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidCode("Code.ZipFile must be the zip archive's bytes.")
    return bytes(data)


FIXED_TIME = (2026, 1, 1, 0, 0, 0)
NOT_CODE = frozenset({"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache"})


def zip_directory(root: Path) -> bytes:
    """A local folder's files (its sub-folders too, less caches and version control) as
    ``Code.ZipFile``: for quick work on a function, without zipping by hand."""
    if not root.is_dir():
        raise InvalidCode(f"{root} is not a directory.")
    files = [path for path in sorted(root.rglob("*")) if path.is_file() and not NOT_CODE & set(path.parts)]
    return zip_files(root, files)


def zip_files(root: Path, files: list[Path]) -> bytes:
    """``files`` (under ``root``) as a zip whose bytes depend only on their names, modes and
    contents: the same sources give the same CodeSha256, and the workers keep their warm runtime
    processes when nothing changed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=FIXED_TIME)
            entry.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            archive.writestr(entry, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def check_zip(data: bytes) -> None:
    """Refuse what Lambda refuses, and anything that could write outside its own directory."""
    if len(data) > MAX_ZIPPED_BYTES:
        raise InvalidCode(f"Code.ZipFile is {len(data)} bytes; at most {MAX_ZIPPED_BYTES} are allowed zipped.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidCode(f"Could not unzip uploaded file: {exc}.") from exc
    if len(infos) > MAX_ENTRIES:
        raise InvalidCode(f"The zip holds {len(infos)} entries; at most {MAX_ENTRIES} are allowed.")
    if sum(info.file_size for info in infos) > MAX_UNZIPPED_BYTES:
        raise InvalidCode(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes.")
    for info in infos:
        _check_entry(info)


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]) or "\x00" in name:
        raise InvalidCode(f"The zip entry {name[:200]!r} points outside the function's directory.")
    if stat.S_ISLNK(info.external_attr >> 16):
        # A link could point anywhere on the worker's disk: code is plain files and directories.
        raise InvalidCode(f"The zip entry {name[:200]!r} is a symbolic link; links are not allowed.")


def checked_code(code: Any) -> tuple[str, bytes] | None:
    """The zip of ``Code``, checked; return (its SHA-256 in hex, its bytes), or None for no code."""
    data = zip_bytes(code)
    if data is None:
        return None
    check_zip(data)
    return hashlib.sha256(data).hexdigest(), data


def save_code(conn: Any, digest: str, data: bytes) -> None:
    """Store the zip in the caller's transaction (the function's own write)."""
    store.store_code(conn, digest, data, utcnow())


def code_sha256_base64(hex_digest: str) -> str:
    """Lambda's CodeSha256: the base64 of the digest's bytes."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def code_root() -> Path:
    data_dir = os.environ.get("DURABLE_DATA_DIR") or str(Path(__file__).resolve().parents[2] / ".data")
    return Path(data_dir) / "code"


def unpacked(sha256: str) -> Path:
    """The directory holding this code version, unpacked on first use (atomically: a rename)."""
    target = code_root() / sha256
    if target.is_dir():
        return target
    with db.connection() as conn:
        data = store.get_code(conn, sha256)
    if data is None:
        raise FileNotFoundError(f"code {sha256} is not stored")
    check_zip(data)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{sha256[:12]}-", dir=target.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(scratch)
        os.rename(scratch, target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not target.is_dir():  # not another process that unpacked it first
            raise
    return target
