"""The kernel side of a takeover: the host's veth, the quarantined uplink, and undoing both.

Owns every kernel change bring-up makes in the node netns:

* a veth pair: ``host_if`` keeps the node's connectivity (it receives the
  uplink's MAC, MTU, addresses and routes), ``vpp_if`` is VPP's end (attached
  by af_packet);
* a "quarantine" bridge that is never brought up: the uplink is enslaved to
  it, so the kernel consumes and drops everything the uplink receives after
  af_packet's tap has copied it to VPP. Without it the kernel would also
  answer on the uplink (duplicate ARP/TCP replies). tc ingress drop would do
  the same, but kernels without tc classifiers (like this machine's) exist;
* moving addresses and non-kernel routes between the uplink and ``host_if``.

:func:`restore` brings the uplink back to an :class:`InterfaceState` exactly
(addresses, routes in all tables, MTU, MAC, admin state, master) and removes
everything :func:`prepare`/:func:`move_to_host` created.
"""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, replace
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import ethtool, linkstate
from .errors import RestoreError
from .linkstate import Address, InterfaceState, Route

log = logging.getLogger(__name__)

IFA_F_NODAD = 0x02
_ADD_FLAG_MASK = ~(linkstate.IFA_F_SECONDARY | linkstate.IFA_F_PERMANENT)


@dataclass(frozen=True)
class HostPathNames:
    host_if: str = "vpphost0"
    vpp_if: str = "vpphost0-vpp"
    quarantine: str = "vppquar0"

    def all(self) -> tuple[str, ...]:
        return (self.host_if, self.vpp_if, self.quarantine)


