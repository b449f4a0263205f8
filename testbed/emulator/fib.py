"""The emulated FIB: IP tables, their entries, and who sourced each entry.

Owns: table creation and locking (VPP keeps a table while any holder locks
it: the API once, each bound interface, the neighbour adj-fibs), the special
entries VPP puts in every new table, entries with per-source path lists
(the best source, by VPP's priority, is what a dump shows), longest-prefix
lookup, and the stats index handed out per entry.

Modelled on vnet/fib (fib_table.c, ip4_fib.c, ip6_fib.c, fib_api.c):

- table 0 exists for IPv4 and IPv6 from the start and can never go away;
- every table gets VPP's special entries: 0.0.0.0/0, 0.0.0.0/32,
  224.0.0.0/4, 240.0.0.0/4, 255.255.255.255/32 (drop) for IPv4; ::/0 (drop)
  and fe80::/10 (link-local lookup) for IPv6. Dumps include them, as VPP's do;
- a table whose last lock goes is destroyed with whatever it still holds
  (VPP logs "BUG: table not empty" then; so does the emulator).

Not modelled: recursive resolution, load-balance internals, multicast
FIBs, MPLS. Paths are kept in the order they were added (VPP sorts them).
Stats indices are unique per live entry but are not VPP's numbers.
"""
from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Iterable, Union

from vppagent.vpp.retvals import Retval

from .registry import VppRetval
from .state import NO_INDEX, IndexPool

if TYPE_CHECKING:
    from .state import VppState

log = logging.getLogger(__name__)

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


MAX_LABELS = 16  # vl_api_fib_path_t.label_stack is a fixed array


class PathType(IntEnum):
    NORMAL = 0
    LOCAL = 1
    DROP = 2
    UDP_ENCAP = 3
    BIER_IMP = 4
    ICMP_UNREACH = 5
    ICMP_PROHIBIT = 6
    SOURCE_LOOKUP = 7
    DVR = 8
    INTERFACE_RX = 9
    CLASSIFY = 10


class NhProto(IntEnum):
    IP4 = 0
    IP6 = 1
    MPLS = 2
    ETHERNET = 3
    BIER = 4


class PathFlags(IntEnum):
    NONE = 0
    RESOLVE_VIA_ATTACHED = 1
    RESOLVE_VIA_HOST = 2
    POP_PW_CW = 4


@dataclass(frozen=True, order=True)
class FibSource:
    """A FIB source: lower priority value wins, as in vnet/fib/fib_source.h."""

    priority: int
    name: str
    id: int  # fib_source_t value (the 'src' of ip_route_*_v2)


class Sources:
    """VPP's built-in sources with their priorities and IDs."""

    SPECIAL = FibSource(0x00, "special", 1)
    CLASSIFY = FibSource(0x01, "classify", 2)
    PROXY = FibSource(0x02, "proxy", 3)
    INTERFACE = FibSource(0x03, "interface", 4)
    SR = FibSource(0x10, "sr", 5)
    BIER = FibSource(0x20, "bier", 6)
    SIXRD = FibSource(0x30, "6RD", 7)
    API = FibSource(0x80, "API", 8)
    CLI = FibSource(0x81, "CLI", 9)
    LISP = FibSource(0x90, "lisp", 10)
    MAP = FibSource(0xA0, "map", 11)
    DHCP = FibSource(0xB0, "dhcp", 12)
    IP6_ND_PROXY = FibSource(0xC0, "ip6-nd-proxy", 13)
    IP6_ND = FibSource(0xC1, "ip6-nd", 14)
    ADJ = FibSource(0xD0, "adjacency", 15)
    MPLS = FibSource(0xE0, "mpls", 16)
    AE = FibSource(0xF0, "attached-export", 17)
    RR = FibSource(0xFB, "recursive-resolution", 18)
    URPF_EXEMPT = FibSource(0xFC, "urpf-exempt", 19)
    DEFAULT_ROUTE = FibSource(0xFD, "default-route", 20)
    INTERPOSE = FibSource(0xFE, "interpose", 21)

    @classmethod
    def by_id(cls, source_id: int) -> FibSource:
        for v in vars(cls).values():
            if isinstance(v, FibSource) and v.id == source_id:
                return v
        # Sources allocated at run time (fib_source_allocate) by plugins.
        return FibSource(0x80, f"src-{source_id}", source_id)


