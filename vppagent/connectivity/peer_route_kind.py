"""The ``node-route`` kind with one addition: a pair that must not talk in clear gets a drop route.

Owns ``PeerRouteDescriptor``, a ``kinds.route_kind.RouteDescriptor``
whose routes may also be a single hop to ``DROP`` (VPP's drop path). Why
a drop route rather than no route: without one, a remote pod CIDR would
follow whatever shorter route the table holds (a default route out of the
uplink) and leave the node unencrypted, which ``encryption-required``
forbids.

Ownership is the node routes' (see ``route_scope``): prefixes inside the
cluster CIDRs, outside this node's pod CIDRs, shorter than a host route.
Inside that space, drop routes are ours too.
"""
from __future__ import annotations

from collections.abc import Iterable

from vppagent.reconcile import Found, Key, Resolver
from vppagent.kinds.route_kind import Hop, OwnedRoute, RouteDescriptor
from vppagent.vpp import routes
from vppagent.vpp.client import VppClient

DROP = Key("drop", "")


def drop_route(prefix, table_id: int) -> OwnedRoute:
    return OwnedRoute(prefix, (Hop(via=DROP),), table_id)


def _is_drop(value: OwnedRoute) -> bool:
    return any(h.via == DROP for h in value.hops)


class PeerRouteDescriptor(RouteDescriptor):
    def dependencies(self, value: OwnedRoute) -> Iterable[Key]:
        return [h.via for h in value.hops if h.via is not None and h.via != DROP]

    def _route(self, value: OwnedRoute, resolver: Resolver) -> routes.Route:
        if _is_drop(value):
            return routes.Route(value.prefix, (routes.Path(table_id=value.table_id, type=routes.PathType.DROP),),
                                value.table_id)
        return super()._route(value, resolver)

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[OwnedRoute]]:
        out = list(super().retrieve(vpp, resolver))
        for table_id, ipv6 in self._tables():
            table = resolver.cached(("ip_route_dump", table_id, ipv6),
                                    lambda t=table_id, v6=ipv6: routes.dump(vpp, t, ipv6=v6))
            for r in table:
                if (self._owns(r.table_id, r.prefix) and r.paths
                        and all(p.type == routes.PathType.DROP for p in r.paths)):
                    out.append(Found(drop_route(r.prefix, r.table_id)))
        return out
