"""tapv2.api: virtio tap/tun interfaces (tap_create_v2/v3, tap_delete_v2, dump).

Modelled on plugins/tap/tap.c and tapv2_api.c, in VPP's order of checks:

- an explicit id already in use: INVALID_INTERFACE; no free id: UNSPECIFIED;
- ATTACH without a host interface name: NO_MATCHING_INTERFACE;
- with ``no_vhost_net`` (a node without /dev/vhost-net) the create fails
  where VPP's ``open("/dev/vhost-net")`` fails: SYSCALL_ERROR_1;
- a ring size that is not a power of two or above 32768: INIT_FAILED;
- every failure answers sw_if_index ~0.

A created tap is named tap<id> (tun<id> with the TUN flag, which also makes
it an L3 interface without MAC); its link is up from creation and follows
the admin state after. No Linux interface is created: the host side
(namespace, addresses, bridge, MTU) is only recorded and shown by the dump;
the host name defaults to the device name the kernel would most likely pick.
With ``host_devices`` (tests that configure a real pod side) the Linux
device is created too, in its namespace, with its MTU (``host_devices.py``).
Deleting anything but a tap: INVALID_SW_IF_INDEX.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from vppagent.vpp.retvals import Retval

from .. import host_devices
from ..interfaces import RX_MODE_POLLING, HwClass, Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState, IndexPool, VppState
from ._common import NO_INDEX, ZERO_MAC, mac_bytes

HANDLERS = HandlerTable("tap")

TAP_MAX_INSTANCE = 8192
FLAG_ATTACH = 8
FLAG_TUN = 16
DEFAULT_RING = 256
MAX_RING = 32768


@dataclass
class TapIf:
    id: int
    sw_if_index: int
    dev_instance: int
    dev_name: str
    tap_flags: int
    rx_ring_sz: int
    tx_ring_sz: int
    host_if_name: str
    host_namespace: str = ""
    host_bridge: str = ""
    host_mac_addr: bytes = ZERO_MAC
    host_mtu_size: int = 0
    host_ip4_prefix: ipaddress.IPv4Interface | None = None
    host_ip6_prefix: ipaddress.IPv6Interface | None = None


@dataclass
class TapState(FamilyState):
    taps: dict[int, TapIf] = field(default_factory=dict)  # by sw_if_index
    instances: IndexPool = field(default_factory=IndexPool)

    def ids(self) -> set[int]:
        return {t.id for t in self.taps.values()}

    def on_interface_deleted(self, state: VppState, iface: Interface) -> None:
        tap = self.taps.pop(iface.sw_if_index, None)
        if tap is not None:
            self.instances.put(tap.dev_instance)
            if state.config.host_devices:
                host_devices.delete(tap.host_if_name, netns=tap.host_namespace)


def _pow2(n: int) -> bool:
    return n & (n - 1) == 0


def _create(emu, mp: Any, num_rx_queues: int) -> dict:
    st = emu.state(TapState)
    used = st.ids()
    tap_id = mp.id
    if tap_id != NO_INDEX:
        if tap_id in used:
            return {"retval": int(Retval.INVALID_INTERFACE), "sw_if_index": NO_INDEX}
    else:
        tap_id = next(i for i in range(TAP_MAX_INSTANCE + 2) if i not in used)
    if tap_id > TAP_MAX_INSTANCE:
        return {"retval": int(Retval.UNSPECIFIED), "sw_if_index": NO_INDEX}
    flags = int(mp.tap_flags)
    if flags & FLAG_ATTACH and not mp.host_if_name_set:
        return {"retval": int(Retval.NO_MATCHING_INTERFACE), "sw_if_index": NO_INDEX}
    if emu.config.no_vhost_net:
        # open("/dev/vhost-net") fails on such a node.
        return {"retval": int(Retval.SYSCALL_ERROR_1), "sw_if_index": NO_INDEX}
    rx_ring = mp.rx_ring_sz or DEFAULT_RING
    tx_ring = mp.tx_ring_sz or DEFAULT_RING
    for ring in (mp.rx_ring_sz, mp.tx_ring_sz):
        if not _pow2(ring) or ring > MAX_RING:
            return {"retval": int(Retval.INIT_FAILED), "sw_if_index": NO_INDEX}

    is_tun = bool(flags & FLAG_TUN)
    dev_name = f"tun{tap_id}" if is_tun else f"tap{tap_id}"
    if emu.config.host_devices:
        failed = host_devices.create(mp.host_if_name if mp.host_if_name_set else dev_name, tun=is_tun,
                                     netns=mp.host_namespace if mp.host_namespace_set else "",
                                     mtu=mp.host_mtu_size if mp.host_mtu_set else 0)
        if failed:
            return {"retval": int(Retval.SYSCALL_ERROR_1), "sw_if_index": NO_INDEX}
    instance = st.instances.get()
    common = {"dev_instance": instance, "owner": "tap", "link_up": True,
              "rx_modes": [RX_MODE_POLLING] * max(num_rx_queues, 1)}
    if is_tun:
        iface = emu.interfaces.add(dev_name, "tap", hw_class=HwClass.IP, **common)
    else:
        mac = emu.vpp.random_mac() if mp.use_random_mac else mac_bytes(mp.mac_address)
        iface = emu.interfaces.add(dev_name, "tap", mac=mac, **common)
    host_mac = mac_bytes(mp.host_mac_addr) if mp.host_mac_addr_set else ZERO_MAC
    if not is_tun and host_mac == ZERO_MAC:
        host_mac = emu.vpp.random_mac()
    st.taps[iface.sw_if_index] = TapIf(
        id=tap_id, sw_if_index=iface.sw_if_index, dev_instance=instance, dev_name=dev_name,
        tap_flags=flags, rx_ring_sz=rx_ring, tx_ring_sz=tx_ring,
        host_if_name=mp.host_if_name if mp.host_if_name_set else dev_name,
        host_namespace=mp.host_namespace if mp.host_namespace_set else "",
        host_bridge=mp.host_bridge if mp.host_bridge_set else "",
        host_mac_addr=host_mac,
        host_mtu_size=mp.host_mtu_size if mp.host_mtu_set else 0,
        host_ip4_prefix=mp.host_ip4_prefix if mp.host_ip4_prefix_set else None,
        host_ip6_prefix=mp.host_ip6_prefix if mp.host_ip6_prefix_set else None,
    )
    if mp.tag:
        iface.tag = mp.tag[:63]
    return {"sw_if_index": iface.sw_if_index}


@HANDLERS.handler("tap_create_v3")
def tap_create_v3(emu, mp):
    return _create(emu, mp, mp.num_rx_queues)


@HANDLERS.handler("tap_create_v2")
def tap_create_v2(emu, mp):
    return _create(emu, mp, mp.num_rx_queues)


@HANDLERS.handler("tap_delete_v2")
def tap_delete_v2(emu, mp):
    iface = emu.interfaces.get(mp.sw_if_index)
    if iface is None or iface.owner != "tap":
        raise VppRetval(Retval.INVALID_SW_IF_INDEX, "not a tap")
    emu.interfaces.remove(iface.sw_if_index)
    return {}


def _details(tap: TapIf) -> dict:
    return {
        "sw_if_index": tap.sw_if_index,
        "id": tap.id,
        "tx_ring_sz": tap.tx_ring_sz,
        "rx_ring_sz": tap.rx_ring_sz,
        "host_mtu_size": tap.host_mtu_size,
        "host_mac_addr": tap.host_mac_addr,
        "host_ip4_prefix": tap.host_ip4_prefix or ipaddress.IPv4Interface("0.0.0.0/0"),
        "host_ip6_prefix": tap.host_ip6_prefix or ipaddress.IPv6Interface("::/0"),
        "tap_flags": tap.tap_flags,
        "dev_name": tap.dev_name,
        "host_if_name": tap.host_if_name,
        "host_namespace": tap.host_namespace,
        "host_bridge": tap.host_bridge,
    }


@HANDLERS.handler("sw_interface_tap_v2_dump")
def sw_interface_tap_v2_dump(emu, mp):
    if mp.sw_if_index != NO_INDEX and mp.sw_if_index not in emu.interfaces:
        return []
    taps = sorted(emu.state(TapState).taps.values(), key=lambda t: t.dev_instance)
    return [_details(t) for t in taps
            if mp.sw_if_index == NO_INDEX or t.sw_if_index == mp.sw_if_index]
