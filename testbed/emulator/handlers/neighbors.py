"""IP neighbours (ip_neighbor.api), proxy ARP (arp.api) and ND proxy (ip6_nd.api).

Modelled on vnet/ip-neighbor/ip_neighbor.c and ip_neighbor_api.c,
vnet/arp/arp_proxy.c and arp_api.c, vnet/ip6-nd/ip6_nd_proxy.c:

- a neighbour is keyed by (interface, address); adding without the STATIC
  flag makes a dynamic one; a static one refuses to become dynamic with a
  different MAC (VPP answers -2); a dynamic one may become static;
- unless NO_FIB_ENTRY is set, a neighbour puts a /32 (/128) "adjacency"
  entry (attached next hop via the interface) in the interface's table,
  which route dumps show, as VPP's do (IPv6 link-local ones go to the
  per-interface link-local table instead, which dumps do not show);
- admin down flushes the interface's dynamic neighbours, deleting an
  interface address flushes the dynamic ones it covered, deleting the
  interface flushes all of them; rebinding the table moves the entries;
- deleting an unknown neighbour: NO_SUCH_ENTRY;
- proxy ARP ranges live per table (missing table: NO_SUCH_FIB, deleting a
  missing range: NO_SUCH_ENTRY); interface enables are kept by index and,
  as in VPP, outlive the interface;
- ND proxy adds a /128 (source ip6-nd-proxy) via the interface.

Known VPP 26.06 bug not reproduced: its ip6nd_proxy_details carry a message
ID without the module base, which a client cannot decode; the emulator sends
proper details.
"""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Union

from vppagent.vpp.retvals import Retval

from ..fib import FibPath, Sources, nh_proto
from ..interfaces import IfAddress, Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState, VppState
from ._common import NO_INDEX, mac_bytes

HANDLERS = HandlerTable("neighbors")

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

FLAG_STATIC = 1
FLAG_NO_FIB_ENTRY = 2
_LL_NET = ipaddress.IPv6Network("fe80::/10")


@dataclass
class Neighbor:
    sw_if_index: int
    ip: IPAddress
    mac: bytes
    static: bool
    no_fib_entry: bool
    updated: float = field(default_factory=time.monotonic)
    # (af, table_id) of the adjacency entry it put in the FIB, if any.
    fib_table: tuple[int, int] | None = None
    stats_index: int = NO_INDEX

    @property
    def api_flags(self) -> int:
        return (FLAG_STATIC if self.static else 0) | (FLAG_NO_FIB_ENTRY if self.no_fib_entry else 0)


def _host(ip: IPAddress) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network((ip, ip.max_prefixlen))