def _idx(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def moved_address(a: Address) -> bool:
    """IPv6 link-local stays with the uplink (the kernel owns it); everything else moves."""
    return not (a.family == socket.AF_INET6 and a.scope == 253)


def _addr_kwargs(a: Address, *, for_host: bool) -> dict[str, Any]:
    kw: dict[str, Any] = {"address": a.address, "prefixlen": a.prefixlen}
    flags = a.flags & _ADD_FLAG_MASK
    if for_host and a.family == socket.AF_INET6:
        # The address was ours a moment ago: skip DAD so IPv6 works at once.
        flags |= IFA_F_NODAD
    if flags:
        kw["IFA_FLAGS"] = flags
    if a.broadcast:
        kw["broadcast"] = a.broadcast
    if a.peer:
        kw["local"], kw["address"] = a.address, a.peer
    if a.label and not for_host:
        kw["label"] = a.label
    if a.scope:
        kw["scope"] = a.scope
    return kw


def _route_kwargs(ipr: IPRoute, r: Route) -> dict[str, Any]:
    """pyroute2 arguments for ``r``, with interface names resolved in this netns."""
    kw: dict[str, Any] = {
        "family": r.family, "table": r.table, "dst_len": r.dst_len, "proto": r.proto,
        "scope": r.scope, "type": r.type, "tos": r.tos, "priority": r.priority,
    }
    if r.dst:
        kw["dst"] = r.dst
    if r.gateway:
        kw["gateway"] = r.gateway
    if r.prefsrc:
        kw["prefsrc"] = r.prefsrc
    if r.flags:
        kw["flags"] = r.flags
    if r.multipath:
        hops = []
        for h in r.multipath:
            hop: dict[str, Any] = {"hops": h.weight}
            if h.gateway:
                hop["gateway"] = h.gateway
            if h.dev:
                hop["oif"] = _idx(ipr, h.dev)
            hops.append(hop)
        kw["multipath"] = hops
    elif r.dev:
        kw["oif"] = _idx(ipr, r.dev)
    return kw


def _retarget(r: Route, old: str, new: str) -> Route:
    return replace(
        r, dev=new if r.dev == old else r.dev,
        multipath=tuple(replace(h, dev=new if h.dev == old else h.dev) for h in r.multipath))


def _add_route(ipr: IPRoute, r: Route) -> None:
    ipr.route("replace", **_route_kwargs(ipr, r))


def prepare(ipr: IPRoute, uplink: InterfaceState, names: HostPathNames) -> None:
    """Create the veth pair (host end with the uplink's MAC and MTU, down). No effect on traffic."""
    link = uplink.link
    ipr.link("add", ifname=names.host_if, kind="veth", peer=names.vpp_if)
    host = _idx(ipr, names.host_if)
    vpp = _idx(ipr, names.vpp_if)
    ipr.link("set", index=host, address=link.mac, mtu=link.mtu)
    # af_packet copies frames as they are: they must leave the kernel complete.
    ethtool.disable_offloads(names.host_if)
    ethtool.disable_offloads(names.vpp_if)
    ipr.link("set", index=vpp, mtu=link.mtu, state="up")
    ipr.link("set", index=host, state="up")


def move_to_host(ipr: IPRoute, uplink: InterfaceState, names: HostPathNames) -> None:
    """Quarantine the uplink and move its addresses and routes to ``host_if``.

    Addresses are added to the host side before they leave the uplink and
    routes are replaced (not deleted and re-added), so the gap is a few
    netlink round trips.
    """
    up = uplink.link.ifindex
    host = _idx(ipr, names.host_if)
    ipr.link("add", ifname=names.quarantine, kind="bridge")
    ipr.link("set", index=up, master=_idx(ipr, names.quarantine))
    moving = [a for a in uplink.addresses if moved_address(a)]
    for a in moving:
        try:
            ipr.addr("add", index=host, **_addr_kwargs(a, for_host=True))
        except NetlinkError as e:
            if e.code != 17:  # EEXIST: a retried move
                raise
    for r in uplink.routes:
        if not r.kernel_made:
            _add_route(ipr, _retarget(r, uplink.link.name, names.host_if))
    for a in moving:
        try:
            ipr.addr("del", index=up, address=a.address, prefixlen=a.prefixlen)
        except NetlinkError as e:
            if e.code != 99:  # EADDRNOTAVAIL: already gone
                raise


def _restore_link(ipr: IPRoute, link: linkstate.Link) -> None:
    cur = linkstate.read_link(ipr, link.ifindex)
    if cur.mtu != link.mtu:
        ipr.link("set", index=link.ifindex, mtu=link.mtu)
    if cur.mac != link.mac:
        ipr.link("set", index=link.ifindex, address=link.mac)
    if cur.master != link.master:
        ipr.link("set", index=link.ifindex, master=link.master)
    if cur.up != link.up:
        ipr.link("set", index=link.ifindex, state="up" if link.up else "down")


def created_present(ipr: IPRoute, names: HostPathNames) -> list[str]:
    return [n for n in names.all() if _idx(ipr, n) is not None]


def restore(ipr: IPRoute, want: InterfaceState, names: HostPathNames) -> None:
    """Bring the uplink back to ``want`` and remove what takeover created. Idempotent.

    Raises RestoreError (with the remaining differences) when the result is not exact.
    """
    link = want.link
    up = link.ifindex
    q = _idx(ipr, names.quarantine)
    cur = linkstate.read_link(ipr, up)
    if q is not None and cur.master == q:
        ipr.link("set", index=up, master=0)
    if q is not None:
        ipr.link("del", index=q)
    # Link attributes first: routes through a down link cannot be added.
    _restore_link(ipr, link)
    # Addresses in snapshot order, so primary/secondary come back as they were.
    have = set(linkstate.read_addresses(ipr, up))
    for a in want.addresses:
        if a not in have:
            try:
                ipr.addr("add", index=up, **_addr_kwargs(a, for_host=False))
            except NetlinkError as e:
                if e.code != 17:
                    raise
    for a in set(linkstate.read_addresses(ipr, up)) - set(want.addresses):
        ipr.addr("del", index=up, address=a.address, prefixlen=a.prefixlen)
    have_routes = set(linkstate.read_routes(ipr, up))
    for r in want.routes:
        if r not in have_routes and not r.kernel_made:
            _add_route(ipr, r)
    # The veth goes last: until now it carried the node's traffic.
    for n in (names.host_if, names.vpp_if):
        i = _idx(ipr, n)
        if i is not None:
            ipr.link("del", index=i)
    for r in set(linkstate.read_routes(ipr, up)) - set(want.routes):
        if not r.kernel_made:
            ipr.route("del", **_route_kwargs(ipr, r))
    now = linkstate.InterfaceState(linkstate.read_link(ipr, up), linkstate.read_addresses(ipr, up),
                                   linkstate.read_routes(ipr, up))
    missing = linkstate.diff(want, now)
    if missing:
        raise RestoreError(f"uplink {link.name} not restored exactly: " + "; ".join(missing))
    log.info("uplink restored", extra={"uplink": link.name, "addresses": len(want.addresses),
                                       "routes": len(want.routes)})