@dataclass(frozen=True)
class FibPath:
    """A path as VPP keeps it after decoding (fib_api_path_decode)."""

    type: int = PathType.NORMAL
    proto: int = NhProto.IP4
    sw_if_index: int = NO_INDEX
    table_id: int = 0
    nh: IPAddress | None = None
    weight: int = 1
    preference: int = 0
    flags: int = 0
    labels: tuple[tuple[int, int, int], ...] = ()  # (label, ttl, exp)
    obj_id: int = 0

    def to_api(self) -> dict[str, Any]:
        """Encode as fib_api_path_encode does (what dumps and lookups show)."""
        if self.type in (PathType.SOURCE_LOOKUP, PathType.CLASSIFY):
            api_type = PathType.NORMAL  # VPP has no encoding for these two
        else:
            api_type = self.type
        nh: dict[str, Any] = {"address": {}, "obj_id": 0}
        if self.nh is not None and self.proto in (NhProto.IP4, NhProto.IP6):
            nh["address"] = {"ip4": self.nh.packed} if self.nh.version == 4 else {"ip6": self.nh.packed}
        if api_type in (PathType.UDP_ENCAP, PathType.BIER_IMP):
            nh["obj_id"] = self.obj_id
        labels = [{"label": l, "ttl": t, "exp": e, "is_uniform": 0} for l, t, e in self.labels]
        stack = labels + [{}] * (MAX_LABELS - len(labels))
        return {
            "sw_if_index": self.sw_if_index,
            "table_id": self.table_id,
            "rpf_id": 0,
            "weight": self.weight,
            "preference": self.preference,
            "type": int(api_type),
            "flags": self.flags & (PathFlags.RESOLVE_VIA_ATTACHED | PathFlags.RESOLVE_VIA_HOST),
            "proto": int(self.proto),
            "nh": nh,
            "n_labels": len(labels),
            "label_stack": stack,
        }


def drop_path(af: int) -> FibPath:
    return FibPath(type=PathType.DROP, proto=NhProto.IP4 if af == 4 else NhProto.IP6)


def nh_proto(af: int) -> int:
    return NhProto.IP4 if af == 4 else NhProto.IP6


@dataclass
class FibEntry:
    prefix: IPNetwork
    stats_index: int
    sources: dict[FibSource, list[FibPath]] = field(default_factory=dict)

    def best(self) -> tuple[FibSource, list[FibPath]]:
        src = min(self.sources)
        return src, self.sources[src]

    @property
    def paths(self) -> list[FibPath]:
        return self.best()[1]


@dataclass
class FibTable:
    af: int
    table_id: int
    fib_index: int
    name: str
    locks: Counter = field(default_factory=Counter)
    entries: dict[IPNetwork, FibEntry] = field(default_factory=dict)

    def routes(self) -> list[FibEntry]:
        """Entries in a stable order: by prefix length, then address."""
        return sorted(self.entries.values(),
                      key=lambda e: (e.prefix.prefixlen, int(e.prefix.network_address)))

    def lookup_exact(self, prefix: IPNetwork) -> FibEntry | None:
        return self.entries.get(prefix)

    def lookup(self, prefix: IPNetwork) -> FibEntry | None:
        """Longest-prefix match covering the whole prefix."""
        addr = prefix.network_address
        for plen in range(prefix.prefixlen, -1, -1):
            entry = self.entries.get(ipaddress.ip_network((addr, plen), strict=False))
            if entry is not None:
                return entry
        return None


