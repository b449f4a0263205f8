"""The attachments the agent made, on disk, one JSON file each.

Owns: ``<state_dir>/attachments/``. A file is written atomically after an
ADD succeeds and removed after a DEL, so after a restart the agent knows which
pods it wired and how. A damaged file is renamed ``*.corrupt`` (kept for a
human) and skipped, never silently deleted. Must not touch: the network, VPP.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from urllib.parse import quote

from vppagent.atomic import CorruptFile, fsync_dir, private_dir, read_json, write_json
from vppagent.model.podnet import Attachment, InvalidAttachment

log = logging.getLogger(__name__)

_MAX_NAME = 240  # file names are limited to 255 bytes; keep room for suffixes


class StoreError(RuntimeError):
    def __init__(self, message: str, container_id: str = "", ifname: str = ""):
        super().__init__(message)
        self.container_id = container_id
        self.ifname = ifname


class AttachmentStore:
    def __init__(self, state_dir: Path):
        self.dir = Path(state_dir) / "attachments"
        private_dir(Path(state_dir))
        private_dir(self.dir)
        # Writes are atomic on their own; the lock only keeps quarantine
        # renames from racing a concurrent put of the same key.
        self._lock = threading.Lock()

    def _path(self, container_id: str, ifname: str) -> Path:
        if not container_id or not ifname:
            raise StoreError("container_id and ifname must not be empty", container_id, ifname)
        # Percent-encoding with "+" encoded keeps the name injective and free of "/".
        name = f"{quote(container_id, safe='')}+{quote(ifname, safe='')}.json"
        if len(name) > _MAX_NAME:
            raise StoreError(f"container id too long for a file name ({len(container_id)} chars)",
                             container_id, ifname)
        return self.dir / name

    def can_hold(self, container_id: str, ifname: str) -> bool:
        """Whether an attachment of this key can be recorded (its file name fits)."""
        try:
            self._path(container_id, ifname)
        except StoreError:
            return False
        return True

    def put(self, a: Attachment) -> None:
        path = self._path(a.container_id, a.ifname)
        with self._lock:
            write_json(path, a.to_json())

    def get(self, container_id: str, ifname: str) -> Attachment | None:
        path = self._path(container_id, ifname)
        with self._lock:
            return self._load(path)

    def delete(self, container_id: str, ifname: str) -> None:
        path = self._path(container_id, ifname)
        with self._lock:
            try:
                path.unlink()
            except FileNotFoundError:
                return
            fsync_dir(self.dir)

    def all(self) -> list[Attachment]:
        with self._lock:
            found = [self._load(p) for p in sorted(self.dir.glob("*.json"))]
        return [a for a in found if a is not None]

    def _load(self, path: Path) -> Attachment | None:
        try:
            data = read_json(path)
            return None if data is None else Attachment.from_json(data)
        except (CorruptFile, InvalidAttachment) as e:
            self._quarantine(path, str(e))
            return None

    def _quarantine(self, path: Path, reason: str) -> None:
        target = path.with_name(path.name + ".corrupt")
        try:
            os.replace(path, target)
            fsync_dir(self.dir)
        except FileNotFoundError:
            return
        log.error("corrupt attachment record set aside",
                  extra={"path": str(path), "moved_to": str(target), "reason": reason})
