"""Which VPP thread polls an interface: placing pod interfaces on chosen threads, and saying where
they are, so that a test of per-flow state across workers cannot pass by landing both ends on one.

Through VPP's CLI (``set interface rx-placement``, ``show interface rx-placement``): the agent
itself never places queues, so the vpp layer has no binding for it.
"""
from __future__ import annotations

import re

from vppagent.vpp import interfaces
from vppagent.vpp.client import VppClient

MAIN = 0  # thread index of VPP's main thread; workers are 1..N


def _name(vpp: VppClient, sw_if_index: int) -> str:
    iface = interfaces.get(vpp, sw_if_index)
    if iface is None:
        raise AssertionError(f"no interface {sw_if_index}")
    return iface.name


def place(vpp: VppClient, sw_if_index: int, thread: int) -> None:
    """Poll ``sw_if_index``'s queue 0 on ``thread`` (0: main, N: worker N-1)."""
    name = _name(vpp, sw_if_index)
    where = "main" if thread == MAIN else f"worker {thread - 1}"
    r = vpp.call("cli_inband", cmd=f"set interface rx-placement {name} queue 0 {where}")
    if r.reply.strip():
        raise RuntimeError(f"placing {name} on {where}: {r.reply.strip()}")


def polled_on(vpp: VppClient) -> dict[str, int]:
    """Interface name -> the thread index polling its queue 0."""
    out: dict[str, int] = {}
    thread = None
    for line in vpp.call("cli_inband", cmd="show interface rx-placement").reply.splitlines():
        m = re.match(r"Thread (\d+)", line.strip())
        if m:
            thread = int(m.group(1))
            continue
        m = re.match(r"\s*(\S+) queue 0 ", line)
        if m and thread is not None:
            out[m.group(1)] = thread
    return out


def thread_of(vpp: VppClient, sw_if_index: int) -> int:
    name = _name(vpp, sw_if_index)
    placed = polled_on(vpp)
    if name not in placed:
        raise AssertionError(f"{name} is polled by no thread: {placed}")
    return placed[name]


__all__ = ["MAIN", "place", "polled_on", "thread_of"]
