"""af_packet.api: host-<ifname> interfaces on a Linux interface's packet socket.

Modelled on plugins/af_packet/af_packet.c and af_packet_api.c:

- the host interface must exist: VPP looks it up (SIOCGIFINDEX) and fails
  with INVALID_INTERFACE (sw_if_index 0 in the reply). The emulator checks
  the names of its own network namespace (``socket.if_nametoindex``) plus
  the names it was told to pretend exist (``host_interfaces``). It never
  touches the host interface (VPP brings it up and sets its MTU/MAC);
- one VPP interface per host interface: IF_ALREADY_EXISTS, with the
  existing interface's sw_if_index in the reply;
- create_v3's mode must be ETHERNET (1) or IP (2), else INVALID_VALUE with
  sw_if_index ~0; IP mode makes an interface without L2 (no MAC, MTU 0);
- the MAC is the given one, or 02:fe + four random bytes when
  use_random_hw_addr is set; the link is up from creation and follows the
  admin state after; queues: num_rx_queues rx queues in polling mode;
- deleting an unknown host interface name: SYSCALL_ERROR_1.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field

from vppagent.vpp.retvals import Retval

from ..interfaces import RX_MODE_POLLING, HwClass, Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState, IndexPool, VppState
from ._common import NO_INDEX, mac_bytes

HANDLERS = HandlerTable("af_packet")

MODE_ETHERNET = 1
MODE_IP = 2


@dataclass
class AfPacketIf:
    host_if_name: str
    sw_if_index: int
    dev_instance: int
    mode: int


@dataclass
class AfPacketState(FamilyState):
    by_host_name: dict[str, AfPacketIf] = field(default_factory=dict)
    instances: IndexPool = field(default_factory=IndexPool)

    def on_interface_deleted(self, state: VppState, iface: Interface) -> None:
        if iface.owner != "af_packet":
            return
        for name, apif in list(self.by_host_name.items()):
            if apif.sw_if_index == iface.sw_if_index:
                del self.by_host_name[name]
                self.instances.put(apif.dev_instance)


def host_interface_exists(emu, name: str) -> bool:
    if name in emu.config.host_interfaces:
        return True
    try:
        socket.if_nametoindex(name)
    except (OSError, ValueError):
        return False
    return True


def _create(emu, host_if_name: str, mode: int, hw_addr, random_mac: bool,
            rx_queues: int) -> dict:
    st = emu.state(AfPacketState)
    existing = st.by_host_name.get(host_if_name)
    if existing is not None:
        return {"retval": int(Retval.IF_ALREADY_EXISTS), "sw_if_index": existing.sw_if_index}
    if not host_if_name or not host_interface_exists(emu, host_if_name):
        return {"retval": int(Retval.INVALID_INTERFACE), "sw_if_index": 0}
    instance = st.instances.get()
    common = {"dev_instance": instance, "owner": "af_packet", "link_up": True,
              "rx_modes": [RX_MODE_POLLING] * max(rx_queues, 1)}
    name = f"host-{host_if_name}"
    if mode == MODE_IP:
        iface = emu.interfaces.add(name, "af-packet", hw_class=HwClass.IP, **common)
    else:
        mac = emu.vpp.random_mac() if random_mac else mac_bytes(hw_addr)
        iface = emu.interfaces.add(name, "af-packet", mac=mac, **common)
    st.by_host_name[host_if_name] = AfPacketIf(host_if_name, iface.sw_if_index, instance, mode)
    return {"sw_if_index": iface.sw_if_index}


@HANDLERS.handler("af_packet_create")
def af_packet_create(emu, mp):
    return _create(emu, mp.host_if_name, MODE_ETHERNET, mp.hw_addr, bool(mp.use_random_hw_addr), 1)


@HANDLERS.handler("af_packet_create_v2")
def af_packet_create_v2(emu, mp):
    return _create(emu, mp.host_if_name, MODE_ETHERNET, mp.hw_addr,
                   bool(mp.use_random_hw_addr), mp.num_rx_queues)


@HANDLERS.handler("af_packet_create_v3")
def af_packet_create_v3(emu, mp):
    mode = int(mp.mode)
    if mode not in (MODE_ETHERNET, MODE_IP):
        return {"retval": int(Retval.INVALID_VALUE), "sw_if_index": NO_INDEX}
    return _create(emu, mp.host_if_name, mode, mp.hw_addr, bool(mp.use_random_hw_addr),
                   mp.num_rx_queues)


@HANDLERS.handler("af_packet_delete")
def af_packet_delete(emu, mp):
    apif = emu.state(AfPacketState).by_host_name.get(mp.host_if_name)
    if apif is None:
        raise VppRetval(Retval.SYSCALL_ERROR_1, f"no af_packet on {mp.host_if_name}")
    emu.interfaces.remove(apif.sw_if_index)  # the hook forgets the host name
    return {}


@HANDLERS.handler("af_packet_dump")
def af_packet_dump(emu, mp):
    items = sorted(emu.state(AfPacketState).by_host_name.values(), key=lambda a: a.dev_instance)
    return [{"sw_if_index": a.sw_if_index, "host_if_name": a.host_if_name} for a in items]
