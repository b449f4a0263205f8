"""The VPP side of a takeover: the uplink and the host's veth end in VPP, joined.

Owns attaching both Linux interfaces to VPP with af_packet (the uplink keeps
its MAC) and joining them with an L2 cross-connect in each direction, so
every frame between the node and the wire crosses VPP unchanged (ARP, IPv6
ND, DHCP included). The typed af_packet/interface calls come from
``vppagent.vpp``; the two L2 calls below belong in a ``vppagent/vpp/l2.py``
family and are here until it exists.
"""
from __future__ import annotations

from dataclasses import dataclass

from vppagent.vpp import af_packet, interfaces
from vppagent.vpp.client import VppClient


# What bring-up sends; the connection checks exactly these against VPP's table
# (the agent's full list needs plugins bring-up does not).
MESSAGES = ("control_ping", "af_packet_create_v3", "af_packet_delete", "af_packet_dump",
            "sw_interface_set_flags", "sw_interface_set_l2_xconnect", "l2_xconnect_dump")


def required_crcs(defs) -> dict[str, str]:
    """The CRCs of :data:`MESSAGES` and their replies, from the loaded definitions."""
    out = {}
    for name in MESSAGES:
        for n in (name, name + "_reply", name.replace("_dump", "_details")):
            m = defs.messages.get(n)
            if m is not None:
                out[n] = m.crc
    return out


@dataclass(frozen=True)
class Attachment:
    uplink_sw_if_index: int
    host_sw_if_index: int


def set_l2_xconnect(vpp: VppClient, rx_sw_if_index: int, tx_sw_if_index: int, enable: bool = True) -> None:
    vpp.call("sw_interface_set_l2_xconnect", rx_sw_if_index=rx_sw_if_index,
             tx_sw_if_index=tx_sw_if_index, enable=enable)


def l2_xconnects(vpp: VppClient) -> dict[int, int]:
    return {d.rx_sw_if_index: d.tx_sw_if_index for d in vpp.dump("l2_xconnect_dump")}


def attach(vpp: VppClient, uplink: str, uplink_mac: str, vpp_if: str) -> Attachment:
    """Attach ``uplink`` and ``vpp_if`` (both in VPP's netns) and cross-connect them. Idempotent."""
    existing = {a.host_if_name: a.sw_if_index for a in af_packet.dump(vpp)}
    up = existing.get(uplink)
    if up is None:
        up = af_packet.create(vpp, uplink, mac=uplink_mac)
    host = existing.get(vpp_if)
    if host is None:
        host = af_packet.create(vpp, vpp_if)
    set_l2_xconnect(vpp, up, host)
    set_l2_xconnect(vpp, host, up)
    interfaces.set_admin_up(vpp, up)
    interfaces.set_admin_up(vpp, host)
    return Attachment(up, host)


def detach(vpp: VppClient, uplink: str, vpp_if: str) -> None:
    """Undo :func:`attach` (best effort is not enough: errors propagate)."""
    present = {a.host_if_name: a.sw_if_index for a in af_packet.dump(vpp)}
    for name in (uplink, vpp_if):
        if name in present:
            set_l2_xconnect(vpp, present[name], present[name], enable=False)
            af_packet.delete(vpp, name)
