"""feature.api: turning a node on a feature arc on or off per interface.

Modelled on vnet/feature/feature_api.c: an unknown sw_if_index answers
INVALID_SW_IF_INDEX; an arc/feature pair VPP has not registered answers
INVALID_VALUE. Registered here: the features the agent enables (our kpod
plugin's nodes, as loaded by the agent's VPP). Enabling twice, or disabling a
feature that is off, is accepted, as VPP's feature config does. What is
enabled is kept per interface and dropped with the interface.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vppagent.vpp.retvals import Retval

from ..registry import HandlerTable, VppRetval
from ..state import FamilyState

HANDLERS = HandlerTable("feature")

# arc -> features a VPP with our plugins has on it (the ones the agent may turn on).
REGISTERED = {
    "ip4-unicast": frozenset({"kpod-gso-ip4"}),
    "ip4-output": frozenset({"kpod-csum-ip4"}),
    "ip6-output": frozenset({"kpod-csum-ip6"}),
}


@dataclass
class FeatureState(FamilyState):
    # (sw_if_index, the interface object) -> (arc, feature): an index VPP reuses starts clean
    enabled: dict[tuple[int, int], set[tuple[str, str]]] = field(default_factory=dict)


@HANDLERS.handler("feature_enable_disable")
def feature_enable_disable(emu, mp):
    iface = emu.interfaces.get(mp.sw_if_index)
    if iface is None:
        raise VppRetval(Retval.INVALID_SW_IF_INDEX, "no such interface")
    arc, feature = mp.arc_name, mp.feature_name
    if feature not in REGISTERED.get(arc, ()):
        raise VppRetval(Retval.INVALID_VALUE, f"no feature {feature} on arc {arc}")
    st = emu.state(FeatureState)
    on = st.enabled.setdefault((mp.sw_if_index, id(iface)), set())
    if mp.enable:
        on.add((arc, feature))
    else:
        on.discard((arc, feature))
    return {}


def enabled(emu, sw_if_index: int) -> set[tuple[str, str]]:
    """What is enabled on ``sw_if_index`` (for tests); nothing once the interface is gone."""
    iface = emu.interfaces.get(sw_if_index)
    if iface is None:
        return set()
    return set(emu.state(FeatureState).enabled.get((sw_if_index, id(iface)), ()))


@HANDLERS.handler("feature_gso_enable_disable")
def feature_gso_enable_disable(emu, mp):
    # gso.api: VALIDATE_SW_IF_INDEX, then vnet_sw_interface_gso_enable_disable (always accepted).
    iface = emu.interfaces.get(mp.sw_if_index)
    if iface is None:
        raise VppRetval(Retval.INVALID_SW_IF_INDEX, "no such interface")
    on = emu.state(FeatureState).enabled.setdefault((mp.sw_if_index, id(iface)), set())
    (on.add if mp.enable_disable else on.discard)(("interface-output", "gso"))
    return {}
