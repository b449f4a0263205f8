"""IP tables and routes: tables (VRFs), unicast routes with one or many paths, dumps.

Owns the typed calls on VPP's FIB. Routes are described by :class:`Route`
(a prefix in a table with its paths); ``add``/``delete`` are exact inverses
and ``bulk_add`` pipelines many routes at once.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Iterable

from vppagent.iptypes import IpAddress, IpNetwork, U32_NONE

from .client import VppClient
from .errors import VppApiError
from .retvals import Retval

MESSAGES = (
    "ip_table_add_del",
    "ip_table_dump",
    "ip_route_add_del",
    "ip_route_dump",
    "ip_route_lookup",
)

NO_INTERFACE = U32_NONE


class PathType(IntEnum):
    NORMAL = 0
    LOCAL = 1
    DROP = 2
    ICMP_UNREACH = 5
    ICMP_PROHIBIT = 6


class PathFlags(IntEnum):
    NONE = 0
    RESOLVE_VIA_ATTACHED = 1
    RESOLVE_VIA_HOST = 2


@dataclass(frozen=True)
class Path:
    """One way out of a route: an interface, a next hop, or both."""

    sw_if_index: int = NO_INTERFACE
    next_hop: IpAddress | None = None
    table_id: int = 0  # where to resolve next_hop when sw_if_index is unset
    weight: int = 1
    preference: int = 0
    type: PathType = PathType.NORMAL
    flags: PathFlags = PathFlags.NONE


@dataclass(frozen=True)
class Route:
    prefix: IpNetwork
    paths: tuple[Path, ...] = field(default_factory=tuple)
    table_id: int = 0

    @staticmethod
    def of(prefix: str | IpNetwork, *paths: Path, table_id: int = 0) -> "Route":
        return Route(ipaddress.ip_network(prefix), tuple(paths), table_id)


# vpp_papi packs fixed arrays only when given in full: 16 MPLS labels, each
# empty ({} packs as all-zero, and the codec packs it without a field lookup).
_NO_LABELS = [{}] * 16


def _api_path(p: Path, ip6: bool) -> dict:
    nh: dict = {}
    if p.next_hop is not None:
        nh = {"address": {"ip6" if p.next_hop.version == 6 else "ip4": p.next_hop}}
    return {
        "sw_if_index": p.sw_if_index,
        "table_id": p.table_id,
        "weight": p.weight,
        "preference": p.preference,
        "type": int(p.type),
        "flags": int(p.flags),
        "proto": 1 if ip6 else 0,
        "nh": nh,
        "n_labels": 0,
        "label_stack": _NO_LABELS,
    }


def route_fields(route: Route, *, is_add: bool = True, multipath: bool = False) -> dict:
    """The ip_route_add_del fields for a route (exposed for bulk callers)."""
    ip6 = route.prefix.version == 6
    paths = [_api_path(p, ip6) for p in route.paths]
    return {
        "is_add": is_add,
        "is_multipath": multipath,
        "route": {
            "table_id": route.table_id,
            "prefix": route.prefix,
            "n_paths": len(paths),
            "paths": paths,
        },
    }


def add(vpp: VppClient, route: Route) -> None:
    """Add (or replace the paths of) a route."""
    vpp.call("ip_route_add_del", **route_fields(route))


def delete(vpp: VppClient, route: Route) -> None:
    vpp.call("ip_route_add_del", **route_fields(route, is_add=False))


def add_paths(vpp: VppClient, route: Route) -> None:
    """Add paths to a route, keeping the ones it has (ECMP/UCMP)."""
    vpp.call("ip_route_add_del", **route_fields(route, multipath=True))


def remove_paths(vpp: VppClient, route: Route) -> None:
    vpp.call("ip_route_add_del", **route_fields(route, is_add=False, multipath=True))


def bulk_add(vpp: VppClient, routes: Iterable[Route], *, window: int = 4096) -> int:
    replies = vpp.bulk((("ip_route_add_del", route_fields(r)) for r in routes), window=window)
    return len(replies)


def bulk_delete(vpp: VppClient, routes: Iterable[Route], *, window: int = 4096) -> int:
    replies = vpp.bulk((("ip_route_add_del", route_fields(r, is_add=False)) for r in routes),
                       window=window)
    return len(replies)


def _path(d, ip6: bool) -> Path:
    nh = None
    if d.type == PathType.NORMAL:
        addr = d.nh.address.ip6 if ip6 else d.nh.address.ip4
        if not addr.is_unspecified:
            nh = addr
    return Path(
        sw_if_index=d.sw_if_index,
        next_hop=nh,
        table_id=d.table_id,
        weight=d.weight,
        preference=d.preference,
        type=PathType(int(d.type)) if int(d.type) in PathType._value2member_map_ else d.type,
        flags=PathFlags(int(d.flags)) if int(d.flags) in PathFlags._value2member_map_ else d.flags,
    )


def dump(vpp: VppClient, table_id: int = 0, *, ipv6: bool = False) -> list[Route]:
    out = []
    for d in vpp.dump("ip_route_dump", table={"table_id": table_id, "is_ip6": ipv6}):
        r = d.route
        out.append(Route(ipaddress.ip_network(r.prefix), tuple(_path(p, ipv6) for p in r.paths), r.table_id))
    return out


def add_table(vpp: VppClient, table_id: int, *, ipv6: bool = False, name: str = "") -> None:
    vpp.call("ip_table_add_del", is_add=True, table={"table_id": table_id, "is_ip6": ipv6, "name": name})


def delete_table(vpp: VppClient, table_id: int, *, ipv6: bool = False) -> None:
    vpp.call("ip_table_add_del", is_add=False, table={"table_id": table_id, "is_ip6": ipv6})


@dataclass(frozen=True)
class Table:
    table_id: int
    ipv6: bool
    name: str


def tables(vpp: VppClient) -> list[Table]:
    return [Table(d.table.table_id, bool(d.table.is_ip6), d.table.name) for d in vpp.dump("ip_table_dump")]


def lookup(vpp: VppClient, prefix: str | IpNetwork, *, table_id: int = 0, exact: bool = True) -> Route | None:
    """The route VPP would use for ``prefix`` (exact match, or longest prefix)."""
    net = ipaddress.ip_network(prefix)
    try:
        r = vpp.call("ip_route_lookup", table_id=table_id, exact=exact, prefix=net).route
    except VppApiError as e:
        if e.retval == Retval.NO_SUCH_ENTRY:
            return None
        raise
    ip6 = net.version == 6
    return Route(ipaddress.ip_network(r.prefix), tuple(_path(p, ip6) for p in r.paths), r.table_id)
