"""Connectivity: how pods on this node reach pods on the other nodes.

Owns: turning Nodes (their pod CIDRs, addresses and ``vppagent.io/*``
annotations) into desired VPP objects.

- ``node_routes.NodeRoutes``: the original "flat network" feature (a route
  per remote pod CIDR via the node's InternalIP), kept as is.
- ``feature.NodeConnectivity``: every mode (flat, ipip, vxlan) and the
  per pair encryption (IPsec, WireGuard, or drop when required and not
  possible), toggled by Node annotations; it registers the kinds of
  ``tunnel_kind``, ``ipsec_kind``, ``wireguard_kind`` and ``route_kind``
  (the latter under the same ``node-route`` kind name, a superset of
  ``NodeRoutes``' one: use one feature or the other).
- ``encryption``: the pair rules; ``mtu``: overhead per mode.

Must not touch: VPP directly (only through descriptors run by the
reconciler), pod interfaces, services, Kubernetes (the agent publishes
``NodeConnectivity.annotations()``).
"""
from .feature import EncryptionSettings, NodeConnectivity
from .node_routes import KIND as NODE_ROUTE_KIND, NodeRoutes

__all__ = ["EncryptionSettings", "NODE_ROUTE_KIND", "NodeConnectivity", "NodeRoutes"]
