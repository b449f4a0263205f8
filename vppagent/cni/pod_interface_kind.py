"""The VPP side of a pod: the reconciler kinds ``pod-interface`` and ``pod-route``.

Owns: ``PodInterface`` (one pod interface as a value: driver, host-side
name, VPP MAC, MTU, table, the gateway loopback it borrows its address
from, the static neighbours of the pod's addresses) and its descriptor;
the pods' gateway loopback value; the ``pod-route`` route kind (host
routes to pod addresses through their interface).

Why this shape: the pod sees one gateway, a link-local address
(169.254.1.1, fe80::1) it reaches with a permanent neighbour entry for
VPP's MAC, so VPP needs no address per pod. VPP's side is *unnumbered*
to one loopback holding 169.254.1.1/32 (that enables IPv4 on it and
sources VPP's own packets), has IPv6 enabled, a static neighbour for
each pod address (VPP never ARPs for a pod) and a host route per pod
address. tun and memif interfaces are L3: no MAC, no neighbours.

Ownership scheme: every pod interface carries the tag
``vppagent:pod:<container id[:32]>/<ifname>`` (63 bytes at most); the
tag suffix is the object's key, so a restarted agent finds its pods'
interfaces whatever their sw_if_index. Pod routes are owned by prefix:
host routes inside this node's pod CIDRs in the pod table.

Must not touch: the pod's Linux side (``linux.py``), IPAM, interfaces
without our tag (those a crash left untagged are ``orphan_kind.py``'s).
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vppagent.cni import pool
from vppagent.model.podnet import Driver
from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Key, Resolver
from vppagent.kinds.loopback_kind import KIND as LOOPBACK_KIND, Loopback
from vppagent.kinds.route_kind import Hop, OwnedRoute, RouteDescriptor
from vppagent.services import snat_kind
from vppagent.vpp import af_packet, interfaces, memif, neighbors, tap
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval
from vppagent.iptypes import IpNetwork

log = logging.getLogger(__name__)

KIND = "pod-interface"
ROUTE_KIND = "pod-route"
TAG_PREFIX = "vppagent:pod:"
GATEWAY4 = "169.254.1.1"
GATEWAY6 = "fe80::1"
GATEWAY_NAME = "pod-gateway"
_TAG_MAX = 63


def gateway_loopback(table_id: int) -> Loopback:
    return Loopback(GATEWAY_NAME, True, (f"{GATEWAY4}/32",), table_id)


def interface_name(container_id: str, ifname: str) -> str:
    """The key and tag suffix of a pod interface (a container id is 64 hex digits; 32 are unique enough)."""
    name = f"{container_id[:32]}/{ifname}"
    if len(TAG_PREFIX) + len(name) > _TAG_MAX:
        raise ValueError(f"interface name {ifname!r} too long for a VPP tag")
    return name


HOST_IFNAME = re.compile(r"vpa[0-9a-f]{12}")
# A pod's memif socket: in VPP's abstract namespace, inside the pod's netns.
MEMIF_SOCKET_PREFIX = "abstract:vppagent/"


def memif_socket(memif_ifname: str, netns: str) -> str:
    return f"{MEMIF_SOCKET_PREFIX}{memif_ifname},netns_name={netns}"


def host_ifname(container_id: str, ifname: str) -> str:
    """The Linux name of the veth end VPP attaches to: stable, unique, 15 characters."""
    return "vpa" + hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()[:12]


def vpp_mac(container_id: str, ifname: str) -> str:
    """VPP's MAC on a pod interface, known before the interface exists (the pod's gateway entry needs it)."""
    h = hashlib.sha256(f"mac/{container_id}/{ifname}".encode()).digest()
    return "02:fe:" + ":".join(f"{b:02x}" for b in h[:4])


@dataclass(frozen=True)
class PodInterface:
    name: str                       # interface_name(): the key and tag suffix
    driver: Driver
    host_ifname: str                # veth host end, tun name in the pod, or memif socket file
    mac: str                        # VPP's MAC; "" for L3 interfaces (tun, memif)
    mtu: int
    table_id: int
    gateway: Key | None             # the loopback it is unnumbered to
    neighbors: tuple[tuple[str, str], ...] = ()  # (pod address, pod MAC), sorted
    # tun only: the pod netns VPP creates the tun in. VPP does not report it,
    # so it takes no part in equality (a restarted agent adopts the tun).
    netns: str = field(default="", compare=False)
    # Services: the cnat feature on the interface (VIPs are translated only on
    # interfaces that have it) and its SNAT maps. Not read back: VPP has no dump of them.
    cnat: bool = field(default=False, compare=False)
    snat: bool = field(default=False, compare=False)
    # veth pods that keep their offloads: kpod's IPv4 GSO fix-up (``pool.enable_gso_fix``). Not read back.
    gso_fix: bool = field(default=False, compare=False)
    # veth only: the sw_if_index of the spare (``pool.py``) VPP already attached to
    # ``host_ifname``, to configure instead of attaching anew. A hint for create only.
    adopt: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted((str(ipaddress.ip_address(ip)), mac.lower()) for ip, mac in self.neighbors))
        if ordered != self.neighbors:
            object.__setattr__(self, "neighbors", ordered)

    @property
    def key(self) -> Key:
        return Key(KIND, self.name)


class PodInterfaceDescriptor(VppKind):
    """Pod interfaces by tag. Not batchable: create is a sequence of dependent calls."""

    kind = KIND
    retrieve_after: tuple[str, ...] = (LOOPBACK_KIND,)

    def __init__(self, *, rings: pool.Rings = pool.Rings()):
        self.rings = rings

    def key(self, value: PodInterface) -> str:
        return value.name

    def dependencies(self, value: PodInterface) -> Iterable[Key]:
        return pool.base_dependencies(value.gateway, value.snat)

    # -- create / delete --------------------------------------------------------

    def create(self, vpp: VppClient, value: PodInterface, resolver: Resolver) -> int:
        sw_if_index, ready = self._create_device(vpp, value)
        try:
            if value.driver is not Driver.TUN:  # a tun is tagged by its create (see orphan_kind)
                interfaces.set_tag(vpp, sw_if_index, TAG_PREFIX + value.name)
            if not ready:
                pool.base_config(vpp, sw_if_index, pool.BaseConfig(
                    value.mtu, value.table_id, resolver.handle(value.gateway) if value.gateway is not None else None,
                    value.cnat, value.snat, value.gso_fix))
            for ip, mac in value.neighbors:
                neighbors.add(vpp, neighbors.Neighbor(sw_if_index, ipaddress.ip_address(ip), mac))
            interfaces.set_admin_up(vpp, sw_if_index)
        except Exception:
            # Never leave a half-configured interface: the retry creates it afresh.
            self._delete_device(vpp, value, sw_if_index)
            raise
        return sw_if_index

    def _create_device(self, vpp: VppClient, value: PodInterface) -> tuple[int, bool]:
        """The interface, and whether it already has its base configuration (a spare's)."""
        if value.driver is Driver.VETH:
            if value.adopt is not None:
                spare = interfaces.get(vpp, value.adopt)
                if spare is not None and spare.tag == pool.TAG_PREFIX + value.host_ifname:
                    return value.adopt, True
                log.info("spare interface not found; attaching the veth anew",
                         extra={"host_ifname": value.host_ifname, "sw_if_index": value.adopt})
            return pool.attach_af_packet(vpp, value.host_ifname, value.mac, value.mtu, self.rings), False
        if value.driver is Driver.TUN:
            return tap.create(vpp, tap.TapSpec(host_if_name=value.host_ifname, host_namespace=value.netns or None,
                                               tun=True, host_mtu=value.mtu, tag=TAG_PREFIX + value.name)), False
        socket_id = memif.add_socket(vpp, value.host_ifname)
        try:
            return memif.create(vpp, memif.MemifSpec(socket_id=socket_id, role=memif.Role.MASTER,
                                                     mode=memif.Mode.IP)), False
        except Exception:
            memif.del_socket(vpp, socket_id)
            raise

    def can_update(self, old: PodInterface, new: PodInterface) -> bool:
        return False  # a changed pod interface is re-created (it only changes after a crash mid-ADD)

    def update(self, vpp: VppClient, old: PodInterface, handle: Any, new: PodInterface, resolver: Resolver) -> Any:
        raise NotImplementedError("pod interfaces are re-created, never updated")

    def delete(self, vpp: VppClient, value: PodInterface, handle: Any, resolver: Resolver) -> None:
        if value.cnat:
            # cnat keeps its per-interface maps by index: clear them, or a later
            # interface reusing the index would inherit them.
            try:
                snat_kind.detach_interface(vpp, handle, snat_kind.InterfaceRole.POD, snat=value.snat)
            except VppApiError as e:
                log.debug("cnat detach failed", extra={"sw_if_index": handle, "error": str(e)})
        self._delete_device(vpp, value, handle)

    @staticmethod
    def _delete_device(vpp: VppClient, value: PodInterface, sw_if_index: int) -> None:
        try:
            if value.driver is Driver.VETH:
                af_packet.delete(vpp, value.host_ifname)
            elif value.driver is Driver.TUN:
                tap.delete(vpp, sw_if_index)
            else:
                socket_id = next((m.socket_id for m in memif.dump(vpp) if m.sw_if_index == sw_if_index), None)
                memif.delete(vpp, sw_if_index)
                if socket_id is not None:
                    memif.del_socket(vpp, socket_id)
        except VppApiError as e:
            if e.retval not in (Retval.INVALID_SW_IF_INDEX, Retval.NO_SUCH_ENTRY, Retval.INVALID_INTERFACE):
                raise

    # -- read back -------------------------------------------------------------------

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[PodInterface]]:
        ours = [i for i in interfaces.dump(vpp) if i.tag.startswith(TAG_PREFIX)]
        if not ours:
            return []
        unnumbered = interfaces.unnumbered(vpp)
        afp = {a.sw_if_index: a.host_if_name for a in af_packet.dump(vpp)}
        taps = {t.sw_if_index: t for t in tap.dump(vpp)}
        memifs = {m.sw_if_index: m for m in memif.dump(vpp)}
        socket_files = {s.socket_id: s.filename for s in memif.sockets(vpp)} if memifs else {}
        neigh: dict[int, list[tuple[str, str]]] = {}
        for v6 in (False, True):
            for n in neighbors.dump(vpp, ipv6=v6):
                if n.static:
                    neigh.setdefault(n.sw_if_index, []).append((str(n.ip), n.mac))
        out: list[Found[PodInterface]] = []
        for i in ours:
            if i.sw_if_index in afp:
                driver, host, mac = Driver.VETH, afp[i.sw_if_index], i.mac
            elif i.sw_if_index in taps:
                driver, host, mac = Driver.TUN, taps[i.sw_if_index].host_if_name, ""
            elif i.sw_if_index in memifs:
                driver, host, mac = Driver.MEMIF, socket_files.get(memifs[i.sw_if_index].socket_id, ""), ""
            else:
                driver, host, mac = Driver.VETH, f"#unknown{i.sw_if_index}", i.mac  # never equal: re-created
            borrowed = unnumbered.get(i.sw_if_index)
            gateway = resolver.key_of(LOOPBACK_KIND, borrowed) if borrowed is not None else None
            value = PodInterface(i.tag[len(TAG_PREFIX):], driver, host, mac, i.mtu,
                                 interfaces.get_table(vpp, i.sw_if_index), gateway,
                                 tuple(neigh.get(i.sw_if_index, ())))
            out.append(Found(value, i.sw_if_index))
        return out


