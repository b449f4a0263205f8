"""Crash-safe files: a reader sees the old content or the new, never a mix.

Owns: writing whole files atomically (temporary file in the same directory,
fsync, rename, fsync of the directory) and reading JSON back with a typed
error for a damaged file. Knows nothing about what the files mean.
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


def write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
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
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, obj: Any, mode: int = 0o600) -> None:
    write_bytes(path, json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n", mode)


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
