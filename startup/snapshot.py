"""The persisted record of the node before takeover, and what takeover created.

Owns the snapshot file (``<state_dir>/snapshot.json``): written atomically
(temp file, fsync, rename, fsync of the directory) *before* the first change,
read back by ``restore`` and by the next ``run`` after a crash. It carries the
identity of the netns it was taken in and of the uplink, so a snapshot is
never applied to another namespace or interface.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vppagent.atomic import fsync_dir, write_json

from .errors import SnapshotError
from .hostpath import HostPathNames
from .linkstate import InterfaceState
from .netns import NetnsId

VERSION = 1


@dataclass
class Snapshot:
    netns: NetnsId
    uplink: InterfaceState
    names: HostPathNames
    driver: str
    taken_at: float = field(default_factory=time.time)
    # The VPP this run started, so a restore after a crash can stop it first.
    vpp_pid: int = 0
    vpp_workdir: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION, "netns": self.netns.to_json(), "uplink": self.uplink.to_json(),
            "names": {"host_if": self.names.host_if, "vpp_if": self.names.vpp_if,
                      "quarantine": self.names.quarantine},
            "driver": self.driver, "taken_at": self.taken_at,
            "vpp_pid": self.vpp_pid, "vpp_workdir": self.vpp_workdir,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> "Snapshot":
        if d.get("version") != VERSION:
            raise SnapshotError(f"snapshot version {d.get('version')!r} is not {VERSION}")
        return Snapshot(NetnsId.from_json(d["netns"]), InterfaceState.from_json(d["uplink"]),
                        HostPathNames(**d["names"]), d["driver"], d["taken_at"],
                        d.get("vpp_pid", 0), d.get("vpp_workdir", ""))


def path(state_dir: Path) -> Path:
    return Path(state_dir) / "snapshot.json"


def write_atomic(target: Path, data: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_json(target, data, indent=1)


def save(state_dir: Path, snap: Snapshot) -> None:
    write_atomic(path(state_dir), snap.to_json())


def load(state_dir: Path) -> Snapshot | None:
    p = path(state_dir)
    try:
        text = p.read_text()
    except FileNotFoundError:
        return None
    try:
        return Snapshot.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as e:
        raise SnapshotError(f"snapshot {p} is unreadable ({e}); it was left in place") from None


def remove(state_dir: Path) -> None:
    p = path(state_dir)
    if p.exists():
        p.unlink()
        fsync_dir(p.parent)