def pod_routes(value: PodInterface, ips: Sequence[str]) -> list[OwnedRoute]:
    """Host routes to the pod's addresses through its interface."""
    return [OwnedRoute(ipaddress.ip_network(ipaddress.ip_interface(ip).ip), (Hop(None, value.key),), value.table_id)
            for ip in ips]


def route_descriptor(table_id: int, pod_ranges: Callable[[], Sequence[IpNetwork]]) -> RouteDescriptor:
    """Host routes inside this node's pod CIDRs (known from its Node object), in the pod table."""

    def owns(table: int, prefix: IpNetwork) -> bool:
        return (table == table_id and prefix.prefixlen == prefix.max_prefixlen
                and any(prefix.version == r.version and prefix.subnet_of(r) for r in pod_ranges()))  # type: ignore[arg-type]

    return RouteDescriptor(ROUTE_KIND, owns, lambda: [(table_id, False), (table_id, True)],
                           interface_kinds=(KIND,))


__all__ = ["GATEWAY4", "GATEWAY6", "HOST_IFNAME", "KIND", "MEMIF_SOCKET_PREFIX", "PodInterface",
           "PodInterfaceDescriptor", "ROUTE_KIND", "gateway_loopback", "host_ifname", "interface_name",
           "memif_socket", "pod_routes", "route_descriptor", "vpp_mac"]
