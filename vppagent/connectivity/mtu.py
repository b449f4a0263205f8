"""Per mode encapsulation overhead, and the largest pod MTU that never fragments.

Owns the overhead arithmetic (no VPP, no I/O). Figures are for one packet
of inner length L (the pod MTU) on an underlay of MTU U:

| mode | outer bytes (IPv4 underlay) | largest L |
|---|---|---|
| flat (no tunnel) | 0 | U |
| ipip | 20 (IP) | U - 20 |
| vxlan (VPP L3 mode) | 20 + 8 (UDP) + 8 (VXLAN) = 36 | U - 36 |
| ipsec (ESP tunnel mode, AES-GCM-256) | 20 + 8 (SPI, seq) + 8 (IV) + 16 (ICV) + 2 (pad length, next header) + 0..3 padding to 4 bytes | 4*floor((U - 52)/4) - 2 |
| wireguard | 20 + 8 (UDP) + 16 (header) + 16 (Poly1305 tag), inner padded to 16 bytes | 16*floor((U - 60)/16) |

An IPv6 underlay adds 20 bytes to every tunnelled mode. The tunnels are
VPP's L3 VXLAN: no inner Ethernet header (the interface class builds no L2
rewrite); a classic L2 VXLAN would cost 14 bytes more. Because a node's encryption can change at
run time while pod interfaces keep their MTU, a pod MTU must fit every
mode the node may use: ``pod_mtu`` takes the minimum.
"""
from __future__ import annotations

from collections.abc import Iterable

OUTER_IP = {False: 20, True: 40}
MODES = ("flat", "ipip", "vxlan", "ipsec", "wireguard")


def overhead(mode: str, *, underlay_v6: bool = False) -> int:
    """Worst-case bytes added to a packet by ``mode`` (padding included)."""
    ip = OUTER_IP[underlay_v6]
    return {
        "flat": 0,
        "ipip": ip,
        "vxlan": ip + 8 + 8,
        "ipsec": ip + 8 + 8 + 16 + 2 + 3,
        "wireguard": ip + 8 + 16 + 16 + 15,
    }[_check(mode)]


def max_inner(mode: str, uplink_mtu: int, *, underlay_v6: bool = False) -> int:
    """The largest inner packet ``mode`` carries in one ``uplink_mtu`` packet."""
    ip = OUTER_IP[underlay_v6]
    u = uplink_mtu
    if mode == "ipsec":
        return 4 * ((u - ip - 32) // 4) - 2
    if mode == "wireguard":
        return 16 * ((u - ip - 40) // 16)
    return u - overhead(mode, underlay_v6=underlay_v6)


def pod_mtu(uplink_mtu: int, modes: Iterable[str], *, underlay_v6: bool = False) -> int:
    """The pod MTU that never fragments in any of ``modes``."""
    return min(max_inner(m, uplink_mtu, underlay_v6=underlay_v6) for m in modes)


def _check(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown connectivity mode {mode!r} (known: {', '.join(MODES)})")
    return mode
