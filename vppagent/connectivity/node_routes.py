"""Flat-network connectivity: a route to every other node's pod CIDRs via its InternalIP.

Owns: the feature ``NodeRoutes`` (watches Nodes; for every node but this one
and every pod CIDR of it, one route ``<pod CIDR> via <InternalIP of the same
family>`` in the pod table) and the route kind ``node-route`` it registers.

Ownership scheme (see ``reconcile.route_kind``): in the pod table the agent
owns the routes whose prefix lies inside the configured cluster pod CIDRs
(``cluster_cidrs``), is shorter than a host route, and does not overlap
this node's own pod CIDRs (those belong to pod interfaces: CNI). Routes
elsewhere, host routes (/32, /128) and VPP's own entries are never touched.
A node whose pod CIDR lies outside the cluster CIDRs, overlaps this node's,
or that has no InternalIP of the CIDR's family is reported as a Problem and
gets no route.

Must not touch: the uplink, neighbours, tunnels and encryption (later
modes), pod routes.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from vppagent.feature import Feature
from vppagent.model.cluster_state import ClusterState
from vppagent.model.k8s import ObjectKey
from vppagent.reconcile import Intent, Problem
from vppagent.reconcile.route_kind import Hop, OwnedRoute, RouteDescriptor
from vppagent.iptypes import IpNetwork


KIND = "node-route"


class ClusterRouteScope:
    """The routes to other nodes' pod CIDRs a feature owns (the ownership scheme above).

    Shared by ``NodeRoutes`` and ``NodeConnectivity``, whose route kinds own the same space.
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


class NodeRoutes(ClusterRouteScope, Feature):
    """Feature: routes to the other nodes' pod CIDRs ("flat" mode)."""

    name = "connectivity"
    watches = ("Node",)

    def __init__(self, node_name: str, cluster_cidrs: Sequence[IpNetwork], *, table_id: int = 0):
        super().__init__(cluster_cidrs, table_id)
        self.node_name = node_name
        self._descriptor = RouteDescriptor(KIND, self.owns, self._tables)

    def descriptors(self) -> list[RouteDescriptor]:
        return [self._descriptor]

    def desired(self, cluster: ClusterState) -> tuple[list[Intent], list[Problem]]:
        me = cluster.nodes.get(self.node_name)
        self._own = me.pod_cidrs if me is not None else ()
        intents: list[Intent] = []
        problems: list[Problem] = []
        if me is None:
            problems.append(Problem(ObjectKey("Node", "", self.node_name), "NodeNotFound",
                                    f"this agent's node {self.node_name!r} is not in the cluster; "
                                    "its own pod CIDRs are unknown"))
        cidrs_text = ", ".join(map(str, self.cluster_cidrs)) or "none"
        for name, node in sorted(cluster.nodes.items()):
            if name == self.node_name:
                continue
            for cidr in node.pod_cidrs:
                if not self._in_cluster(cidr):
                    problems.append(Problem(node.key, "PodCIDROutsideClusterCIDRs",
                                            f"pod CIDR {cidr} is outside the cluster CIDRs ({cidrs_text}); "
                                            "no route programmed"))
                    continue
                if cidr.prefixlen == cidr.max_prefixlen or self._overlaps_own(cidr):
                    problems.append(Problem(node.key, "PodCIDROverlap",
                                            f"pod CIDR {cidr} overlaps this node's pod CIDRs or is a host "
                                            "route; no route programmed"))
                    continue
                via = next((ip for ip in node.internal_ips if ip.version == cidr.version), None)
                if via is None:
                    problems.append(Problem(node.key, "NoInternalIP",
                                            f"no IPv{cidr.version} InternalIP to reach pod CIDR {cidr}; "
                                            "no route programmed"))
                    continue
                intents.append(Intent(KIND, OwnedRoute(cidr, (Hop(next_hop=via),), self.table_id), node.key))
        return intents, problems
