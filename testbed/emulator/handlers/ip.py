"""ip.api tables and routes: ip_table_*, ip_route_add_del(_v2), ip_route_(v2_)dump,
ip_route_lookup(_v2).

Modelled on vnet/ip/ip_api.c and vnet/fib/fib_api.c:

- table 0 is ignored by ip_table_add_del; adding a table twice is fine (the
  API holds one lock), so is deleting one that does not exist;
- a route in a missing table: NO_SUCH_FIB; a path through an interface that
  does not exist: NO_MATCHING_INTERFACE; a recursive path (no interface)
  via a missing table: NO_SUCH_FIB; a path protocol VPP does not know: -1;
  a classify path (the emulator has no classify tables): NO_SUCH_TABLE;
- without is_multipath an add replaces the route's API paths and a delete
  removes the route; with is_multipath paths are added to / removed from it.
  Adding or deleting with no paths (except a plain delete):
  NO_PATHS_IN_ROUTE. Deleting what is not there succeeds, as in VPP;
- lookups answer NO_SUCH_ENTRY when nothing matches.
"""
from __future__ import annotations

from typing import Any

from vppagent.vpp.retvals import Retval

from ..fib import FibEntry, FibPath, FibTable, NhProto, PathType, Sources
from ..registry import HandlerTable, VppRetval
from ._common import NO_INDEX, af_of

HANDLERS = HandlerTable("ip")

_NH_PROTOS = frozenset(int(p) for p in NhProto)

DECODE_ERRORS = {
    "ip_route_add_del": int(Retval.INVALID_PREFIX_LENGTH),
    "ip_route_add_del_v2": int(Retval.INVALID_PREFIX_LENGTH),
}


# -- tables ---------------------------------------------------------------

def _table_add_del(emu, is_add: bool, table: Any) -> None:
    af, table_id = af_of(table.is_ip6), table.table_id
    if table_id == 0:
        return  # the default tables can be neither added nor deleted
    if is_add:
        emu.fib.lock(af, table_id, "api", name=table.name or None)
    else:
        emu.fib.unlock(af, table_id, "api")


@HANDLERS.handler("ip_table_add_del")
def ip_table_add_del(emu, mp):
    _table_add_del(emu, bool(mp.is_add), mp.table)
    return {}


@HANDLERS.handler("ip_table_add_del_v2")
def ip_table_add_del_v2(emu, mp):
    _table_add_del(emu, bool(mp.is_add), mp.table)
    return {}


@HANDLERS.handler("ip_table_allocate")
def ip_table_allocate(emu, mp):
    af, table_id = af_of(mp.table.is_ip6), mp.table.table_id
    if table_id == NO_INDEX:
        table_id = next(t for t in iter(lambda: emu.random.getrandbits(32), None)
                        if t != NO_INDEX and emu.fib.find(af, t) is None)
    if table_id != 0:
        emu.fib.lock(af, table_id, "api", name=mp.table.name or None)
    return {"table": {"table_id": table_id, "is_ip6": mp.table.is_ip6, "name": mp.table.name}}


@HANDLERS.handler("ip_table_dump")
def ip_table_dump(emu, mp):
    return [{"table": {"table_id": t.table_id, "is_ip6": t.af == 6, "name": t.name}}
            for t in emu.fib.tables()]


# -- paths ----------------------------------------------------------------

def decode_path(emu, p: Any) -> FibPath:
    """A vl_api_fib_path_t as fib_api_path_decode reads it, with its checks."""
    proto = int(p.proto)
    if proto not in _NH_PROTOS:
        raise VppRetval(Retval.UNSPECIFIED, f"unknown next-hop protocol {proto}")
    ptype = int(p.type)
    common = {"proto": proto, "weight": p.weight or 1, "preference": p.preference,
              "flags": int(p.flags),
              "labels": tuple((l.label, l.ttl, l.exp) for l in p.label_stack[: p.n_labels])}
    if ptype in (PathType.DVR, PathType.INTERFACE_RX, PathType.LOCAL):
        nh = None
        if ptype == PathType.LOCAL and proto in (NhProto.IP4, NhProto.IP6):
            nh = _nh(p, proto)
        return FibPath(type=ptype, sw_if_index=p.sw_if_index, nh=nh, **common)
    if ptype in (PathType.DROP, PathType.ICMP_UNREACH, PathType.ICMP_PROHIBIT):
        return FibPath(type=ptype, **common)
    if ptype == PathType.CLASSIFY:
        raise VppRetval(Retval.NO_SUCH_TABLE, "no classify table")
    if ptype in (PathType.UDP_ENCAP, PathType.BIER_IMP):
        return FibPath(type=ptype, obj_id=p.nh.obj_id, **common)
    if ptype not in (PathType.NORMAL, PathType.SOURCE_LOOKUP):
        # VPP leaves unknown types as plain (normal) paths.
        ptype = PathType.NORMAL
    if proto in (NhProto.IP4, NhProto.IP6):
        nh = _nh(p, proto)
        if p.sw_if_index == NO_INDEX:
            # Recursive or deaggregation: the next-hop table must exist.
            af = 4 if proto == NhProto.IP4 else 6
            emu.fib.require(af, p.table_id)
            return FibPath(type=ptype, table_id=p.table_id, nh=nh, **common)
        if p.sw_if_index not in emu.interfaces:
            raise VppRetval(Retval.NO_MATCHING_INTERFACE, f"no interface {p.sw_if_index}")
        return FibPath(type=ptype, sw_if_index=p.sw_if_index, nh=nh, **common)
    if proto == NhProto.ETHERNET:
        return FibPath(type=ptype, sw_if_index=p.sw_if_index, **common)
    return FibPath(type=ptype, **common)


