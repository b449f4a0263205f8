"""ipip.api and vxlan.api: IP-in-IP and VXLAN tunnel interfaces.

Modelled on vnet/ipip/ipip_api.c + ipip.c and plugins/vxlan/vxlan_api.c +
vxlan.c (VPP 26.06):

- ipip: src and dst of different families: INVALID_PROTOCOL; equal:
  SAME_SRC_DST; unknown flag bits or mode: INVALID_VALUE_2; table missing:
  NO_SUCH_FIB; MP with a dst: INVALID_DST_ADDRESS; the same (src, dst,
  table, mode) again: IF_ALREADY_EXISTS with the existing sw_if_index in the
  reply; an instance in use: INSTANCE_IN_USE. Interfaces are ``ipip<inst>``,
  device "IPIP tunnel device", admin down, link following admin, MTU 9000;
  deleting anything but an ipip tunnel: NO_SUCH_ENTRY.
- vxlan (v3): table missing: NO_SUCH_FIB; mixed families: INVALID_VALUE;
  src == dst: SAME_SRC_DST; multicast dst without a valid mcast interface:
  INVALID_SW_IF_INDEX; ports 0 become 4789; decap_next ~0 becomes l2-input,
  beyond the node's nexts INVALID_DECAP_NEXT. Tunnels are keyed as VPP keys
  them (IPv4: dst, src unless multicast, src port, table, VNI; IPv6: dst,
  src port, table, VNI): a second add is TUNNEL_EXIST, a delete of an absent
  key NO_SUCH_ENTRY; deletion goes by key and answers the sw_if_index. L2
  tunnels are Ethernet interfaces ``vxlan_tunnel<inst>`` created admin up.
  Addresses are ip46: an IPv6 address whose first 96 bits are zero is an
  IPv4 address to vxlan (keyed, checked and dumped as such).
- Failed creates answer sw_if_index ~0, as REPLY_MACRO2 leaves it.

Not modelled: the FIB entries VPP tracks for tunnel destinations, TEIB
entries of MP tunnels, 6RD, VXLAN multicast groups and flow offload.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from vppagent.vpp.retvals import Retval

from ..interfaces import HwClass
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState, IndexPool
from ._common import NO_INDEX
from ._replies import ip46, on_failure

HANDLERS = HandlerTable("tunnels")

# VPP error codes the shared Retval enum does not name.
INVALID_DST_ADDRESS = Retval.INVALID_DST_ADDRESS
SAME_SRC_DST = Retval.SAME_SRC_DST
INVALID_DECAP_NEXT = Retval.INVALID_DECAP_NEXT

_TUNNEL_ENCAP_DECAP_FLAG_MASK = 0xFF
_TUNNEL_MODE_P2P, _TUNNEL_MODE_MP = 0, 1
_IPIP_MTU = 9000
_VXLAN_PORT = 4789
# vxlan4-input/vxlan6-input nexts: error-drop, l2-input.
_VXLAN_N_DECAP_NEXT = 2
_VXLAN_NEXT_L2_INPUT = 1

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _af(addr: IPAddress) -> int:
    return addr.version


def _zero(af: int) -> IPAddress:
    return ipaddress.IPv4Address(0) if af == 4 else ipaddress.IPv6Address(0)


@dataclass
class IpipTunnel:
    index: int
    user_instance: int
    sw_if_index: int
    src: IPAddress
    dst: IPAddress
    table_id: int
    flags: int
    mode: int
    dscp: int

    @property
    def key(self) -> tuple:
        return (_af(self.src), self.mode, self.src, self.dst, self.table_id)


@dataclass
class VxlanTunnel:
    index: int
    user_instance: int
    sw_if_index: int
    src: IPAddress
    dst: IPAddress
    src_port: int
    dst_port: int
    table_id: int
    vni: int
    decap_next: int
    mcast_sw_if_index: int
    is_l3: bool


@dataclass
class TunnelState(FamilyState):
    ipip_pool: IndexPool = field(default_factory=IndexPool)
    ipip: dict[int, IpipTunnel] = field(default_factory=dict)  # by pool index
    ipip_instances: set[int] = field(default_factory=set)
    vxlan_pool: IndexPool = field(default_factory=IndexPool)
    vxlan: dict[int, VxlanTunnel] = field(default_factory=dict)  # by pool index
    vxlan_by_key: dict[tuple, int] = field(default_factory=dict)
    vxlan_instances: set[int] = field(default_factory=set)

    def ipip_by_sw_if_index(self, sw_if_index: int) -> IpipTunnel | None:
        for t in self.ipip.values():
            if t.sw_if_index == sw_if_index:
                return t
        return None

    def vxlan_by_sw_if_index(self, sw_if_index: int) -> VxlanTunnel | None:
        for t in self.vxlan.values():
            if t.sw_if_index == sw_if_index:
                return t
        return None


# -- ipip -------------------------------------------------------------------


def _ipip_details(t: IpipTunnel) -> dict:
    return {"tunnel": {
        "instance": t.user_instance,
        "src": t.src,
        "dst": t.dst,
        "sw_if_index": t.sw_if_index,
        "table_id": t.table_id,
        "flags": t.flags,
        "mode": t.mode,
        "dscp": t.dscp,
    }}


@HANDLERS.handler("ipip_add_tunnel")
@on_failure(sw_if_index=NO_INDEX)
def ipip_add_tunnel(emu, mp):
    st = emu.state(TunnelState)
    t = mp.tunnel
    src, dst = t.src, t.dst
    if _af(src) != _af(dst):
        raise VppRetval(Retval.INVALID_PROTOCOL, "src and dst of different families")
    if src == dst:
        raise VppRetval(SAME_SRC_DST, "src == dst")
    if int(t.flags) & ~_TUNNEL_ENCAP_DECAP_FLAG_MASK:
        raise VppRetval(Retval.INVALID_VALUE_2, "unknown encap/decap flags")
    mode = int(t.mode)
    if mode not in (_TUNNEL_MODE_P2P, _TUNNEL_MODE_MP):
        raise VppRetval(Retval.INVALID_VALUE_2, f"unknown tunnel mode {mode}")
    emu.fib.require(_af(src), t.table_id)
    if mode == _TUNNEL_MODE_MP and not dst.is_unspecified:
        raise VppRetval(INVALID_DST_ADDRESS, "a multipoint tunnel has no dst")
    key = (_af(src), mode, src, dst, t.table_id)
    for existing in st.ipip.values():
        if existing.key == key:
            # ipip_add_tunnel hands back the existing tunnel's index with the error.
            return {"retval": int(Retval.IF_ALREADY_EXISTS), "sw_if_index": existing.sw_if_index}
    index = st.ipip_pool.get()
    instance = index if t.instance == NO_INDEX else t.instance
    if instance in st.ipip_instances:
        st.ipip_pool.put(index)
        raise VppRetval(Retval.INSTANCE_IN_USE, f"ipip instance {instance} in use")
    st.ipip_instances.add(instance)
    # VPP leaves the max frame size 0 and sets the overhead to the outer
    # header, so sw_interface_dump's u16 link_mtu wraps to 65536 - overhead;
    # the shared table clamps at 0, hence the explicit 65536 here.
    overhead = 20 if _af(src) == 4 else 40
    iface = emu.interfaces.add(f"ipip{instance}", "IPIP tunnel device", hw_class=HwClass.IP,
                               dev_instance=index, owner="ipip", mtu=[_IPIP_MTU, 0, 0, 0],
                               frame_overhead=overhead, max_frame_size=1 << 16)
    st.ipip[index] = IpipTunnel(index, instance, iface.sw_if_index, src, dst, t.table_id,
                                int(t.flags), mode, int(t.dscp))
    return {"sw_if_index": iface.sw_if_index}


@HANDLERS.handler("ipip_del_tunnel")
def ipip_del_tunnel(emu, mp):
    st = emu.state(TunnelState)
    t = st.ipip_by_sw_if_index(mp.sw_if_index)
    if t is None:
        raise VppRetval(Retval.NO_SUCH_ENTRY, f"no ipip tunnel at {mp.sw_if_index}")
    emu.interfaces.remove(t.sw_if_index)
    st.ipip_instances.discard(t.user_instance)
    del st.ipip[t.index]
    st.ipip_pool.put(t.index)
    return {}


@HANDLERS.handler("ipip_tunnel_dump")
def ipip_tunnel_dump(emu, mp):
    st = emu.state(TunnelState)
    if mp.sw_if_index == NO_INDEX:
        return [_ipip_details(st.ipip[i]) for i in sorted(st.ipip)]
    t = st.ipip_by_sw_if_index(mp.sw_if_index)
    return [_ipip_details(t)] if t is not None else []


# -- vxlan ------------------------------------------------------------------


def _vxlan_key(src: IPAddress, dst: IPAddress, src_port: int, table_id: int, vni: int) -> tuple:
    if _af(dst) == 6:
        return (6, dst, src_port, table_id, vni)
    return (4, dst, None if dst.is_multicast else src, src_port, table_id, vni)


def _vxlan_details(t: VxlanTunnel) -> dict:
    return {
        "sw_if_index": t.sw_if_index,
        "instance": t.user_instance,
        "src_address": t.src,
        "dst_address": t.dst,
        "src_port": t.src_port,
        "dst_port": t.dst_port,
        "mcast_sw_if_index": t.mcast_sw_if_index,
        "encap_vrf_id": t.table_id,
        "decap_next_index": t.decap_next,
        "vni": t.vni,
    }


@HANDLERS.handler("vxlan_add_del_tunnel_v3")
@on_failure(sw_if_index=NO_INDEX)
def vxlan_add_del_tunnel_v3(emu, mp):
    st = emu.state(TunnelState)
    # vxlan decodes into ip46 addresses: ::a.b.c.d is an IPv4 tunnel.
    src, dst = ip46(mp.src_address), ip46(mp.dst_address)
    af = _af(src)
    emu.fib.require(af, mp.encap_vrf_id)
    if _af(src) != _af(dst):
        raise VppRetval(Retval.INVALID_VALUE, "src and dst of different families")
    if src == dst:
        raise VppRetval(SAME_SRC_DST, "src == dst")
    if dst.is_multicast and mp.mcast_sw_if_index not in emu.interfaces:
        raise VppRetval(Retval.INVALID_SW_IF_INDEX, "multicast dst needs an mcast interface")
    src_port = mp.src_port or _VXLAN_PORT
    dst_port = mp.dst_port or _VXLAN_PORT
    key = _vxlan_key(src, dst, src_port, mp.encap_vrf_id, mp.vni)
    if not mp.is_add:
        index = st.vxlan_by_key.get(key)
        if index is None:
            raise VppRetval(Retval.NO_SUCH_ENTRY, "no vxlan tunnel with this key")
        t = st.vxlan[index]
        emu.interfaces.remove(t.sw_if_index)
        st.vxlan_instances.discard(t.user_instance)
        del st.vxlan_by_key[key]
        del st.vxlan[index]
        st.vxlan_pool.put(index)
        return {"sw_if_index": t.sw_if_index}
    if key in st.vxlan_by_key:
        raise VppRetval(Retval.TUNNEL_EXIST, "a vxlan tunnel with this key exists")
    decap_next = _VXLAN_NEXT_L2_INPUT if mp.decap_next_index == NO_INDEX else mp.decap_next_index
    if decap_next >= _VXLAN_N_DECAP_NEXT:
        raise VppRetval(INVALID_DECAP_NEXT, f"decap_next_index {decap_next}")
    index = st.vxlan_pool.get()
    instance = index if mp.instance == NO_INDEX else mp.instance
    if instance in st.vxlan_instances:
        st.vxlan_pool.put(index)
        raise VppRetval(Retval.INSTANCE_IN_USE, f"vxlan instance {instance} in use")
    st.vxlan_instances.add(instance)
    name = f"vxlan_tunnel{instance}"
    if mp.is_l3:
        iface = emu.interfaces.add(name, "VXLAN", hw_class=HwClass.IP, dev_instance=index,
                                   owner="vxlan")
    else:
        iface = emu.interfaces.add(name, "VXLAN", dev_instance=index, owner="vxlan")
    emu.interfaces.set_admin(iface, True)
    st.vxlan[index] = VxlanTunnel(index, instance, iface.sw_if_index, src, dst, src_port, dst_port,
                                  mp.encap_vrf_id, mp.vni, decap_next, mp.mcast_sw_if_index,
                                  bool(mp.is_l3))
    st.vxlan_by_key[key] = index
    return {"sw_if_index": iface.sw_if_index}


@HANDLERS.handler("vxlan_tunnel_v2_dump")
def vxlan_tunnel_v2_dump(emu, mp):
    st = emu.state(TunnelState)
    if mp.sw_if_index == NO_INDEX:
        return [_vxlan_details(st.vxlan[i]) for i in sorted(st.vxlan)]
    t = st.vxlan_by_sw_if_index(mp.sw_if_index)
    return [_vxlan_details(t)] if t is not None else []


def tunnel_endpoints(emu, sw_if_index: int) -> tuple[IPAddress, IPAddress] | None:
    """(src, dst) of an ipip tunnel, for IPsec protection (ipip's ip_tun_desc)."""
    t = emu.state(TunnelState).ipip_by_sw_if_index(sw_if_index)
    return (t.src, t.dst) if t is not None else None
