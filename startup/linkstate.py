"""What the kernel says about one interface: link, addresses, routes.

Owns reading (never writing) the uplink's configuration in the calling
thread's netns, in a normalized, JSON-friendly form that two captures can be
compared with ``==`` (volatile fields such as lifetimes, counters, DAD state
and route cache info are left out), and finding the uplink from the default
route. Writing is in :mod:`startup.hostpath`.
"""
from __future__ import annotations

import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pyroute2 import IPRoute

from .errors import NoDefaultRouteError, UplinkNotFoundError
from .ethtool import driver_info

# Address flags that are configuration (kept); the others are DAD/lifetime state.
_IFA_CONFIG_FLAGS = 0x01 | 0x02 | 0x10 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800
IFA_F_SECONDARY = 0x01
IFA_F_PERMANENT = 0x80
RTPROT_KERNEL = 2
_FAMILIES = (socket.AF_INET, socket.AF_INET6)


@dataclass(frozen=True)
class Link:
    ifindex: int
    name: str
    kind: str  # "veth", "vlan"...; "" for a physical NIC
    mac: str
    mtu: int
    up: bool
    master: int  # 0 when not enslaved
    driver: str
    bus_info: str


@dataclass(frozen=True)
class Address:
    family: int
    address: str
    prefixlen: int
    scope: int
    flags: int
    broadcast: str = ""
    label: str = ""
    peer: str = ""  # IFA_ADDRESS when it differs from IFA_LOCAL (point-to-point)


@dataclass(frozen=True)
class Hop:
    gateway: str
    dev: str  # interface name; "" when the hop names none
    weight: int


@dataclass(frozen=True)
class Route:
    family: int
    table: int
    dst: str
    dst_len: int
    gateway: str
    dev: str
    priority: int
    proto: int
    scope: int
    type: int
    prefsrc: str
    tos: int
    flags: int  # rtm_flags that are configuration (onlink)
    pref: int = -1  # IPv6 router preference; -1 when absent
    multipath: tuple[Hop, ...] = ()

    @property
    def kernel_made(self) -> bool:
        """Routes the kernel adds and removes with the addresses (connected, local, multicast)."""
        return self.proto == RTPROT_KERNEL


@dataclass(frozen=True)
class InterfaceState:
    """One capture: the link, its addresses (in kernel order) and every route through it."""

    link: Link
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...] = field(default=())

    def comparable(self) -> dict[str, Any]:
        """The state with addresses and routes as sorted lists, for equality and diffs."""
        d = asdict(self)
        d["addresses"] = sorted(d["addresses"], key=repr)
        d["routes"] = sorted(d["routes"], key=repr)
        return d

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> "InterfaceState":
        routes = tuple(
            Route(**{**r, "multipath": tuple(Hop(**h) for h in r.get("multipath", ()))})
            for r in d["routes"]
        )
        return InterfaceState(Link(**d["link"]), tuple(Address(**a) for a in d["addresses"]), routes)


def diff(before: InterfaceState, after: InterfaceState) -> list[str]:
    """Human-readable differences, empty when equal."""
    out: list[str] = []
    if before.link != after.link:
        for k, v in asdict(before.link).items():
            w = getattr(after.link, k)
            if v != w:
                out.append(f"link {k}: {v!r} -> {w!r}")
    b, a = set(before.addresses), set(after.addresses)
    out += [f"address missing: {x}" for x in sorted(b - a, key=repr)]
    out += [f"address extra: {x}" for x in sorted(a - b, key=repr)]
    b2, a2 = set(before.routes), set(after.routes)
    out += [f"route missing: {x}" for x in sorted(b2 - a2, key=repr)]
    out += [f"route extra: {x}" for x in sorted(a2 - b2, key=repr)]
    return out


def _names(ipr: IPRoute) -> dict[int, str]:
    return {m["index"]: m.get("ifname") for m in ipr.link("dump")}


def read_link(ipr: IPRoute, ifindex: int) -> Link:
    m = ipr.link("get", index=ifindex)[0]
    name = m.get("ifname")
    drv = driver_info(name)
    return Link(
        ifindex=ifindex,
        name=name,
        kind=m.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or "",
        mac=m.get("address") or "",
        mtu=m.get("mtu"),
        up=bool(m["flags"] & 1),
        master=m.get("master") or 0,
        driver=drv.driver,
        bus_info=drv.bus_info,
    )


