"""VPP's feature arcs: turning a graph node on or off for one interface.

Owns ``feature_enable_disable``, VPP's generic switch for nodes registered on a
feature arc (``VNET_FEATURE_INIT``); the agent uses it for our kpod plugin's
fix-up nodes (on pod interfaces and the WireGuard interface), which have no API
of their own, and VPP's own ``gso`` output feature. VPP refuses a feature or arc
it does not know (the plugin not loaded) with INVALID_VALUE.
"""
from __future__ import annotations

from .client import VppClient
from .errors import VppApiError
from .retvals import Retval

MESSAGES = ("feature_enable_disable", "feature_gso_enable_disable")

# Our kpod plugin's nodes (vpp_plugins/kpod/node.c), as (arc, feature).
KPOD_GSO_FIX = ("ip4-unicast", "kpod-gso-ip4")
KPOD_CSUM = (("ip4-output", "kpod-csum-ip4"), ("ip6-output", "kpod-csum-ip6"))


def enable(vpp: VppClient, sw_if_index: int, arc: str, feature: str, *, enable: bool = True) -> None:
    vpp.call("feature_enable_disable", sw_if_index=sw_if_index, enable=enable, arc_name=arc, feature_name=feature)


def enable_if_loaded(vpp: VppClient, sw_if_index: int, arc: str, feature: str) -> bool:
    """Turn a plugin's feature on; False, and nothing changed, when VPP has no such feature."""
    try:
        enable(vpp, sw_if_index, arc, feature)
    except VppApiError as e:
        if e.retval != Retval.INVALID_VALUE:
            raise
        return False
    return True


def gso(vpp: VppClient, sw_if_index: int, *, enable: bool = True) -> None:
    """VPP's ``gso`` output feature on ``sw_if_index``: VPP segments GSO frames itself before
    the interface, which takes none (a tunnel, an af_packet without checksum/GSO)."""
    vpp.call("feature_gso_enable_disable", sw_if_index=sw_if_index, enable_disable=enable)


__all__ = ["KPOD_CSUM", "KPOD_GSO_FIX", "MESSAGES", "enable", "enable_if_loaded", "gso"]
