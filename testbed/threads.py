"""Which VPP thread polls an interface: placing pod interfaces on chosen threads, and saying where
they are, so that a test of per-flow state across workers cannot pass by landing both ends on one.

Thread indices as VPP numbers them: 0 the main thread, N worker N-1 (``vppagent.vpp.interfaces``
places and reads queue 0 through the API, as the agent does for pod interfaces).
"""
from __future__ import annotations

from vppagent.vpp import interfaces
from vppagent.vpp.client import VppClient

MAIN = 0  # thread index of VPP's main thread; workers are 1..N


def place(vpp: VppClient, sw_if_index: int, thread: int) -> None:
    """Poll ``sw_if_index``'s queue 0 on ``thread`` (0: main, N: worker N-1)."""
    interfaces.place_rx(vpp, sw_if_index, None if thread == MAIN else thread - 1)


def thread_of(vpp: VppClient, sw_if_index: int) -> int:
    queues = {q.queue: q.thread for q in interfaces.rx_queues(vpp, sw_if_index)}
    if 0 not in queues:
        raise AssertionError(f"interface {sw_if_index}'s queue 0 is polled by no thread: {queues}")
    return queues[0]


__all__ = ["MAIN", "place", "thread_of"]
