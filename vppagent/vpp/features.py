"""VPP's feature arcs: turning a graph node on or off for one interface.

Owns ``feature_enable_disable``, VPP's generic switch for nodes registered on a
feature arc (``VNET_FEATURE_INIT``); the agent uses it for our kpod plugin's
fix-up node on pod interfaces, which has no API of its own, and VPP's own
``gso`` output feature. VPP refuses a
feature or arc it does not know (the plugin not loaded) with an error.
"""
from __future__ import annotations

from .client import VppClient

MESSAGES = ("feature_enable_disable", "feature_gso_enable_disable")


def enable(vpp: VppClient, sw_if_index: int, arc: str, feature: str, *, enable: bool = True) -> None:
    vpp.call("feature_enable_disable", sw_if_index=sw_if_index, enable=enable, arc_name=arc, feature_name=feature)


def gso(vpp: VppClient, sw_if_index: int, *, enable: bool = True) -> None:
    """VPP's ``gso`` output feature on ``sw_if_index``: VPP segments GSO frames itself before
    the interface, which takes none (a tunnel, an af_packet without checksum/GSO)."""
    vpp.call("feature_gso_enable_disable", sw_if_index=sw_if_index, enable_disable=enable)


__all__ = ["MESSAGES", "enable", "gso"]