def _ip4(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


# (prefix, source, paths) VPP adds to every new table.
_SPECIALS: dict[int, list[tuple[IPNetwork, FibSource, FibPath]]] = {
    4: [
        (_ip4("0.0.0.0/0"), Sources.DEFAULT_ROUTE, drop_path(4)),
        (_ip4("0.0.0.0/32"), Sources.DEFAULT_ROUTE, drop_path(4)),
        (_ip4("240.0.0.0/4"), Sources.SPECIAL, drop_path(4)),
        (_ip4("224.0.0.0/4"), Sources.SPECIAL, drop_path(4)),
        (_ip4("255.255.255.255/32"), Sources.DEFAULT_ROUTE, drop_path(4)),
    ],
    6: [
        (ipaddress.IPv6Network("::/0"), Sources.DEFAULT_ROUTE, drop_path(6)),
        # Link-local: an exclusive path to the link-local lookup, no interface.
        (ipaddress.IPv6Network("fe80::/10"), Sources.SPECIAL, FibPath(proto=NhProto.IP6)),
    ],
}

# Holders that lock a table at most once (API and CLI, as fib_table_lock_set).
_SET_HOLDERS = {"api", "cli"}


class Fib:
    """All IP tables of the emulated VPP."""

    def __init__(self, state: "VppState"):
        self._state = state
        self._tables: dict[tuple[int, int], FibTable] = {}
        self._fib_indices = {4: IndexPool(), 6: IndexPool()}
        self._stats = IndexPool()
        for af in (4, 6):
            self.lock(af, 0, "default")

    # -- tables -------------------------------------------------------------

    def find(self, af: int, table_id: int) -> FibTable | None:
        return self._tables.get((af, table_id))

    def require(self, af: int, table_id: int, retval: int = Retval.NO_SUCH_FIB) -> FibTable:
        table = self._tables.get((af, table_id))
        if table is None:
            raise VppRetval(retval, f"no IPv{af} table {table_id}")
        return table

    def tables(self, af: int | None = None) -> list[FibTable]:
        chosen = [t for t in self._tables.values() if af is None or t.af == af]
        return sorted(chosen, key=lambda t: (t.af, t.fib_index))

    def lock(self, af: int, table_id: int, holder: str, name: str | None = None) -> FibTable:
        """Lock a table for a holder, creating it (with its specials) if needed."""
        table = self._tables.get((af, table_id))
        if table is None:
            table = FibTable(af, table_id, self._fib_indices[af].get(),
                             name or f"ipv{af}-VRF:{table_id}")
            self._tables[(af, table_id)] = table
            for prefix, source, path in _SPECIALS[af]:
                self.path_add(table, prefix, source, [path])
            log.debug("table created", extra={"af": af, "table_id": table_id})
        if holder in _SET_HOLDERS:
            table.locks[holder] = 1
        else:
            table.locks[holder] += 1
        return table

    def unlock(self, af: int, table_id: int, holder: str) -> None:
        table = self._tables.get((af, table_id))
        if table is None or table.locks[holder] <= 0:
            return
        table.locks[holder] -= 1
        if sum(table.locks.values()) == 0:
            self._destroy(table)

    def _destroy(self, table: FibTable) -> None:
        leftovers = [e for e in table.entries.values()
                     if any(s not in (Sources.SPECIAL, Sources.DEFAULT_ROUTE) for s in e.sources)]
        if leftovers:
            # VPP logs "BUG: ... table N is not empty" and drops them with the table.
            log.warning("table deleted while it still holds routes; VPP drops them",
                        extra={"af": table.af, "table_id": table.table_id,
                               "routes": len(leftovers)})
        for entry in table.entries.values():
            self._stats.put(entry.stats_index)
        del self._tables[(table.af, table.table_id)]
        self._fib_indices[table.af].put(table.fib_index)
        log.debug("table destroyed", extra={"af": table.af, "table_id": table.table_id})

    # -- entries ------------------------------------------------------------

    def _entry(self, table: FibTable, prefix: IPNetwork) -> FibEntry:
        entry = table.entries.get(prefix)
        if entry is None:
            entry = FibEntry(prefix, self._stats.get())
            table.entries[prefix] = entry
        return entry

    def _gc(self, table: FibTable, entry: FibEntry) -> None:
        if not entry.sources:
            del table.entries[entry.prefix]
            self._stats.put(entry.stats_index)

    def update(self, table: FibTable, prefix: IPNetwork, source: FibSource,
               paths: Iterable[FibPath]) -> FibEntry:
        """Replace the source's paths (fib_table_entry_update)."""
        entry = self._entry(table, prefix)
        entry.sources[source] = _dedup(paths)
        return entry

    def path_add(self, table: FibTable, prefix: IPNetwork, source: FibSource,
                 paths: Iterable[FibPath]) -> FibEntry:
        """Add paths to the source's list, ignoring ones already there."""
        entry = self._entry(table, prefix)
        current = entry.sources.setdefault(source, [])
        for p in paths:
            if p not in current:
                current.append(p)
        return entry

    def path_remove(self, table: FibTable, prefix: IPNetwork, source: FibSource,
                    paths: Iterable[FibPath]) -> None:
        """Remove paths; the source goes when its last path does."""
        entry = table.entries.get(prefix)
        if entry is None or source not in entry.sources:
            return
        gone = set(paths)
        left = [p for p in entry.sources[source] if p not in gone]
        if left:
            entry.sources[source] = left
        else:
            del entry.sources[source]
        self._gc(table, entry)

    def delete(self, table: FibTable, prefix: IPNetwork, source: FibSource) -> None:
        """Remove the source from the entry; deleting what is absent is fine."""
        entry = table.entries.get(prefix)
        if entry is None:
            return
        entry.sources.pop(source, None)
        self._gc(table, entry)


def _dedup(paths: Iterable[FibPath]) -> list[FibPath]:
    out: list[FibPath] = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out
