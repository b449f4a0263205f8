"""The health report the agent reads: ``<state_dir>/status.json``.

Owns its fields and atomic writes. States: ``starting``, ``running``,
``restarting``, ``failed``, ``stopping``, ``stopped``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .snapshot import write_atomic


@dataclass
class Status:
    state: str = "starting"
    uplink: str = ""
    driver: str = ""
    vpp_pid: int = 0
    api_socket: str = ""
    restarts: int = 0
    takeover_seconds: float | None = None
    last_error: str = ""
    updated: float = field(default_factory=time.time)


def path(state_dir: Path) -> Path:
    return Path(state_dir) / "status.json"


def write(state_dir: Path, st: Status) -> None:
    st.updated = time.time()
    write_atomic(path(state_dir), asdict(st))


def read(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path(state_dir).read_text())
    except FileNotFoundError:
        return None
