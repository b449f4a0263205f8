"""Interface layer-3 configuration: addresses, table binding, unnumbered, IPv6 link.

Owns the rules of vnet/ip/ip4_forward.c, ip6_forward.c, ip_interface.c,
ip6_link.c and interface_api.c's table/unnumbered code:

- addresses may not overlap any address of an interface in the same table
  (ADDRESS_IN_USE for IPv4, DUPLICATE_IF_ADDRESS for IPv6), except several
  addresses of one prefix on one interface; local0 takes none (UNSUPPORTED);
  a delete finds the address by (address, table) and fails with
  ADDRESS_NOT_FOUND_FOR_INTERFACE when absent or on another interface;
- while an interface is admin up its addresses put entries in its table
  (source "interface"): the local /32 (/128), the attached prefix, and for
  IPv4 /30 and shorter drop entries for the network and broadcast
  addresses, for /31 an attached entry for the peer; admin down removes them;
- a table can be bound only while the interface (or the interface it borrows
  addresses from, if unnumbered) has no address of that family
  (ADDRESS_FOUND_FOR_INTERFACE), and only to an existing table (NO_SUCH_FIB);
- IPv6 is enabled on an interface by its first IPv6 address or by
  sw_interface_ip6_enable_disable (a second enable says VALUE_EXIST but
  still counts), which gives it a link-local address (EUI-64 of the MAC, or
  random on interfaces without one).
"""
from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from vppagent.vpp.retvals import Retval

from .fib import FibPath, NhProto, PathType, Sources, drop_path
from .interfaces import IfAddress, Interface
from .registry import VppRetval

if TYPE_CHECKING:
    from .state import VppState

log = logging.getLogger(__name__)

_LL_NET = ipaddress.IPv6Network("fe80::/10")


def _overlaps(a: IfAddress, b: IfAddress) -> bool:
    return a.ip in b.network or b.ip in a.network


def add_address(state: "VppState", iface: Interface, addr: IfAddress) -> None:
    if iface.sw_if_index == 0:
        raise VppRetval(Retval.UNSUPPORTED, "local0 takes no IP address")
    af = addr.version
    if af == 6 and addr.ip in _LL_NET:
        _set_link_local(state, iface, addr)
        return
    table_id = iface.table_ids[af]
    for other in state.interfaces:
        if other.unnumbered_via is not None or other.table_ids[af] != table_id:
            continue
        for x in other.addresses_of(af):
            if not _overlaps(addr, x):
                continue
            if other is iface and x.network.prefixlen == addr.network.prefixlen and x.ip != addr.ip:
                continue  # another address of the same prefix on the same interface
            retval = Retval.ADDRESS_IN_USE if af == 4 else Retval.DUPLICATE_IF_ADDRESS
            raise VppRetval(retval, f"{addr} conflicts with {x} on {other.name}")
    if addr.network.prefixlen == 0:
        raise VppRetval(Retval.ADDRESS_LENGTH_MISMATCH, "zero-length prefix")
    iface.addresses.append(addr)
    if af == 6:
        ip6_link_enable(state, iface)
    sync_routes(state, iface)


def delete_address(state: "VppState", iface: Interface, addr: IfAddress) -> None:
    if iface.sw_if_index == 0:
        raise VppRetval(Retval.UNSUPPORTED, "local0 takes no IP address")
    af = addr.version
    if af == 6 and addr.ip in _LL_NET:
        if addr.network.prefixlen != 128:
            raise VppRetval(Retval.ADDRESS_LENGTH_MISMATCH, "link-local must be /128")
        if iface.link_local == addr.ip:
            raise VppRetval(Retval.ADDRESS_NOT_DELETABLE, "the link-local address stays")
        raise VppRetval(Retval.ADDRESS_NOT_FOUND_FOR_INTERFACE, str(addr))
    table_id = iface.table_ids[af]
    # VPP finds interface addresses by (address, table), whatever the length.
    for other in state.interfaces:
        if other.table_ids[af] != table_id or other.unnumbered_via is not None:
            continue
        for x in other.addresses_of(af):
            if x.ip == addr.ip:
                if other is not iface:
                    raise VppRetval(Retval.ADDRESS_NOT_FOUND_FOR_INTERFACE,
                                    f"{addr} is on {other.name}")
                _remove(state, iface, x)
                return
    raise VppRetval(Retval.ADDRESS_NOT_FOUND_FOR_INTERFACE, f"{addr} not on {iface.name}")


def _remove(state: "VppState", iface: Interface, x: IfAddress) -> None:
    iface.addresses.remove(x)
    sync_routes(state, iface)
    state.notify("on_address_deleted", iface, x)
    if x.version == 6:
        ip6_link_disable(state, iface)


def delete_all_addresses(state: "VppState", iface: Interface) -> None:
    for x in list(iface.addresses):
        _remove(state, iface, x)


def _set_link_local(state: "VppState", iface: Interface, addr: IfAddress) -> None:
    if addr.network.prefixlen != 128:
        raise VppRetval(Retval.ADDRESS_LENGTH_MISMATCH, "link-local must be /128")
    if iface.ip6_link_locks == 0:
        ip6_link_enable(state, iface, addr.ip)
    else:
        iface.link_local = addr.ip


