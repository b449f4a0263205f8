"""VPP object kinds that several features share, and the base every VPP kind builds on.

Owns: ``VppKind`` (``base``: the reconciler's descriptor defaults with VPP's
verdict on which errors are worth a retry, ``retriable``), the route kind
(``route_kind``: routes the agent owns, one descriptor per owner with its own
ownership test; pod routes, node routes and service reject routes are all
instances of it) and the loopback kind (``loopback_kind``: the pods' gateway,
the nodes' tunnel sources).

A kind used by one feature lives with that feature, in a module named
``*_kind.py``. Every kind goes through ``vppagent.vpp`` families, never
vpp_papi.
"""
from .base import VppKind
from .retriable import default_is_retriable

__all__ = ["VppKind", "default_is_retriable"]
