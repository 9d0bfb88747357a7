"""Durable files, once: atomic replacement, directory sync, owner-only creation.

A file written here is either absent or complete after a crash: the bytes go to a
temporary file beside the target, which is fsynced and renamed over it, and then
the directory is fsynced so the rename itself survives.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "PRIVATE_MODE",
    "file_sha256",
    "fsync_directory",
    "write_atomically",
    "write_files_atomically",
]

PRIVATE_MODE = 0o600


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temporary(target: Path, data: bytes, mode: int) -> Path:
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temporary = Path(name)
    try:
        # mkstemp creates 0600; set the mode explicitly so the umask cannot widen or narrow it.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def write_files_atomically(
    directory: Path, files: Sequence[tuple[Path, bytes]], *, mode: int = PRIVATE_MODE
) -> None:
    """Like :func:`write_atomically` for many files in ``directory``, one directory sync."""
    for target, data in files:
        temporary = _write_temporary(target, data, mode)
        try:
            temporary.replace(target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    fsync_directory(directory)


def write_atomically(target: Path, data: bytes, *, mode: int = PRIVATE_MODE) -> None:
    """Write ``data`` so that ``target`` is either absent or complete, never half-written."""
    write_files_atomically(target.parent, [(target, data)], mode=mode)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
