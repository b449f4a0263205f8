"""Named crash points: the agent kills itself (SIGKILL) at an exact step, for the crash-safety tier.

A kill -9 from outside lands wherever the process happens to be; the states
that matter (VPP has created an interface that is not tagged yet; the IP is
allocated and the veth exists but nothing is recorded) last microseconds.
So each step of the agent that changes something outside its memory names a
point, before and after the change:

- ``vpp:<message>:before`` / ``vpp:<message>:after``: every request the VPP
  client sends (before it is written to the socket, after its reply is read;
  for a pipelined batch, before it is sent and after all replies are in);
- ``cni:<step>:before`` / ``cni:<step>:after``: the disk writes and the
  Linux changes of a CNI ADD or DEL (``ipam-allocate``, ``veth``,
  ``pod-side``, ``record``, ``ipam-release``, ...).

``VPPAGENT_CRASH_AT`` names one point, ``<point>`` or ``<point>#<n>`` for
its n-th time (the first by default); ``VPPAGENT_CRASH_TRACE`` is a file
every point reached is appended to as ``<point>#<n>``, so a test lists the
points of a scenario with one run and then kills the agent at each in turn.
They are environment variables of ``vppagent run``, not configuration keys:
no ConfigMap carries them, and on a node ``reached`` returns at its first test.

The counts live in this object, made once per process (``cli.py``) and
handed to what has points (the VPP client, the pods feature).
"""
from __future__ import annotations

import os
import re
import signal
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

_SPEC = re.compile(r"(?P<point>[a-z]+:[A-Za-z0-9_.-]+:(?:before|after))(?:#(?P<n>[1-9][0-9]*))?")


def parse_spec(text: str) -> str:
    """A ``VPPAGENT_CRASH_AT`` value, checked; "" for none."""
    text = text.strip()
    if text and not _SPEC.fullmatch(text):
        raise ValueError(f"{text!r} is not <kind>:<name>:before|after[#n]")
    return text


@dataclass
class CrashPoints:
    at: str = ""
    trace: str | None = None
    _seen: Counter[str] = field(default_factory=Counter, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        m = _SPEC.fullmatch(self.at) if self.at else None
        self._point = m.group("point") if m else ""
        self._nth = int(m.group("n") or 1) if m else 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "CrashPoints":
        """From ``VPPAGENT_CRASH_AT`` and ``VPPAGENT_CRASH_TRACE``; ValueError names a bad point."""
        try:
            at = parse_spec(env.get("VPPAGENT_CRASH_AT", ""))
        except ValueError as e:
            raise ValueError(f"VPPAGENT_CRASH_AT: {e}") from None
        return cls(at, env.get("VPPAGENT_CRASH_TRACE") or None)

    @property
    def armed(self) -> bool:
        return bool(self._point or self.trace)

    def reached(self, point: str) -> None:
        if not self.armed:
            return
        with self._lock:
            self._seen[point] += 1
            n = self._seen[point]
            if self.trace:
                with open(self.trace, "a") as f:
                    f.write(f"{point}#{n}\n")
        if point == self._point and n == self._nth:
            os.kill(os.getpid(), signal.SIGKILL)


NONE = CrashPoints()

__all__ = ["NONE", "CrashPoints", "parse_spec"]
