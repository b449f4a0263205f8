"""The emulated interface table (vnet's sw/hw interfaces, folded into one).

Owns: sw_if_index allocation (``local0`` is 0; freed indices are reused,
last freed first, as vnet's pool does), each interface's name, device type,
MAC, admin/link state, MTUs, tag, rx queue modes, and interface deletion
with everything VPP does on the way (admin down, addresses removed, family
hooks, tables unbound). Layer-3 configuration (addresses, tables,
unnumbered, IPv6 link) lives in :mod:`.l3`.

API for families that create interfaces (tap, memif, tunnels, wireguard...)::

    iface = emu.interfaces.add("wg0", "wireguard", hw_class=HwClass.IP,
                               link_up=True, owner="wireguard")
    iface = emu.interfaces.require(sw_if_index)   # VppRetval(INVALID_SW_IF_INDEX)
    emu.interfaces.remove(iface.sw_if_index)      # full VPP-like teardown

``add`` takes any :class:`Interface` field as a keyword (``tag``,
``link_up``, ``link_follows_admin``, ``rx_modes``, ``mtu_settable``...).
Ethernet interfaces get VPP's defaults: frame overhead 22, max frame size
9022, sw MTU ``[9000, 0, 0, 0]`` (L3/IP4/IP6/MPLS, as ``show int`` shows
9000/0/0/0) and a random 02:fe:xx:xx:xx:xx MAC when none is given.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Iterator, Union

from vppagent.vpp.retvals import Retval

from .registry import VppRetval

if TYPE_CHECKING:
    from .state import VppState

log = logging.getLogger(__name__)

IfAddress = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]

ETHERNET_FRAME_OVERHEAD = 22  # ethernet header + two VLAN tags
ETHERNET_DEFAULT_MTU = 9000

IF_STATUS_ADMIN_UP = 1
IF_STATUS_LINK_UP = 2

RX_MODE_POLLING = 1
RX_MODE_DEFAULT = 4


class HwClass(Enum):
    ETHERNET = "ethernet"
    IP = "ip"  # point-to-point, no L2 (tun, memif or af_packet in IP mode)
    LOCAL = "local"  # local0 only


@dataclass(eq=False)
class Interface:
    sw_if_index: int
    name: str
    dev_type: str  # the device class name VPP reports ("Loopback", "af-packet"...)
    hw_class: HwClass = HwClass.ETHERNET
    mac: bytes | None = None
    dev_instance: int = 0
    owner: str = ""  # the family that created it
    tag: str = ""
    admin_up: bool = False
    link_up: bool = False
    # The device brings the link up/down with the admin state (loopback,
    # af_packet, tap); memif's link needs a peer, local0 has none.
    link_follows_admin: bool = True
    mtu: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # L3, IP4, IP6, MPLS
    max_frame_size: int = 0
    frame_overhead: int = 0
    # The device can change its max frame size (loopback cannot: UNSUPPORTED).
    mtu_settable: bool = True
    rx_modes: list[int] = field(default_factory=list)  # one per rx queue
    rx_threads: dict[int, int] = field(default_factory=dict)  # queue -> thread index, once placed
    table_ids: dict[int, int] = field(default_factory=lambda: {4: 0, 6: 0})
    unnumbered_via: int | None = None
    addresses: list[IfAddress] = field(default_factory=list)
    ip6_link_locks: int = 0
    link_local: ipaddress.IPv6Address | None = None
    # FIB entries this interface's addresses put in (l3 keeps it in sync).
    routes: dict[tuple, Any] = field(default_factory=dict, repr=False)

    @property
    def api_flags(self) -> int:
        return (IF_STATUS_ADMIN_UP if self.admin_up else 0) | (IF_STATUS_LINK_UP if self.link_up else 0)

    @property
    def link_mtu(self) -> int:
        return max(self.max_frame_size - self.frame_overhead, 0)

    @property
    def is_ethernet(self) -> bool:
        return self.hw_class is HwClass.ETHERNET

    def addresses_of(self, af: int) -> list[IfAddress]:
        return [a for a in self.addresses if a.version == af]


_FIELDS = {f.name for f in dataclasses.fields(Interface)}


class InterfaceTable:
    """All interfaces of the emulated VPP, by sw_if_index."""

    def __init__(self, state: "VppState"):
        from .state import IndexPool

        self._state = state
        self._pool = IndexPool()
        self._by_index: dict[int, Interface] = {}
        self.add("local0", "local", hw_class=HwClass.LOCAL, link_follows_admin=False,
                 mtu_settable=False, owner="vnet")

    # -- lookup -------------------------------------------------------------

    def get(self, sw_if_index: int) -> Interface | None:
        return self._by_index.get(sw_if_index)

    def require(self, sw_if_index: int, retval: int = Retval.INVALID_SW_IF_INDEX) -> Interface:
        """The interface, or VppRetval(retval) as VPP's VALIDATE_SW_IF_INDEX."""
        iface = self._by_index.get(sw_if_index)
        if iface is None:
            raise VppRetval(retval, f"no interface {sw_if_index}")
        return iface

    def by_name(self, name: str) -> Interface | None:
        for iface in self._by_index.values():
            if iface.name == name:
                return iface
        return None

    def __iter__(self) -> Iterator[Interface]:
        return iter(sorted(self._by_index.values(), key=lambda i: i.sw_if_index))

    def __len__(self) -> int:
        return len(self._by_index)

    def __contains__(self, sw_if_index: object) -> bool:
        return sw_if_index in self._by_index

    # -- lifecycle ----------------------------------------------------------

    def add(self, name: str, dev_type: str, *, mac: bytes | None = None,
            hw_class: HwClass = HwClass.ETHERNET, **attrs: Any) -> Interface:
        """Create an interface at the next free sw_if_index (admin down)."""
        unknown = set(attrs) - _FIELDS
        if unknown:
            raise TypeError(f"unknown Interface fields: {sorted(unknown)}")
        iface = Interface(self._pool.get(), name, dev_type, hw_class=hw_class)
        if hw_class is HwClass.ETHERNET:
            iface.mac = bytes(mac) if mac is not None else self._state.random_mac()
            iface.frame_overhead = ETHERNET_FRAME_OVERHEAD
            iface.max_frame_size = ETHERNET_DEFAULT_MTU + ETHERNET_FRAME_OVERHEAD
            iface.mtu = [ETHERNET_DEFAULT_MTU, 0, 0, 0]
        for key, value in attrs.items():
            setattr(iface, key, value)
        self._by_index[iface.sw_if_index] = iface
        log.debug("interface created", extra={"sw_if_index": iface.sw_if_index, "if_name": name})
        self._state.notify("on_interface_added", iface)
        return iface

    def remove(self, sw_if_index: int) -> Interface:
        """Delete an interface the way vnet does; returns the deleted record."""
        from . import l3

        iface = self.require(sw_if_index)
        if sw_if_index == 0:
            raise VppRetval(Retval.INVALID_SW_IF_INDEX, "local0 cannot be deleted")
        iface.tag = ""
        self.set_admin(iface, False)
        iface.link_up = False
        l3.delete_all_addresses(self._state, iface)
        l3.release_ip6_link(self._state, iface)
        self._state.notify("on_interface_deleted", iface)
        for af in (4, 6):
            if iface.table_ids[af] != 0:
                self._state.fib.unlock(af, iface.table_ids[af], "interface")
                iface.table_ids[af] = 0
        del self._by_index[sw_if_index]
        self._pool.put(sw_if_index)
        log.debug("interface deleted", extra={"sw_if_index": sw_if_index, "if_name": iface.name})
        return iface

    # -- state changes ------------------------------------------------------

    def set_admin(self, iface: Interface, up: bool) -> None:
        from . import l3

        if iface.admin_up == up:
            return
        iface.admin_up = up
        if iface.link_follows_admin:
            iface.link_up = up
        # Interface-address routes exist only while the interface is up.
        l3.sync_routes(self._state, iface)
        self._state.notify("on_admin_change", iface, up)

    def set_hw_mtu(self, iface: Interface, mtu: int) -> None:
        """hw_interface_set_mtu: change the max frame size; sw L3 MTU follows."""
        if not iface.is_ethernet:
            raise VppRetval(Retval.FEATURE_DISABLED, "not an ethernet interface")
        frame = mtu + iface.frame_overhead
        if frame == iface.max_frame_size:
            return
        if not iface.mtu_settable:
            raise VppRetval(Retval.UNSUPPORTED, "driver cannot change the max frame size")
        iface.max_frame_size = frame
        iface.mtu[0] = mtu

    def set_mac(self, iface: Interface, mac: bytes) -> None:
        if not iface.is_ethernet:
            # vnet_hw_interface_change_mac_address fails; the API says UNIMPLEMENTED.
            raise VppRetval(Retval.UNIMPLEMENTED, "interface has no L2 address")
        # The IPv6 link-local address derived from the old MAC stays, as in VPP.
        iface.mac = bytes(mac)
