"""af_packet: VPP interfaces on top of a Linux interface (veth end, uplink).

Owns create/delete/dump of host-<ifname> interfaces. The fallback pod
interface where VPP cannot create taps (no /dev/vhost-net) is a veth pair
with one end in the pod and the other attached here.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from .client import VppClient

MESSAGES = ("af_packet_create_v3", "af_packet_delete", "af_packet_dump")


class Mode(IntEnum):
    ETHERNET = 1
    IP = 2


class Flags(IntFlag):
    NONE = 0
    QDISC_BYPASS = 1
    CKSUM_GSO = 2
    VERSION_2 = 8


@dataclass(frozen=True)
class AfPacket:
    sw_if_index: int
    host_if_name: str


def create(
    vpp: VppClient,
    host_if_name: str,
    *,
    mac: str | None = None,
    mode: Mode = Mode.ETHERNET,
    flags: Flags = Flags.QDISC_BYPASS,
    rx_queues: int = 1,
    tx_queues: int = 1,
    rx_frame_size: int = 0,
    tx_frame_size: int = 0,
    rx_frames_per_block: int = 0,
    tx_frames_per_block: int = 0,
) -> int:
    """Attach ``host_if_name`` (in VPP's netns) to VPP; returns the sw_if_index.

    Ring geometry 0 means VPP's default. VPP 26.06's default TX ring is 1024
    frames of 66 KB (a GSO packet each), about 66 MB of locked kernel memory
    per interface: callers attaching many interfaces should size it down.
    """
    fields = {
        "mode": int(mode),
        "host_if_name": host_if_name,
        "use_random_hw_addr": mac is None,
        "hw_addr": mac or "00:00:00:00:00:00",
        "flags": int(flags),
        "num_rx_queues": rx_queues,
        "num_tx_queues": tx_queues,
        "rx_frame_size": rx_frame_size,
        "tx_frame_size": tx_frame_size,
        "rx_frames_per_block": rx_frames_per_block,
        "tx_frames_per_block": tx_frames_per_block,
    }
    return vpp.call("af_packet_create_v3", **fields).sw_if_index


def delete(vpp: VppClient, host_if_name: str) -> None:
    vpp.call("af_packet_delete", host_if_name=host_if_name)


def dump(vpp: VppClient) -> list[AfPacket]:
    return [AfPacket(d.sw_if_index, d.host_if_name) for d in vpp.dump("af_packet_dump")]
