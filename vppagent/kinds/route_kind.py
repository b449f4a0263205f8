"""A reusable descriptor for IP routes in prefixes the agent owns.

Owns: ``OwnedRoute``/``Hop`` (a route as a value: table, prefix, next hops,
each hop optionally through an interface object identified by its key) and
``RouteDescriptor``, configured per feature with an ownership rule.

Ownership scheme: VPP routes carry no tag, so a route kind owns a set of
prefixes in a set of tables, given by the feature as ``owns(table_id,
prefix)`` (e.g. node routes: prefixes inside the cluster pod CIDRs, outside
this node's own pod CIDRs, shorter than a host route). Inside that space
every route whose paths are all plain forwarding paths is the agent's: it
is adopted if desired and deleted if not. Routes outside it, and VPP's own
entries (local/receive, drop, the special prefixes of every table) are never
touched. Two route kinds must not own overlapping prefixes.

Must not touch: interfaces (a hop through an interface only references its
key; the interface's own descriptor creates it), routes outside ``owns``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from vppagent.vpp import routes
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.iptypes import IpAddress, IpNetwork
from vppagent.reconcile import Found, Key, Request, Resolver

from .base import VppKind


# The kind of key a hop gets when retrieve finds an interface no registered
# interface kind knows: it never equals a desired hop, so the route is fixed.
FOREIGN_INTERFACE = "sw_if_index"


@dataclass(frozen=True)
class Hop:
    """One path: a next hop, an interface object (its handle is its sw_if_index), or both."""

    next_hop: IpAddress | None = None
    via: Key | None = None
    weight: int = 1
    type: routes.PathType = routes.PathType.NORMAL  # e.g. ICMP_UNREACH: no next hop, no interface

    def sort_key(self) -> tuple[str, str, int, int]:
        return (str(self.next_hop or ""), str(self.via or ""), self.weight, int(self.type))


@dataclass(frozen=True)
class OwnedRoute:
    """A route the agent wants; hops are kept sorted so that equal routes compare equal."""

    prefix: IpNetwork
    hops: tuple[Hop, ...]
    table_id: int = 0

    def __post_init__(self) -> None:
        hops = self.hops
        if self.prefix.prefixlen == self.prefix.max_prefixlen:
            # VPP reports a host route through an interface with the host
            # itself as next hop (an attached next hop): one meaning, one value.
            host = self.prefix.network_address
            hops = tuple(Hop(None, h.via, h.weight, h.type) if h.via is not None and h.next_hop == host else h
                         for h in hops)
        # VPP reports paths in its own order; compare routes as sets of hops.
        ordered = tuple(sorted(set(hops), key=Hop.sort_key))
        if ordered != self.hops:
            object.__setattr__(self, "hops", ordered)


Owns = Callable[[int, IpNetwork], bool]


class RouteDescriptor(VppKind):
    """Routes of one feature; batchable (one ``ip_route_add_del`` per operation)."""

    def __init__(self, kind: str, owns: Owns, tables: Callable[[], Iterable[tuple[int, bool]]],
                 *, interface_kinds: tuple[str, ...] = (),
                 path_types: frozenset[routes.PathType] = frozenset({routes.PathType.NORMAL})):
        """``tables()`` lists the (table_id, ipv6) pairs retrieve reads; ``interface_kinds``
        are the kinds whose handles are sw_if_indexes that hops may go through; routes with
        a path of a type outside ``path_types`` are never this kind's (VPP's own receive,
        drop and special entries)."""
        self.kind = kind
        self._path_types = path_types
        self.retrieve_after = interface_kinds
        self._owns = owns
        self._tables = tables
        self._interface_kinds = interface_kinds

    def key(self, value: OwnedRoute) -> tuple[int, IpNetwork]:
        return (value.table_id, value.prefix)

    def dependencies(self, value: OwnedRoute) -> Iterable[Key]:
        return [h.via for h in value.hops if h.via is not None]

    def _route(self, value: OwnedRoute, resolver: Resolver) -> routes.Route:
        paths = tuple(
            routes.Path(
                sw_if_index=resolver.handle(h.via) if h.via is not None else routes.NO_INTERFACE,
                next_hop=h.next_hop,
                table_id=value.table_id,
                weight=h.weight,
                type=h.type,
            )
            for h in value.hops
        )
        return routes.Route(value.prefix, paths, value.table_id)

    # -- one by one ----------------------------------------------------------

    def create(self, vpp: VppClient, value: OwnedRoute, resolver: Resolver) -> Any:
        routes.add(vpp, self._route(value, resolver))
        return None

    def can_update(self, old: OwnedRoute, new: OwnedRoute) -> bool:
        return True  # a non-multipath add replaces the paths of the API source

    def update(self, vpp: VppClient, old: OwnedRoute, handle: Any, new: OwnedRoute, resolver: Resolver) -> Any:
        routes.add(vpp, self._route(new, resolver))
        return None

    def delete(self, vpp: VppClient, value: OwnedRoute, handle: Any, resolver: Resolver) -> None:
        # Paths are irrelevant to a non-multipath delete (and an interface a
        # hop went through may already be gone): send none.
        routes.delete(vpp, routes.Route(value.prefix, (), value.table_id))

    # -- pipelined -------------------------------------------------------------

    def create_request(self, value: OwnedRoute, resolver: Resolver) -> Request:
        return ("ip_route_add_del", routes.route_fields(self._route(value, resolver)))

    def update_request(self, old: OwnedRoute, handle: Any, new: OwnedRoute, resolver: Resolver) -> Request:
        return self.create_request(new, resolver)

    def delete_request(self, value: OwnedRoute, handle: Any, resolver: Resolver) -> Request:
        return ("ip_route_add_del",
                routes.route_fields(routes.Route(value.prefix, (), value.table_id), is_add=False))

    def finish(self, op: str, request: Request, reply: Any, old_handle: Any) -> Any:
        if reply.retval != 0:
            route = request[1]["route"]
            raise VppApiError(request[0], reply.retval,
                              {"table_id": route["table_id"], "prefix": str(route["prefix"])})
        return None

    # -- read back ---------------------------------------------------------------

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[OwnedRoute]]:
        out: list[Found[OwnedRoute]] = []
        for table_id, ipv6 in self._tables():
            table = resolver.cached(("ip_route_dump", table_id, ipv6),
                                    lambda t=table_id, v6=ipv6: routes.dump(vpp, t, ipv6=v6))
            for r in table:
                if not self._owns(r.table_id, r.prefix):
                    continue
                if not r.paths or any(p.type not in self._path_types for p in r.paths):
                    continue
                hops = tuple(Hop(p.next_hop, self._via(p.sw_if_index, resolver), p.weight, p.type)
                             for p in r.paths)
                out.append(Found(OwnedRoute(r.prefix, hops, r.table_id)))
        return out

    def _via(self, sw_if_index: int, resolver: Resolver) -> Key | None:
        if sw_if_index == routes.NO_INTERFACE:
            return None
        for kind in self._interface_kinds:
            key = resolver.key_of(kind, sw_if_index)
            if key is not None:
                return key
        return Key(FOREIGN_INTERFACE, sw_if_index)

