"""Interfaces: loopbacks, admin state, MTU, tables, unnumbered, addresses, tags, rx mode and placement.

Owns the typed calls on VPP's generic interface table. Interface *creation*
of a specific kind lives with its driver (``af_packet``, ``tap``, ``memif``,
``tunnels``...); this module works on any ``sw_if_index``.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum

from vppagent.iptypes import IpInterface, U32_NONE

from .client import VppClient

ALL = U32_NONE  # "~0": every interface, in dump filters

MESSAGES = (
    "create_loopback",
    "create_loopback_instance",
    "delete_loopback",
    "sw_interface_set_flags",
    "sw_interface_set_mtu",
    "sw_interface_set_table",
    "sw_interface_get_table",
    "sw_interface_set_unnumbered",
    "sw_interface_add_del_address",
    "sw_interface_tag_add_del",
    "sw_interface_set_rx_mode",
    "sw_interface_set_rx_placement",
    "sw_interface_rx_placement_dump",
    "show_threads",
    "sw_interface_set_mac_address",
    "sw_interface_ip6_enable_disable",
    "sw_interface_dump",
    "ip_address_dump",
    "ip_unnumbered_dump",
)

_ADMIN_UP = 1
_LINK_UP = 2


class RxMode(IntEnum):
    POLLING = 1
    INTERRUPT = 2
    ADAPTIVE = 3


@dataclass(frozen=True)
class Interface:
    sw_if_index: int
    name: str
    dev_type: str
    tag: str
    admin_up: bool
    link_up: bool
    mtu: int  # L3 MTU
    link_mtu: int
    mac: str


def create_loopback(vpp: VppClient, *, instance: int | None = None, mac: str | None = None) -> int:
    fields: dict = {"mac_address": mac or "00:00:00:00:00:00"}
    if instance is None:
        return vpp.call("create_loopback", **fields).sw_if_index
    return vpp.call("create_loopback_instance", is_specified=True, user_instance=instance, **fields).sw_if_index


def delete_loopback(vpp: VppClient, sw_if_index: int) -> None:
    vpp.call("delete_loopback", sw_if_index=sw_if_index)


def set_admin_up(vpp: VppClient, sw_if_index: int, up: bool = True) -> None:
    vpp.call("sw_interface_set_flags", sw_if_index=sw_if_index, flags=_ADMIN_UP if up else 0)


def set_mtu(vpp: VppClient, sw_if_index: int, mtu: int) -> None:
    """Set the L3 MTU (and so the ip4/ip6 MTU) of an interface."""
    vpp.call("sw_interface_set_mtu", sw_if_index=sw_if_index, mtu=[mtu, 0, 0, 0])


def set_table(vpp: VppClient, sw_if_index: int, table_id: int, *, ipv6: bool = False) -> None:
    vpp.call("sw_interface_set_table", sw_if_index=sw_if_index, is_ipv6=ipv6, vrf_id=table_id)


def get_table(vpp: VppClient, sw_if_index: int, *, ipv6: bool = False) -> int:
    return vpp.call("sw_interface_get_table", sw_if_index=sw_if_index, is_ipv6=ipv6).vrf_id


def set_unnumbered(vpp: VppClient, sw_if_index: int, *, borrow_from: int, enable: bool = True) -> None:
    """Make ``sw_if_index`` use the addresses of ``borrow_from`` (no address of its own)."""
    vpp.call(
        "sw_interface_set_unnumbered",
        sw_if_index=borrow_from,
        unnumbered_sw_if_index=sw_if_index,
        is_add=enable,
    )


def set_l3(vpp: VppClient, sw_if_index: int, *, table_id: int = 0, borrow_from: int | None = None) -> None:
    """Make an address-less interface route: its table (both families), unnumbered to
    ``borrow_from`` if given, IPv6 enabled. The shape of every interface the agent
    points routes at (pods, tunnels, WireGuard)."""
    if table_id:
        for v6 in (False, True):
            set_table(vpp, sw_if_index, table_id, ipv6=v6)
    if borrow_from is not None:
        set_unnumbered(vpp, sw_if_index, borrow_from=borrow_from)
    enable_ip6(vpp, sw_if_index)


def add_address(vpp: VppClient, sw_if_index: int, address: str | IpInterface) -> None:
    vpp.call("sw_interface_add_del_address", sw_if_index=sw_if_index, is_add=True,
             prefix=ipaddress.ip_interface(address))


def del_address(vpp: VppClient, sw_if_index: int, address: str | IpInterface) -> None:
    vpp.call("sw_interface_add_del_address", sw_if_index=sw_if_index, is_add=False,
             prefix=ipaddress.ip_interface(address))


def set_tag(vpp: VppClient, sw_if_index: int, tag: str) -> None:
    if len(tag.encode()) >= 64:
        raise ValueError(f"interface tag longer than 63 bytes: {tag!r}")
    vpp.call("sw_interface_tag_add_del", is_add=True, sw_if_index=sw_if_index, tag=tag)


def clear_tag(vpp: VppClient, sw_if_index: int) -> None:
    vpp.call("sw_interface_tag_add_del", is_add=False, sw_if_index=sw_if_index)


def set_rx_mode(vpp: VppClient, sw_if_index: int, mode: RxMode) -> None:
    vpp.call("sw_interface_set_rx_mode", sw_if_index=sw_if_index, queue_id_valid=False, mode=int(mode))


def worker_count(vpp: VppClient) -> int:
    """VPP's worker threads; 0 when the main thread polls every interface."""
    r = vpp.call("show_threads")
    return sum(1 for t in r.thread_data[:r.count] if t.type == "workers")


