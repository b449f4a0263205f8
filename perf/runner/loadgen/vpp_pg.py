"""Traffic from VPP's packet generator into one memif pod, counted as it leaves the other.

memif pods talk to user-space peers, not to the kernel, so iperf3 cannot
drive them: the peer VPP (``envs/pod_vpp.py``) generates UDP packets of a
fixed IP size (``packet-generator`` into ip4-input, routed out of the client
pod's memif) as fast as it can, the node's VPP forwards them, and the peer
counts what arrives on the server pod's memif (its interface counters,
cleared before the run).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from perf.runner.measure import runtime

PG_INTERFACE = "pg0"


class PgError(RuntimeError):
    pass


@dataclass(frozen=True)
class PgResult:
    ip_bytes: int          # per packet (memif in IP mode carries no Ethernet header)
    seconds: float
    sent: int              # pg-input vectors in the peer VPP
    received: int          # packets the peer received on the server pod's memif

    @property
    def mpps(self) -> float:
        return self.received / self.seconds / 1e6

    @property
    def gbit_s(self) -> float:
        """UDP payload bits per second, as iperf3 counts them (IPv4 and UDP headers excluded)."""
        return self.received * (self.ip_bytes - 28) * 8 / self.seconds / 1e9


def _cli(vpp: Any, cmd: str) -> str:
    reply = vpp.call("cli_inband", cmd=cmd).reply
    if any(w in reply.lower() for w in ("unknown input", "error", "failed")):
        raise PgError(f"`{cmd}`: {reply.strip()[:300]}")
    return reply


def prepare(client: Any) -> None:
    """A packet-generator interface in the peer VPP (its packets enter ip4-input there)."""
    for cmd in (f"create packet-generator interface {PG_INTERFACE}", f"set interface state {PG_INTERFACE} up",
                f"set interface ip address {PG_INTERFACE} 198.18.0.1/24"):
        _cli(client, cmd)


def _vectors(rt: runtime.Runtime, node: str) -> int:
    return sum(n.vectors for n in rt.nodes if n.name == node)


def _rx_packets(vpp: Any, interface: str) -> int:
    m = re.search(r"rx packets\s+(\d+)", _cli(vpp, f"show interface {interface}"))
    return int(m.group(1)) if m else 0


def run(peer: Any, src: str, dst: str, ip_bytes: int, seconds: float, rx_interface: str,
        name: str = "perf") -> PgResult:
    if ip_bytes < 28:
        raise PgError(f"a {ip_bytes}-byte IP packet has no room for IPv4 and UDP headers")
    _cli(peer, f"packet-generator new {{ name {name} limit 0 size {ip_bytes}-{ip_bytes} node ip4-input "
               f"interface {PG_INTERFACE} data {{ UDP: {src} -> {dst} UDP: 1234 -> 5201 incrementing 8 }} }}")
    try:
        runtime.clear(peer)
        _cli(peer, "clear interfaces")
        t0 = time.monotonic()
        _cli(peer, f"packet-generator enable-stream {name}")
        time.sleep(seconds)
        _cli(peer, f"packet-generator disable-stream {name}")
        elapsed = time.monotonic() - t0
        time.sleep(0.2)  # what is in flight arrives
        sent = _vectors(runtime.read(peer), "pg-input")
        received = _rx_packets(peer, rx_interface)
    finally:
        peer.call("cli_inband", cmd=f"packet-generator delete {name}")
    return PgResult(ip_bytes, elapsed, sent, received)
