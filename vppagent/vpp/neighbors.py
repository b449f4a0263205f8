"""Neighbours (ARP/ND entries) and proxy ARP/ND.

Owns the typed calls on VPP's neighbour table and its proxy answering, which
is how a pod's gateway address is made reachable on a point-to-point
interface without VPP owning that address.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vppagent.iptypes import IpAddress, U32_NONE

from .client import VppClient

MESSAGES = (
    "ip_neighbor_add_del",
    "ip_neighbor_dump",
    "proxy_arp_add_del",
    "proxy_arp_dump",
    "proxy_arp_intfc_enable_disable",
    "proxy_arp_intfc_dump",
    "ip6nd_proxy_enable_disable",
    "ip6nd_proxy_add_del",
)

ALL = U32_NONE
_STATIC = 1
_NO_FIB_ENTRY = 2


@dataclass(frozen=True)
class Neighbor:
    sw_if_index: int
    ip: IpAddress
    mac: str
    static: bool = True
    no_fib_entry: bool = False


def _fields(n: Neighbor) -> dict:
    flags = (_STATIC if n.static else 0) | (_NO_FIB_ENTRY if n.no_fib_entry else 0)
    return {"sw_if_index": n.sw_if_index, "flags": flags, "mac_address": n.mac, "ip_address": n.ip}


def add(vpp: VppClient, n: Neighbor) -> None:
    vpp.call("ip_neighbor_add_del", is_add=True, neighbor=_fields(n))


def delete(vpp: VppClient, n: Neighbor) -> None:
    vpp.call("ip_neighbor_add_del", is_add=False, neighbor=_fields(n))


def dump(vpp: VppClient, sw_if_index: int = ALL, *, ipv6: bool = False) -> list[Neighbor]:
    out = []
    for d in vpp.dump("ip_neighbor_dump", sw_if_index=sw_if_index, af=1 if ipv6 else 0):
        n = d.neighbor
        out.append(Neighbor(n.sw_if_index, ipaddress.ip_address(n.ip_address), str(n.mac_address),
                            bool(n.flags & _STATIC), bool(n.flags & _NO_FIB_ENTRY)))
    return out


@dataclass(frozen=True)
class ProxyArpRange:
    low: ipaddress.IPv4Address
    high: ipaddress.IPv4Address
    table_id: int = 0


def add_proxy_arp(vpp: VppClient, r: ProxyArpRange) -> None:
    vpp.call("proxy_arp_add_del", is_add=True, proxy={"table_id": r.table_id, "low": r.low, "hi": r.high})


def del_proxy_arp(vpp: VppClient, r: ProxyArpRange) -> None:
    vpp.call("proxy_arp_add_del", is_add=False, proxy={"table_id": r.table_id, "low": r.low, "hi": r.high})


def proxy_arp_ranges(vpp: VppClient) -> list[ProxyArpRange]:
    return [ProxyArpRange(d.proxy.low, d.proxy.hi, d.proxy.table_id) for d in vpp.dump("proxy_arp_dump")]


def enable_proxy_arp(vpp: VppClient, sw_if_index: int, enable: bool = True) -> None:
    vpp.call("proxy_arp_intfc_enable_disable", sw_if_index=sw_if_index, enable=enable)


def proxy_arp_interfaces(vpp: VppClient) -> list[int]:
    return [d.sw_if_index for d in vpp.dump("proxy_arp_intfc_dump")]


def enable_proxy_nd(vpp: VppClient, sw_if_index: int, enable: bool = True) -> None:
    vpp.call("ip6nd_proxy_enable_disable", sw_if_index=sw_if_index, is_enable=enable)


# VPP 26.06 answers ip6nd_proxy_dump with details under a message id that no
# client can decode, so proxy ND entries are read back through the /128 route
# VPP installs for each (see routes.lookup), not through a dump.
def add_proxy_nd(vpp: VppClient, sw_if_index: int, ip: IpAddress | str) -> None:
    vpp.call("ip6nd_proxy_add_del", sw_if_index=sw_if_index, is_add=True, ip=ipaddress.IPv6Address(ip))


def del_proxy_nd(vpp: VppClient, sw_if_index: int, ip: IpAddress | str) -> None:
    vpp.call("ip6nd_proxy_add_del", sw_if_index=sw_if_index, is_add=False, ip=ipaddress.IPv6Address(ip))