def place_rx(vpp: VppClient, sw_if_index: int, worker: int | None, queue: int = 0) -> None:
    """Poll ``queue`` of ``sw_if_index`` on worker ``worker`` (0-based), or the main thread (None)."""
    vpp.call("sw_interface_set_rx_placement", sw_if_index=sw_if_index, queue_id=queue,
             worker_id=0 if worker is None else worker, is_main=worker is None)


@dataclass(frozen=True)
class RxQueue:
    queue: int
    thread: int  # the thread index polling it: 0 main, N worker N-1
    mode: RxMode


def rx_queues(vpp: VppClient, sw_if_index: int) -> list[RxQueue]:
    return [RxQueue(d.queue_id, d.worker_id, RxMode(int(d.mode)))
            for d in vpp.dump("sw_interface_rx_placement_dump", sw_if_index=sw_if_index)]


def set_mac(vpp: VppClient, sw_if_index: int, mac: str) -> None:
    vpp.call("sw_interface_set_mac_address", sw_if_index=sw_if_index, mac_address=mac)


def enable_ip6(vpp: VppClient, sw_if_index: int, enable: bool = True) -> None:
    vpp.call("sw_interface_ip6_enable_disable", sw_if_index=sw_if_index, enable=enable)


def _interface(d) -> Interface:
    return Interface(
        sw_if_index=d.sw_if_index,
        name=d.interface_name,
        dev_type=d.interface_dev_type,
        tag=d.tag,
        admin_up=bool(d.flags & _ADMIN_UP),
        link_up=bool(d.flags & _LINK_UP),
        mtu=d.mtu[0],
        link_mtu=d.link_mtu,
        mac=str(d.l2_address),
    )


def dump(vpp: VppClient, sw_if_index: int = ALL, *, name_filter: str | None = None) -> list[Interface]:
    fields: dict = {"sw_if_index": sw_if_index}
    if name_filter is not None:
        fields.update(name_filter_valid=True, name_filter=name_filter)
    return [_interface(d) for d in vpp.dump("sw_interface_dump", **fields)]


def get(vpp: VppClient, sw_if_index: int) -> Interface | None:
    found = [i for i in dump(vpp, sw_if_index) if i.sw_if_index == sw_if_index]
    return found[0] if found else None


def by_tag(vpp: VppClient, prefix: str = "") -> dict[str, Interface]:
    """Tagged interfaces whose tag starts with ``prefix``, keyed by tag."""
    return {i.tag: i for i in dump(vpp) if i.tag and i.tag.startswith(prefix)}


def addresses(vpp: VppClient, sw_if_index: int) -> list[IpInterface]:
    out: list[IpInterface] = []
    for ipv6 in (False, True):
        out.extend(ipaddress.ip_interface(d.prefix) for d in
                   vpp.dump("ip_address_dump", sw_if_index=sw_if_index, is_ipv6=ipv6))
    return out


def unnumbered(vpp: VppClient) -> dict[int, int]:
    """Unnumbered interfaces: sw_if_index -> the interface whose addresses it borrows."""
    return {d.sw_if_index: d.ip_sw_if_index for d in vpp.dump("ip_unnumbered_dump", sw_if_index=ALL)}

