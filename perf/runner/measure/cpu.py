"""CPU time of processes (VPP, the agent) over a load run, from /proc/<pid>/stat."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


class ProcessGone(RuntimeError):
    pass


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError as e:
        raise ProcessGone(f"process {pid} is gone: {e.strerror}") from e
    # The command name is in parentheses and may hold spaces: fields count from after its ")".
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU seconds per named group of pids between ``start()`` and ``stop()``."""

    groups: dict[str, list[int]]
    _start: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        return {g: sum(cpu_seconds(p) for p in pids) for g, pids in self.groups.items()}

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        now = self._now()
        return {g: round(now[g] - self._start[g], 3) for g in self.groups}