@dataclass
class NeighborState(FamilyState):
    entries: dict[tuple[int, IPAddress], Neighbor] = field(default_factory=dict)
    # Tables holding adjacency entries, with how many (each such table is locked).
    adj_counts: dict[tuple[int, int], int] = field(default_factory=dict)

    # -- the neighbour table ----------------------------------------------

    def add(self, state: VppState, iface: Interface, ip: IPAddress, mac: bytes,
            static: bool, no_fib: bool) -> Neighbor:
        key = (iface.sw_if_index, ip)
        nbr = self.entries.get(key)
        if nbr is not None:
            if not static and nbr.static:
                if nbr.mac != mac:
                    # "Refuse to over-write static neighbor entry" (VPP's -2).
                    raise VppRetval(-2, "a static neighbour is not overwritten")
                return nbr
            if static:
                nbr.static = True
            nbr.mac = mac
            nbr.updated = time.monotonic()
            return nbr
        nbr = Neighbor(iface.sw_if_index, ip, mac, static, no_fib)
        self.entries[key] = nbr
        if not no_fib:
            self._fib_add(state, nbr, iface.table_ids[ip.version])
        return nbr

    def delete(self, state: VppState, nbr: Neighbor) -> None:
        self._fib_remove(state, nbr)
        del self.entries[(nbr.sw_if_index, nbr.ip)]

    def on(self, sw_if_index: int, af: int | None = None) -> list[Neighbor]:
        return [n for n in self.entries.values()
                if n.sw_if_index == sw_if_index and (af is None or n.ip.version == af)]

    def _path(self, nbr: Neighbor) -> FibPath:
        return FibPath(proto=nh_proto(nbr.ip.version), sw_if_index=nbr.sw_if_index, nh=nbr.ip)

    def _fib_add(self, state: VppState, nbr: Neighbor, table_id: int) -> None:
        af = nbr.ip.version
        if af == 6 and nbr.ip in _LL_NET:
            return  # goes to the interface's link-local table, not dumped
        table = state.fib.find(af, table_id)
        if table is None:
            return
        entry = state.fib.path_add(table, _host(nbr.ip), Sources.ADJ, [self._path(nbr)])
        nbr.fib_table = (af, table_id)
        nbr.stats_index = entry.stats_index
        count = self.adj_counts.get((af, table_id), 0) + 1
        self.adj_counts[(af, table_id)] = count
        if count == 1:
            state.fib.lock(af, table_id, "adj")

    def _fib_remove(self, state: VppState, nbr: Neighbor) -> None:
        if nbr.fib_table is None:
            return
        af, table_id = nbr.fib_table
        table = state.fib.find(af, table_id)
        if table is not None:
            state.fib.path_remove(table, _host(nbr.ip), Sources.ADJ, [self._path(nbr)])
        nbr.fib_table = None
        count = self.adj_counts.get((af, table_id), 0) - 1
        if count <= 0:
            self.adj_counts.pop((af, table_id), None)
            state.fib.unlock(af, table_id, "adj")
        else:
            self.adj_counts[(af, table_id)] = count

    # -- hooks -------------------------------------------------------------

    def on_admin_change(self, state: VppState, iface: Interface, up: bool) -> None:
        if not up:
            for nbr in self.on(iface.sw_if_index):
                if not nbr.static:
                    self.delete(state, nbr)

    def on_address_deleted(self, state: VppState, iface: Interface, addr: IfAddress) -> None:
        for nbr in self.on(iface.sw_if_index, addr.version):
            if not nbr.static and nbr.ip in addr.network:
                self.delete(state, nbr)

    def on_interface_deleted(self, state: VppState, iface: Interface) -> None:
        for nbr in self.on(iface.sw_if_index):
            self.delete(state, nbr)

    def on_table_bound(self, state: VppState, iface: Interface, af: int,
                       old: int, new: int) -> None:
        for nbr in self.on(iface.sw_if_index, af):
            if nbr.fib_table is not None:
                self._fib_remove(state, nbr)
                self._fib_add(state, nbr, new)


@HANDLERS.handler("ip_neighbor_add_del")
def ip_neighbor_add_del(emu, mp):
    n = mp.neighbor
    iface = emu.interfaces.require(n.sw_if_index)
    if n.ip_address is None:
        raise VppRetval(Retval.INVALID_ADDRESS_FAMILY, "unknown address family")
    st = emu.state(NeighborState)
    flags = int(n.flags)
    if not mp.is_add:
        nbr = st.entries.get((iface.sw_if_index, n.ip_address))
        if nbr is None:
            raise VppRetval(Retval.NO_SUCH_ENTRY, f"no neighbour {n.ip_address}")
        st.delete(emu.vpp, nbr)
        return {"stats_index": NO_INDEX}
    nbr = st.add(emu.vpp, iface, n.ip_address, mac_bytes(n.mac_address),
                 bool(flags & FLAG_STATIC), bool(flags & FLAG_NO_FIB_ENTRY))
    return {"stats_index": nbr.stats_index}


@HANDLERS.handler("ip_neighbor_dump")
def ip_neighbor_dump(emu, mp):
    af = {0: 4, 1: 6}.get(int(mp.af))
    if af is None:
        return []
    st = emu.state(NeighborState)
    chosen = [n for n in st.entries.values() if n.ip.version == af
              and (mp.sw_if_index == NO_INDEX or n.sw_if_index == mp.sw_if_index)]
    chosen.sort(key=lambda n: n.sw_if_index)
    now = time.monotonic()
    return [{"age": now - n.updated,
             "neighbor": {"sw_if_index": n.sw_if_index, "flags": n.api_flags,
                          "mac_address": n.mac, "ip_address": n.ip}}
            for n in chosen]