def read_addresses(ipr: IPRoute, ifindex: int) -> tuple[Address, ...]:
    out = []
    for a in ipr.addr("dump", index=ifindex):
        if a["index"] != ifindex:
            continue
        local = a.get("IFA_LOCAL") or a.get("IFA_ADDRESS")
        peer = a.get("IFA_ADDRESS") if a.get("IFA_LOCAL") else None
        flags = a.get("IFA_FLAGS")
        flags = a["flags"] if flags is None else flags
        out.append(Address(
            family=a["family"], address=local, prefixlen=a["prefixlen"], scope=a["scope"],
            flags=flags & _IFA_CONFIG_FLAGS, broadcast=a.get("IFA_BROADCAST") or "",
            label=a.get("IFA_LABEL") or "",
            peer=peer if peer and peer != local else "",
        ))
    return tuple(out)


def _route(r, names: dict[int, str]) -> Route:
    hops = []
    for h in r.get("RTA_MULTIPATH") or ():
        hops.append(Hop(h.get("RTA_GATEWAY") or "", names.get(h["oif"], str(h["oif"])) if h["oif"] else "",
                        h["hops"]))
    oif = r.get("RTA_OIF")
    pref = r.get("RTA_PREF")
    return Route(
        family=r["family"],
        table=r.get("RTA_TABLE") or r["table"],
        dst=r.get("RTA_DST") or "",
        dst_len=r["dst_len"],
        gateway=r.get("RTA_GATEWAY") or "",
        dev=names.get(oif, str(oif)) if oif else "",
        priority=r.get("RTA_PRIORITY") or 0,
        proto=r["proto"],
        scope=r["scope"],
        type=r["type"],
        prefsrc=r.get("RTA_PREFSRC") or "",
        tos=r["tos"],
        flags=r["flags"] & 0x4,  # RTNH_F_ONLINK; the rest is state
        pref=-1 if pref is None else pref,
        multipath=tuple(hops),
    )


def read_routes(ipr: IPRoute, ifindex: int) -> tuple[Route, ...]:
    """Every route in every table whose device (or one multipath hop's) is ``ifindex``."""
    names = _names(ipr)
    out = []
    for fam in _FAMILIES:
        for r in ipr.route("dump", family=fam):
            oifs = {r.get("RTA_OIF")} | {h["oif"] for h in (r.get("RTA_MULTIPATH") or ())}
            if ifindex in oifs:
                out.append(_route(r, names))
    return tuple(out)


def capture(ifname: str, ipr: IPRoute | None = None) -> InterfaceState:
    """Capture ``ifname`` in the calling thread's netns."""
    own = ipr is None
    ipr = ipr or IPRoute()
    try:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            raise UplinkNotFoundError(f"interface {ifname!r} does not exist in this network namespace")
        return InterfaceState(read_link(ipr, idx[0]), read_addresses(ipr, idx[0]), read_routes(ipr, idx[0]))
    finally:
        if own:
            ipr.close()


IFA_F_TENTATIVE = 0x40


def wait_settled(ifname: str, ipr: IPRoute, timeout: float = 3.0) -> None:
    """Wait while IPv6 DAD is in progress on ``ifname``: the kernel adds local routes after it."""
    idx = ipr.link_lookup(ifname=ifname)
    deadline = time.monotonic() + timeout
    while idx and time.monotonic() < deadline:
        flags = [(a.get("IFA_FLAGS") or a["flags"]) for a in ipr.addr("dump", index=idx[0])
                 if a["index"] == idx[0]]
        if not any(f & IFA_F_TENTATIVE for f in flags):
            return
        time.sleep(0.05)


def find_uplink(configured: str | None = None, ipr: IPRoute | None = None) -> str:
    """The configured interface (checked to exist) or the one carrying the default route.

    IPv4's default route wins over IPv6's; among several, the lowest metric in
    the main table. A default route with only multipath hops names the first hop.
    """
    own = ipr is None
    ipr = ipr or IPRoute()
    try:
        names = _names(ipr)
        if configured:
            if configured not in names.values():
                raise UplinkNotFoundError(
                    f"configured uplink {configured!r} does not exist in this network namespace "
                    f"(interfaces: {', '.join(sorted(n for n in names.values() if n))})")
            return configured
        for fam in _FAMILIES:
            defaults = [r for r in ipr.route("dump", family=fam)
                        if r["dst_len"] == 0 and (r.get("RTA_TABLE") or r["table"]) == 254
                        and r["type"] == 1]
            defaults.sort(key=lambda r: r.get("RTA_PRIORITY") or 0)
            for r in defaults:
                oif = r.get("RTA_OIF") or next(
                    (h["oif"] for h in (r.get("RTA_MULTIPATH") or ()) if h["oif"]), None)
                if oif in names:
                    return names[oif]
        raise NoDefaultRouteError(
            "no default route in the main table (IPv4 or IPv6) to find the uplink from; "
            "configure the uplink by name")
    finally:
        if own:
            ipr.close()
