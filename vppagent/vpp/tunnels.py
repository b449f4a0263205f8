"""Tunnels: IP-in-IP and VXLAN tunnel interfaces between nodes.

Owns create/delete/dump of ``ipipN`` and ``vxlan_tunnelN`` interfaces. What
goes through them (routes, IPsec protection, L2 bridging) belongs to the
callers; once created, a tunnel is an ordinary ``sw_if_index`` for
``interfaces``.

VPP semantics worth knowing (26.06):

- ipip: a tunnel is keyed by (src, dst, table, mode); a second create with
  the same key fails with IF_ALREADY_EXISTS (-79). Tunnels are created
  admin-down, MTU 9000. ``instance`` names the interface (``ipip<instance>``).
- vxlan: a tunnel is keyed by (dst, src, src port, encap table, VNI) for IPv4
  and by (dst, src port, encap table, VNI) for IPv6; a second create fails
  with TUNNEL_EXIST (-75). VPP deletes VXLAN tunnels *by that key*, not by
  sw_if_index, so :func:`delete_vxlan` takes the tunnel description. L2
  tunnels are created admin-up. Ports 0 mean VPP's default (4789).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag

from vppagent.iptypes import IpAddress, U32_NONE

from .client import VppClient

MESSAGES = (
    "ipip_add_tunnel",
    "ipip_del_tunnel",
    "ipip_tunnel_dump",
    "vxlan_add_del_tunnel_v3",
    "vxlan_tunnel_v2_dump",
)

ALL = U32_NONE
AUTO_INSTANCE = U32_NONE
NO_INTERFACE = U32_NONE
VXLAN_PORT = 4789


class TunnelMode(IntEnum):
    P2P = 0
    MP = 1  # point to multipoint: dst must be unset, peers come from TEIB


class EncapDecapFlags(IntFlag):
    NONE = 0
    ENCAP_COPY_DF = 1
    ENCAP_SET_DF = 2
    ENCAP_COPY_DSCP = 4
    ENCAP_COPY_ECN = 8
    DECAP_COPY_ECN = 16
    ENCAP_INNER_HASH = 32
    ENCAP_COPY_HOP_LIMIT = 64
    ENCAP_COPY_FLOW_LABEL = 128


class VxlanDecapNext(IntEnum):
    DROP = 0
    L2_INPUT = 1


@dataclass(frozen=True)
class IpipSpec:
    src: IpAddress
    dst: IpAddress
    table_id: int = 0  # the table the outer (encapsulated) packets use
    instance: int = AUTO_INSTANCE
    mode: TunnelMode = TunnelMode.P2P
    flags: EncapDecapFlags = EncapDecapFlags.NONE
    dscp: int = 0

    @staticmethod
    def of(src: str | IpAddress, dst: str | IpAddress, **kw) -> "IpipSpec":
        return IpipSpec(ipaddress.ip_address(src), ipaddress.ip_address(dst), **kw)


@dataclass(frozen=True)
class IpipTunnel:
    sw_if_index: int
    spec: IpipSpec  # as VPP reports it: instance is the actual one


@dataclass(frozen=True)
class VxlanSpec:
    src: IpAddress
    dst: IpAddress
    vni: int
    src_port: int = 0  # 0: VPP's default (4789)
    dst_port: int = 0
    encap_table_id: int = 0
    instance: int = AUTO_INSTANCE
    decap_next: VxlanDecapNext | int = VxlanDecapNext.L2_INPUT
    mcast_sw_if_index: int = NO_INTERFACE
    is_l3: bool = False  # L3 tunnel: no Ethernet header inside

    def __post_init__(self) -> None:
        if not 0 <= self.vni < 1 << 24:
            raise ValueError(f"VXLAN VNI out of range: {self.vni}")

    @staticmethod
    def of(src: str | IpAddress, dst: str | IpAddress, vni: int, **kw) -> "VxlanSpec":
        return VxlanSpec(ipaddress.ip_address(src), ipaddress.ip_address(dst), vni, **kw)


@dataclass(frozen=True)
class VxlanTunnel:
    sw_if_index: int
    spec: VxlanSpec  # as VPP reports it (is_l3 is not in the 26.06 dump: False)


def _api_ipip(spec: IpipSpec) -> dict:
    return {
        "instance": spec.instance,
        "src": spec.src,
        "dst": spec.dst,
        "sw_if_index": NO_INTERFACE,
        "table_id": spec.table_id,
        "flags": int(spec.flags),
        "mode": int(spec.mode),
        "dscp": spec.dscp,
    }


def create_ipip(vpp: VppClient, spec: IpipSpec) -> int:
    """Create an IP-in-IP tunnel interface; return its sw_if_index."""
    return vpp.call("ipip_add_tunnel", tunnel=_api_ipip(spec)).sw_if_index


def delete_ipip(vpp: VppClient, sw_if_index: int) -> None:
    vpp.call("ipip_del_tunnel", sw_if_index=sw_if_index)


def dump_ipip(vpp: VppClient, sw_if_index: int = ALL) -> list[IpipTunnel]:
    out = []
    for d in vpp.dump("ipip_tunnel_dump", sw_if_index=sw_if_index):
        t = d.tunnel
        spec = IpipSpec(t.src, t.dst, t.table_id, t.instance, TunnelMode(t.mode),
                        EncapDecapFlags(t.flags), int(t.dscp))
        out.append(IpipTunnel(t.sw_if_index, spec))
    return out


def _api_vxlan(spec: VxlanSpec, is_add: bool) -> dict:
    return {
        "is_add": is_add,
        "instance": spec.instance,
        "src_address": spec.src,
        "dst_address": spec.dst,
        "src_port": spec.src_port,
        "dst_port": spec.dst_port,
        "mcast_sw_if_index": spec.mcast_sw_if_index,
        "encap_vrf_id": spec.encap_table_id,
        "decap_next_index": int(spec.decap_next),
        "vni": spec.vni,
        "is_l3": spec.is_l3,
    }


def create_vxlan(vpp: VppClient, spec: VxlanSpec) -> int:
    """Create a VXLAN tunnel interface; return its sw_if_index."""
    return vpp.call("vxlan_add_del_tunnel_v3", **_api_vxlan(spec, True)).sw_if_index


def delete_vxlan(vpp: VppClient, tunnel: VxlanSpec | VxlanTunnel) -> int:
    """Delete the VXLAN tunnel with this key; return the sw_if_index it had."""
    spec = tunnel.spec if isinstance(tunnel, VxlanTunnel) else tunnel
    return vpp.call("vxlan_add_del_tunnel_v3", **_api_vxlan(spec, False)).sw_if_index


def dump_vxlan(vpp: VppClient, sw_if_index: int = ALL) -> list[VxlanTunnel]:
    out = []
    for d in vpp.dump("vxlan_tunnel_v2_dump", sw_if_index=sw_if_index):
        try:
            decap: VxlanDecapNext | int = VxlanDecapNext(d.decap_next_index)
        except ValueError:
            decap = d.decap_next_index
        spec = VxlanSpec(d.src_address, d.dst_address, d.vni, d.src_port, d.dst_port,
                         d.encap_vrf_id, d.instance, decap, d.mcast_sw_if_index)
        out.append(VxlanTunnel(d.sw_if_index, spec))
    return out


def with_defaults(spec: VxlanSpec) -> VxlanSpec:
    """``spec`` with the ports VPP fills in, so that it compares equal to a dump."""
    return replace(spec, src_port=spec.src_port or VXLAN_PORT, dst_port=spec.dst_port or VXLAN_PORT)
