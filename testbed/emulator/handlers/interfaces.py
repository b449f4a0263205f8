"""interface.api (and ip.api's per-interface messages): loopbacks, flags, MTU,
tables, unnumbered, addresses, tags, rx mode, MAC, dumps.

Modelled on vnet/interface_api.c, vnet/ethernet/interface.c (loopbacks) and
the per-interface handlers of vnet/ip/ip_api.c. Retvals as VPP's:
VALIDATE_SW_IF_INDEX gives INVALID_SW_IF_INDEX; a loopback instance in use or
out of range gives INVALID_REGISTRATION with sw_if_index ~0; delete_loopback
of anything else gives INVALID_SW_IF_INDEX; an empty tag INVALID_VALUE; a MAC
or rx-mode change the device refuses UNIMPLEMENTED (VPP maps every such
error to it); hw MTU on a non-ethernet interface FEATURE_DISABLED, on a
loopback UNSUPPORTED.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vppagent.vpp.retvals import Retval

from .. import l3
from ..interfaces import RX_MODE_DEFAULT, RX_MODE_POLLING, Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState
from ._common import NO_INDEX, ZERO_MAC, af_of, mac_bytes

HANDLERS = HandlerTable("interfaces")

# Addresses vpp_papi cannot build (prefix length > 32/128) are refused by VPP
# when it adds them to the interface.
DECODE_ERRORS = {"sw_interface_add_del_address": int(Retval.ADDRESS_LENGTH_MISMATCH)}

LOOPBACK_MAX_INSTANCE = 16 * 1024


@dataclass
class LoopbackState(FamilyState):
    """Loopback instance numbers in use (VPP's bm_loopback_instances)."""

    instances: dict[int, int] = field(default_factory=dict)  # instance -> sw_if_index

    def allocate(self, specified: bool, want: int) -> int | None:
        if not specified:
            want = next(i for i in range(LOOPBACK_MAX_INSTANCE + 1) if i not in self.instances)
            return want if want < LOOPBACK_MAX_INSTANCE else None
        if want >= LOOPBACK_MAX_INSTANCE or want in self.instances:
            return None
        return want

    def on_interface_deleted(self, state, iface: Interface) -> None:
        if iface.owner == "loopback":
            self.instances.pop(iface.dev_instance, None)


def _create_loopback(emu, mac, specified: bool, want: int) -> dict:
    st = emu.state(LoopbackState)
    instance = st.allocate(specified, want)
    if instance is None:
        return {"retval": int(Retval.INVALID_REGISTRATION), "sw_if_index": NO_INDEX}
    address = mac_bytes(mac)
    if address == ZERO_MAC:
        address = bytes([0xDE, 0xAD, 0, 0, 0, instance & 0xFF])
    iface = emu.interfaces.add(f"loop{instance}", "Loopback", mac=address,
                               dev_instance=instance, owner="loopback",
                               mtu_settable=False)
    st.instances[instance] = iface.sw_if_index
    return {"sw_if_index": iface.sw_if_index}


@HANDLERS.handler("create_loopback")
def create_loopback(emu, mp):
    return _create_loopback(emu, mp.mac_address, False, 0)


@HANDLERS.handler("create_loopback_instance")
def create_loopback_instance(emu, mp):
    return _create_loopback(emu, mp.mac_address, bool(mp.is_specified), mp.user_instance)


@HANDLERS.handler("delete_loopback")
def delete_loopback(emu, mp):
    iface = emu.interfaces.get(mp.sw_if_index)
    if iface is None or iface.owner != "loopback":
        raise VppRetval(Retval.INVALID_SW_IF_INDEX, "not a loopback")
    emu.interfaces.remove(iface.sw_if_index)
    return {}


@HANDLERS.handler("sw_interface_set_flags")
def sw_interface_set_flags(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    emu.interfaces.set_admin(iface, bool(int(mp.flags) & 1))
    return {}


@HANDLERS.handler("sw_interface_set_mtu")
def sw_interface_set_mtu(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    iface.mtu = [int(m) for m in mp.mtu]
    return {}


@HANDLERS.handler("hw_interface_set_mtu")
def hw_interface_set_mtu(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    emu.interfaces.set_hw_mtu(iface, mp.mtu)
    return {}


@HANDLERS.handler("sw_interface_set_table")
def sw_interface_set_table(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    l3.bind_table(emu.vpp, iface, af_of(mp.is_ipv6), mp.vrf_id)
    return {}


@HANDLERS.handler("sw_interface_get_table")
def sw_interface_get_table(emu, mp):
    iface = emu.interfaces.get(mp.sw_if_index)
    if iface is None:
        return {"retval": int(Retval.INVALID_SW_IF_INDEX), "vrf_id": NO_INDEX}
    return {"vrf_id": iface.table_ids[af_of(mp.is_ipv6)]}


@HANDLERS.handler("sw_interface_set_unnumbered")
def sw_interface_set_unnumbered(emu, mp):
    # The API's field names are backwards: sw_if_index lends its addresses.
    iface = emu.interfaces.require(mp.unnumbered_sw_if_index)
    if mp.is_add and mp.sw_if_index not in emu.interfaces:
        raise VppRetval(Retval.INVALID_SW_IF_INDEX_2, "no interface to borrow from")
    l3.set_unnumbered(emu.vpp, iface, mp.sw_if_index, bool(mp.is_add))
    return {}


@HANDLERS.handler("sw_interface_add_del_address")
def sw_interface_add_del_address(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    if mp.del_all:
        l3.delete_all_addresses(emu.vpp, iface)
    elif mp.prefix is None:
        raise VppRetval(Retval.INVALID_ADDRESS_FAMILY, "unknown address family")
    elif mp.is_add:
        l3.add_address(emu.vpp, iface, mp.prefix)
    else:
        l3.delete_address(emu.vpp, iface, mp.prefix)
    return {}


@HANDLERS.handler("sw_interface_tag_add_del")
def sw_interface_tag_add_del(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    if mp.is_add:
        if not mp.tag:
            raise VppRetval(Retval.INVALID_VALUE, "empty tag")
        iface.tag = mp.tag[:63]
    else:
        iface.tag = ""
    return {}


@HANDLERS.handler("sw_interface_set_rx_mode")
def sw_interface_set_rx_mode(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    mode = int(mp.mode)
    if mode == RX_MODE_DEFAULT:
        mode = RX_MODE_POLLING  # the interfaces' default mode
    if mp.queue_id_valid:
        if mp.queue_id >= len(iface.rx_modes):
            raise VppRetval(Retval.UNIMPLEMENTED, f"unknown queue {mp.queue_id}")
        iface.rx_modes[mp.queue_id] = mode
    else:
        iface.rx_modes = [mode] * len(iface.rx_modes)
    return {}


@HANDLERS.handler("sw_interface_rx_placement_dump")
def sw_interface_rx_placement_dump(emu, mp):
    if mp.sw_if_index == NO_INDEX:
        chosen = list(emu.interfaces)
    else:
        iface = emu.interfaces.get(mp.sw_if_index)
        chosen = [iface] if iface is not None else []
    unplaced = 1 if emu.config.workers else 0
    return [{"sw_if_index": i.sw_if_index, "queue_id": q, "worker_id": i.rx_threads.get(q, unplaced), "mode": m}
            for i in chosen for q, m in enumerate(i.rx_modes)]


@HANDLERS.handler("sw_interface_set_rx_placement")
def sw_interface_set_rx_placement(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    if mp.queue_id >= len(iface.rx_modes):
        raise VppRetval(Retval.UNIMPLEMENTED, f"unknown queue {mp.queue_id}")
    if not mp.is_main and mp.worker_id >= emu.config.workers:
        raise VppRetval(Retval.UNIMPLEMENTED, f"no worker {mp.worker_id}")  # VPP: "please specify valid worker"
    iface.rx_threads[mp.queue_id] = 0 if mp.is_main else 1 + mp.worker_id
    return {}


@HANDLERS.handler("sw_interface_set_mac_address")
def sw_interface_set_mac_address(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    emu.interfaces.set_mac(iface, mac_bytes(mp.mac_address))
    return {}


@HANDLERS.handler("sw_interface_get_mac_address")
def sw_interface_get_mac_address(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    return {"mac_address": iface.mac if iface.is_ethernet and iface.mac else ZERO_MAC}


def interface_details(iface: Interface) -> dict:
    return {
        "sw_if_index": iface.sw_if_index,
        "sup_sw_if_index": iface.sw_if_index,
        "l2_address": iface.mac if iface.is_ethernet and iface.mac else ZERO_MAC,
        "flags": iface.api_flags,
        "type": 0,  # IF_API_TYPE_HARDWARE: the emulator has no sub-interfaces
        "link_duplex": 0,
        "link_speed": 0,
        "link_mtu": min(iface.link_mtu, 0xFFFF),
        "mtu": list(iface.mtu),
        "interface_name": iface.name,
        "interface_dev_type": iface.dev_type,
        "tag": iface.tag,
    }


@HANDLERS.handler("sw_interface_dump")
def sw_interface_dump(emu, mp):
    index = mp.sw_if_index
    # VPP treats sw_if_index 0 like ~0 (all) when no name filter is given.
    if not mp.name_filter_valid and index not in (NO_INDEX, 0):
        iface = emu.interfaces.get(index)
        return [interface_details(iface)] if iface is not None else []
    wanted = mp.name_filter.lower() if mp.name_filter_valid else None
    return [interface_details(i) for i in emu.interfaces
            if wanted is None or wanted in i.name.lower()]


@HANDLERS.handler("sw_interface_ip6_enable_disable")
def sw_interface_ip6_enable_disable(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    if mp.enable:
        rv = l3.ip6_link_enable(emu.vpp, iface)
    else:
        rv = l3.ip6_link_disable(emu.vpp, iface)
    return {"retval": int(rv)}


@HANDLERS.handler("sw_interface_ip6_get_link_local_address")
def sw_interface_ip6_get_link_local_address(emu, mp):
    iface = emu.interfaces.require(mp.sw_if_index)
    if iface.link_local is None:
        raise VppRetval(Retval.IP6_NOT_ENABLED, "IPv6 not enabled")
    return {"ip": iface.link_local}


@HANDLERS.handler("ip_address_dump")
def ip_address_dump(emu, mp):
    iface = emu.interfaces.get(mp.sw_if_index)
    if iface is None or iface.unnumbered_via is not None:
        return []
    return [{"sw_if_index": iface.sw_if_index, "prefix": a}
            for a in iface.addresses_of(af_of(mp.is_ipv6))]


@HANDLERS.handler("ip_unnumbered_dump")
def ip_unnumbered_dump(emu, mp):
    if mp.sw_if_index != NO_INDEX:
        iface = emu.interfaces.get(mp.sw_if_index)
        chosen = [iface] if iface is not None else []
    else:
        chosen = list(emu.interfaces)
    return [{"sw_if_index": i.sw_if_index, "ip_sw_if_index": i.unnumbered_via}
            for i in chosen if i.unnumbered_via is not None]
