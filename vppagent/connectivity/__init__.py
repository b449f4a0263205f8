"""Connectivity: how pods on this node reach pods on the other nodes.

Owns: turning Nodes (their pod CIDRs, addresses and ``vppagent.io/*``
annotations) into desired VPP objects.

- ``feature.NodeConnectivity``: every mode (flat, ipip, vxlan) and the
  per pair encryption (IPsec, WireGuard, or drop when required and not
  possible), toggled by Node annotations; it registers the kinds of
  ``tunnel_kind``, ``ipsec_kind``, ``wireguard_kind`` and ``peer_route_kind``
  (the ``node-route`` kind, in the space ``route_scope`` says is ours).
- ``encryption``: the pair rules; ``mtu``: overhead per mode.

Must not touch: VPP directly (only through descriptors run by the
reconciler), pod interfaces, services, Kubernetes (the agent publishes
``NodeConnectivity.annotations()``).
"""
from .feature import EncryptionSettings, NodeConnectivity
from .route_scope import KIND as NODE_ROUTE_KIND

__all__ = ["EncryptionSettings", "NODE_ROUTE_KIND", "NodeConnectivity"]
