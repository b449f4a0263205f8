"""Crash-safe files: a reader sees the old content or the new, never a mix.

Owns: writing whole files atomically (temporary file in the same directory,
fsync, rename, fsync of the directory; the temporary file removed on any
failure) and reading JSON back with a typed error for a damaged file. Knows
nothing about what the files mean. The one writer of every state file:
IPAM and pod records (``cni/``), keys and key epochs (``ipsec/``), the
uplink snapshot (``startup/``); so it imports nothing but the standard library.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


class CorruptFile(ValueError):
    """A state file exists but cannot be parsed."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"corrupt state file {path}: {reason}")
        self.path = path
        self.reason = reason


def private_dir(directory: Path) -> Path:
    """``directory``, created if missing, readable by its owner only (0700) even if it existed
    (kubelet creates hostPath directories 0755), as the state and key directories must be."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, mode: int = 0o600, *, exclusive: bool = False) -> bool:
    """Replace ``path`` with ``data``; with ``exclusive``, only create it (a file someone else wrote
    first is kept: keys are never overwritten). Whether this call's data is the file's now."""
    path = Path(path)
    # The leading dot and .tmp suffix keep half-written files out of "*.json" globs.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            # os.open's mode is filtered by the umask; the file must end up exactly `mode`.
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            try:
                os.link(tmp, path)  # fails if the target exists, where rename would replace it
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return True


def write_json(path: Path, obj: Any, mode: int = 0o600, *, indent: int | None = None) -> None:
    separators = None if indent is not None else (",", ":")
    write_bytes(path, json.dumps(obj, sort_keys=True, indent=indent, separators=separators).encode() + b"\n", mode)


def read_json(path: Path) -> Any | None:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptFile(path, str(e)) from e
