"""Service VIPs answer "unreachable" where nothing translates them: the ``service-reject`` route kind.

Why: kube-proxy rejects a connection to a Service without endpoints (ICMP
unreachable / TCP RST) so clients fail at once, not after a timeout. cnat
cannot hold a translation without paths, so such a VIP would be routed like
any address (a cluster IP: dropped, the client waits). Every cluster IP,
LoadBalancer ingress IP and external IP the agent owns gets a host route
whose path is ICMP unreachable. A port with backends is still translated:
cnat rewrites the destination on the interface's input arc, before the FIB
is consulted, so only traffic cnat leaves alone (a port without endpoints,
a port the Service does not have) meets the route. Node addresses (NodePort)
get none: the node answers for them (its kernel refuses a closed port).

Shared VIPs: several Services may use one external IP (on different ports);
``RejectRefs`` counts the Services behind each route, so the route goes
only with the last of them.

Owns: the route values and their ownership (host routes inside the
service and external CIDRs whose path is ICMP unreachable, in the given
tables). Must not: decide which VIPs are the agent's (``expansion.Scope``).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterable, Sequence

from vppagent.reconcile import Intent
from vppagent.kinds.route_kind import Hop, OwnedRoute, RouteDescriptor
from vppagent.vpp import routes
from vppagent.iptypes import IpAddress, IpNetwork

KIND = "service-reject"
_UNREACH = (Hop(type=routes.PathType.ICMP_UNREACH),)


def reject_routes(vip: IpAddress, tables: Sequence[int]) -> list[OwnedRoute]:
    prefix = ipaddress.ip_network(vip)
    return [OwnedRoute(prefix, _UNREACH, t) for t in tables]


def descriptor(tables: Sequence[int], owns_vip: Callable[[IpAddress], bool]) -> RouteDescriptor:
    table_set = frozenset(tables)

    def owns(table: int, prefix: IpNetwork) -> bool:
        return (table in table_set and prefix.prefixlen == prefix.max_prefixlen
                and owns_vip(prefix.network_address))

    return RouteDescriptor(KIND, owns, lambda: [(t, v6) for t in sorted(table_set) for v6 in (False, True)],
                           path_types=frozenset({routes.PathType.ICMP_UNREACH}))


class RejectRefs:
    """Which Services want a reject route for each VIP; intents change only on 0 <-> 1."""

    def __init__(self, tables: Sequence[int]):
        self.tables = tuple(tables)
        self._refs: dict[IpAddress, set[Hashable]] = {}

    def reset(self) -> None:
        self._refs = {}

    def set(self, service: Hashable, old: Iterable[IpAddress], new: Iterable[IpAddress],
            removed: list[Intent], added: list[Intent]) -> None:
        """``service`` wanted ``old`` VIPs and now wants ``new``: append the route changes."""
        old, new = set(old), set(new)
        for vip in old - new:
            owners = self._refs.get(vip)
            if owners is None:
                continue
            owners.discard(service)
            if not owners:
                del self._refs[vip]
                removed.extend(Intent(KIND, r) for r in reject_routes(vip, self.tables))
        for vip in new - old:
            owners = self._refs.setdefault(vip, set())
            if not owners:
                added.extend(Intent(KIND, r) for r in reject_routes(vip, self.tables))
            owners.add(service)

    def intents(self) -> list[Intent]:
        return [Intent(KIND, r) for vip in self._refs for r in reject_routes(vip, self.tables)]


__all__ = ["KIND", "RejectRefs", "descriptor", "reject_routes"]