def _nh(p: Any, proto: int):
    addr = p.nh.address.ip4 if proto == NhProto.IP4 else p.nh.address.ip6
    return None if int(addr) == 0 else addr


def route_dict(entry: FibEntry, table: FibTable, with_src: bool = False) -> dict:
    source, paths = entry.best()
    route = {
        "table_id": table.table_id,
        "stats_index": entry.stats_index,
        "prefix": entry.prefix,
        "n_paths": len(paths),
        "paths": [p.to_api() for p in paths],
    }
    if with_src:
        route["src"] = source.id
    return route


# -- routes ---------------------------------------------------------------

def _route_add_del(emu, mp, source) -> dict:
    route = mp.route
    prefix = route.prefix
    if prefix is None:
        raise VppRetval(Retval.INVALID_ADDRESS_FAMILY, "unknown address family")
    table = emu.fib.require(prefix.version, route.table_id)
    paths = [decode_path(emu, p) for p in route.paths[: route.n_paths]]
    fib, entry = emu.fib, None
    if mp.is_multipath:
        if not paths:
            raise VppRetval(Retval.NO_PATHS_IN_ROUTE, "multipath change without paths")
        if mp.is_add:
            entry = fib.path_add(table, prefix, source, paths)
        else:
            fib.path_remove(table, prefix, source, paths)
    elif mp.is_add:
        if not paths:
            raise VppRetval(Retval.NO_PATHS_IN_ROUTE, "route without paths")
        entry = fib.update(table, prefix, source, paths)
    else:
        fib.delete(table, prefix, source)
    return {"stats_index": entry.stats_index if mp.is_add and entry else NO_INDEX}


@HANDLERS.handler("ip_route_add_del")
def ip_route_add_del(emu, mp):
    return _route_add_del(emu, mp, Sources.API)


@HANDLERS.handler("ip_route_add_del_v2")
def ip_route_add_del_v2(emu, mp):
    src = mp.route.src
    return _route_add_del(emu, mp, Sources.API if src == 0 else Sources.by_id(src))


@HANDLERS.handler("ip_route_dump")
def ip_route_dump(emu, mp):
    table = emu.fib.find(af_of(mp.table.is_ip6), mp.table.table_id)
    if table is None:
        return []
    return [{"route": route_dict(e, table)} for e in table.routes()]


@HANDLERS.handler("ip_route_v2_dump")
def ip_route_v2_dump(emu, mp):
    table = emu.fib.find(af_of(mp.table.is_ip6), mp.table.table_id)
    if table is None:
        return []
    entries = table.routes()
    if mp.src:
        wanted = Sources.by_id(mp.src)
        entries = [e for e in entries if wanted in e.sources]
    return [{"route": route_dict(e, table, with_src=True)} for e in entries]


def _lookup(emu, mp, with_src: bool) -> dict:
    prefix = mp.prefix
    if prefix is None:
        raise VppRetval(Retval.INVALID_ADDRESS_FAMILY, "unknown address family")
    table = emu.fib.require(prefix.version, mp.table_id)
    entry = table.lookup_exact(prefix) if mp.exact else table.lookup(prefix)
    if entry is None:
        raise VppRetval(Retval.NO_SUCH_ENTRY, f"nothing matches {prefix}")
    route = route_dict(entry, table, with_src)
    route["table_id"] = mp.table_id
    return {"route": route}


@HANDLERS.handler("ip_route_lookup")
def ip_route_lookup(emu, mp):
    return _lookup(emu, mp, False)


@HANDLERS.handler("ip_route_lookup_v2")
def ip_route_lookup_v2(emu, mp):
    return _lookup(emu, mp, True)
