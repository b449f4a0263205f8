"""Which routes to other nodes' pod CIDRs are the agent's: the ``node-route`` kind's scope.

Owns: the kind name ``node-route`` and ``ClusterRouteScope``, the ownership
test ``NodeConnectivity`` gives its route kind (``peer_route_kind``).

Ownership scheme (see ``kinds.route_kind``): in the pod table the agent
owns the routes whose prefix lies inside the configured cluster pod CIDRs
(``cluster_cidrs``), is shorter than a host route, and does not overlap
this node's own pod CIDRs (those belong to pod interfaces: CNI). Routes
elsewhere, host routes (/32, /128) and VPP's own entries are never touched.

Must not touch: the routes themselves (``NodeConnectivity`` decides them),
pod routes.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from vppagent.iptypes import IpNetwork

KIND = "node-route"


class ClusterRouteScope:
    """The routes to other nodes' pod CIDRs a feature owns (the ownership scheme above).

    """

    def __init__(self, cluster_cidrs: Sequence[IpNetwork], table_id: int):
        self.cluster_cidrs = tuple(cluster_cidrs)
        self.table_id = table_id
        # This node's pod CIDRs: excluded from what the kind owns. Learnt from
        # the Node object; reconciling only starts once Nodes are synced.
        self._own: tuple[IpNetwork, ...] = ()

    def _tables(self) -> Iterable[tuple[int, bool]]:
        return sorted({(self.table_id, c.version == 6) for c in self.cluster_cidrs})

    def _in_cluster(self, prefix: IpNetwork) -> bool:
        return any(prefix.version == c.version and prefix.subnet_of(c) for c in self.cluster_cidrs)

    def _overlaps_own(self, prefix: IpNetwork) -> bool:
        return any(prefix.version == o.version and prefix.overlaps(o) for o in self._own)

    def owns(self, table_id: int, prefix: IpNetwork) -> bool:
        return (table_id == self.table_id and prefix.prefixlen < prefix.max_prefixlen
                and self._in_cluster(prefix) and not self._overlaps_own(prefix))
