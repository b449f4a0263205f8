"""tap v3: virtio-backed Linux tap/tun interfaces created by VPP.

Owns create/delete/dump of VPP taps. Pod interfaces use tun mode (no L2,
so no ARP between pod and VPP) with the Linux side created directly in the
pod's network namespace. Needs /dev/vhost-net on the node; where it is
missing VPP fails the create, and the agent falls back to veth + af_packet.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from enum import IntFlag

from vppagent.iptypes import U32_NONE

from .client import VppClient

MESSAGES = ("tap_create_v3", "tap_delete_v2", "sw_interface_tap_v2_dump")

AUTO_ID = U32_NONE


class TapFlags(IntFlag):
    NONE = 0
    GSO = 1
    CSUM_OFFLOAD = 2
    PERSIST = 4
    ATTACH = 8
    TUN = 16
    GRO_COALESCE = 32
    PACKED = 64
    IN_ORDER = 128


@dataclass(frozen=True)
class TapSpec:
    host_if_name: str
    host_namespace: str | None = None  # a netns name or a path like /proc/<pid>/ns/net
    tun: bool = True
    id: int = AUTO_ID
    host_mtu: int | None = None
    host_ip4: ipaddress.IPv4Interface | None = None
    host_ip6: ipaddress.IPv6Interface | None = None
    rx_queues: int = 1
    tx_queues: int = 1
    ring_size: int = 256
    flags: TapFlags = TapFlags.NONE
    tag: str = ""


@dataclass(frozen=True)
class Tap:
    sw_if_index: int
    id: int
    dev_name: str
    host_if_name: str
    host_namespace: str
    host_mtu: int
    flags: TapFlags


def vhost_net_available() -> bool:
    """Whether VPP on this node can create taps at all."""
    return os.path.exists("/dev/vhost-net")


def create(vpp: VppClient, spec: TapSpec) -> int:
    flags = spec.flags | (TapFlags.TUN if spec.tun else TapFlags.NONE)
    fields: dict = {
        "id": spec.id,
        "use_random_mac": True,
        "num_rx_queues": spec.rx_queues,
        "num_tx_queues": spec.tx_queues,
        "rx_ring_sz": spec.ring_size,
        "tx_ring_sz": spec.ring_size,
        "tap_flags": int(flags),
        "host_if_name_set": True,
        "host_if_name": spec.host_if_name,
        "tag": spec.tag,
    }
    if spec.host_namespace:
        fields.update(host_namespace_set=True, host_namespace=spec.host_namespace)
    if spec.host_mtu:
        fields.update(host_mtu_set=True, host_mtu_size=spec.host_mtu)
    if spec.host_ip4:
        fields.update(host_ip4_prefix_set=True, host_ip4_prefix=spec.host_ip4)
    if spec.host_ip6:
        fields.update(host_ip6_prefix_set=True, host_ip6_prefix=spec.host_ip6)
    return vpp.call("tap_create_v3", **fields).sw_if_index


def delete(vpp: VppClient, sw_if_index: int) -> None:
    vpp.call("tap_delete_v2", sw_if_index=sw_if_index)


def dump(vpp: VppClient) -> list[Tap]:
    return [
        Tap(d.sw_if_index, d.id, d.dev_name, d.host_if_name, d.host_namespace, d.host_mtu_size,
            TapFlags(int(d.tap_flags)))
        for d in vpp.dump("sw_interface_tap_v2_dump", sw_if_index=U32_NONE)
    ]
