"""Connectivity: how pods on this node reach pods on the other nodes.

Owns: turning Nodes (their pod CIDRs and addresses) into desired VPP objects,
one module per mode. ``node_routes`` is the "flat network" mode: the nodes
share an L2/L3 network, so a route per remote pod CIDR via that node's
InternalIP is enough (tunnels and encryption come later).
Must not touch: VPP directly (only through descriptors run by the
reconciler), pod interfaces, services.
"""
from .node_routes import KIND as NODE_ROUTE_KIND, NodeRoutes

__all__ = ["NODE_ROUTE_KIND", "NodeRoutes"]