# -- IPv6 link --------------------------------------------------------------

def ip6_link_enable(state: "VppState", iface: Interface,
                    ll: ipaddress.IPv6Address | None = None) -> int:
    """Take a lock on the interface's IPv6 link; returns VPP's rv."""
    rv = 0
    if iface.ip6_link_locks == 0:
        iface.link_local = ll or _make_link_local(state, iface)
    else:
        rv = Retval.VALUE_EXIST
    iface.ip6_link_locks += 1
    return rv


def ip6_link_disable(state: "VppState", iface: Interface) -> int:
    if iface.ip6_link_locks == 0:
        return Retval.IP6_NOT_ENABLED
    iface.ip6_link_locks -= 1
    if iface.ip6_link_locks == 0:
        iface.link_local = None
    return 0


def release_ip6_link(state: "VppState", iface: Interface) -> None:
    iface.ip6_link_locks = 0
    iface.link_local = None


def _make_link_local(state: "VppState", iface: Interface) -> ipaddress.IPv6Address:
    if iface.mac is not None and iface.is_ethernet:
        m = iface.mac
        tail = bytes([m[0] ^ 0x02, m[1], m[2], 0xFF, 0xFE, m[3], m[4], m[5]])
    else:
        tail = bytearray(state.random.getrandbits(64).to_bytes(8, "big"))
        tail[0] &= 0xFD  # clear the "u" bit, as ip6_link.c does
        tail = bytes(tail)
    return ipaddress.IPv6Address(bytes([0xFE, 0x80]) + bytes(6) + tail)


# -- tables and unnumbered --------------------------------------------------

def bind_table(state: "VppState", iface: Interface, af: int, table_id: int) -> None:
    if state.fib.find(af, table_id) is None:
        raise VppRetval(Retval.NO_SUCH_FIB, f"no IPv{af} table {table_id}")
    source = iface
    if iface.unnumbered_via is not None:
        source = state.interfaces.get(iface.unnumbered_via) or iface
    if source.addresses_of(af):
        raise VppRetval(Retval.ADDRESS_FOUND_FOR_INTERFACE,
                        "remove the interface's addresses before changing its table")
    old = iface.table_ids[af]
    state.notify("on_table_bound", iface, af, old, table_id)
    if old != 0:
        state.fib.unlock(af, old, "interface")
    if table_id != 0:
        state.fib.lock(af, table_id, "interface")
    iface.table_ids[af] = table_id


def set_unnumbered(state: "VppState", iface: Interface, ip_iface_index: int, enable: bool) -> None:
    """Make ``iface`` borrow the addresses of ``ip_iface_index`` (or stop)."""
    if enable:
        ip_iface = state.interfaces.require(ip_iface_index, Retval.INVALID_SW_IF_INDEX_2)
        if iface.table_ids != ip_iface.table_ids:
            raise VppRetval(Retval.UNEXPECTED_INTF_STATE, "interfaces are in different tables")
        iface.unnumbered_via = ip_iface_index
    else:
        iface.unnumbered_via = None


# -- interface routes -------------------------------------------------------

def _wanted_routes(iface: Interface) -> dict[tuple, list[FibPath]]:
    """The entries (af, table, prefix, source) -> paths the addresses imply."""
    out: dict[tuple, list[FibPath]] = {}
    if not iface.admin_up:
        return out
    idx = iface.sw_if_index

    def add(af: int, prefix, path: FibPath, source=Sources.INTERFACE) -> None:
        key = (af, iface.table_ids[af], prefix, source)
        paths = out.setdefault(key, [])
        if path not in paths:
            paths.append(path)

    for x in iface.addresses:
        af, proto = x.version, (NhProto.IP4 if x.version == 4 else NhProto.IP6)
        max_len = 32 if af == 4 else 128
        plen = x.network.prefixlen
        host = ipaddress.ip_network((x.ip, max_len))
        add(af, host, FibPath(type=PathType.LOCAL, proto=proto, sw_if_index=idx, nh=x.ip))
        if plen >= max_len:
            continue
        add(af, x.network, FibPath(proto=proto, sw_if_index=idx))
        if af == 4 and plen <= 30:
            for special in (x.network.network_address, x.network.broadcast_address):
                if special != x.ip:
                    add(af, ipaddress.ip_network((special, 32)), drop_path(4))
        elif af == 4 and plen == 31:
            peer = ipaddress.IPv4Address(int(x.ip) ^ 1)
            add(af, ipaddress.ip_network((peer, 32)), FibPath(proto=proto, sw_if_index=idx, nh=peer))
    return out


def sync_routes(state: "VppState", iface: Interface) -> None:
    """Make the FIB hold exactly the entries the interface's addresses imply."""
    wanted = _wanted_routes(iface)
    fib = state.fib
    for key, paths in list(iface.routes.items()):
        keep = wanted.get(key, [])
        gone = [p for p in paths if p not in keep]
        table = fib.find(key[0], key[1])
        if gone and table is not None:
            fib.path_remove(table, key[2], key[3], gone)
    for key, paths in wanted.items():
        table = fib.find(key[0], key[1])
        if table is not None:
            fib.path_add(table, key[2], key[3], paths)
    iface.routes = wanted