@HANDLERS.handler("ip_neighbor_flush")
def ip_neighbor_flush(emu, mp):
    if mp.sw_if_index != NO_INDEX:
        emu.interfaces.require(mp.sw_if_index)
    af = {0: 4, 1: 6}.get(int(mp.af))
    st = emu.state(NeighborState)
    for nbr in list(st.entries.values()):
        if (af is None or nbr.ip.version == af) and \
                (mp.sw_if_index == NO_INDEX or nbr.sw_if_index == mp.sw_if_index):
            st.delete(emu.vpp, nbr)
    return {}


# -- proxy ARP --------------------------------------------------------------

@dataclass
class ProxyArpState(FamilyState):
    ranges: list[tuple[int, ipaddress.IPv4Address, ipaddress.IPv4Address]] = field(default_factory=list)
    enabled: set[int] = field(default_factory=set)


@HANDLERS.handler("proxy_arp_add_del")
def proxy_arp_add_del(emu, mp):
    table_id = mp.proxy.table_id
    emu.fib.require(4, table_id)
    st = emu.state(ProxyArpState)
    item = (table_id, mp.proxy.low, mp.proxy.hi)
    if mp.is_add:
        if item not in st.ranges:
            st.ranges.append(item)
    elif item in st.ranges:
        st.ranges.remove(item)
    else:
        raise VppRetval(Retval.NO_SUCH_ENTRY, "no such proxy ARP range")
    return {}


@HANDLERS.handler("proxy_arp_dump")
def proxy_arp_dump(emu, mp):
    return [{"proxy": {"table_id": t, "low": lo, "hi": hi}}
            for t, lo, hi in emu.state(ProxyArpState).ranges]


@HANDLERS.handler("proxy_arp_intfc_enable_disable")
def proxy_arp_intfc_enable_disable(emu, mp):
    emu.interfaces.require(mp.sw_if_index)
    st = emu.state(ProxyArpState)
    if mp.enable:
        st.enabled.add(mp.sw_if_index)
    else:
        st.enabled.discard(mp.sw_if_index)
    return {}


@HANDLERS.handler("proxy_arp_intfc_dump")
def proxy_arp_intfc_dump(emu, mp):
    return [{"sw_if_index": i} for i in sorted(emu.state(ProxyArpState).enabled)]


# -- IPv6 ND proxy ----------------------------------------------------------

@dataclass
class NdProxyState(FamilyState):
    enabled: set[int] = field(default_factory=set)


@HANDLERS.handler("ip6nd_proxy_enable_disable")
def ip6nd_proxy_enable_disable(emu, mp):
    emu.interfaces.require(mp.sw_if_index)
    st = emu.state(NdProxyState)
    if mp.is_enable:
        st.enabled.add(mp.sw_if_index)
    else:
        st.enabled.discard(mp.sw_if_index)
    return {}


@HANDLERS.handler("ip6nd_proxy_add_del")
def ip6nd_proxy_add_del(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    table = emu.fib.require(6, iface.table_ids[6])
    path = FibPath(proto=nh_proto(6), sw_if_index=iface.sw_if_index, nh=mp.ip)
    if mp.is_add:
        emu.fib.path_add(table, _host(mp.ip), Sources.IP6_ND_PROXY, [path])
    else:
        emu.fib.path_remove(table, _host(mp.ip), Sources.IP6_ND_PROXY, [path])
        st = emu.state(NeighborState)
        nbr = st.entries.get((iface.sw_if_index, mp.ip))
        if nbr is not None:
            st.delete(emu.vpp, nbr)
    return {}


@HANDLERS.handler("ip6nd_proxy_dump")
def ip6nd_proxy_dump(emu, mp):
    out = []
    for table in emu.fib.tables(6):
        for entry in table.routes():
            paths = entry.sources.get(Sources.IP6_ND_PROXY)
            if paths:
                out.append((entry.prefix, paths[0].sw_if_index))
    out.sort(key=lambda item: int(item[0].network_address))
    return [{"sw_if_index": sw, "ip": prefix.network_address} for prefix, sw in out]
