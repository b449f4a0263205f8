"""The ``node-tunnel`` kind: one tunnel interface per peer node (ipip, vxlan or ipsec).

Owns ``NodeTunnel`` (a tunnel to one peer as a value: flavour, outer
addresses, VNI, the table decapsulated packets are routed in, the
interface it borrows its address from) and ``TunnelDescriptor``.

Why each flavour: ``ipip`` carries pod packets in IP (20 bytes); ``vxlan``
is an L3 VXLAN tunnel (for underlays that only pass UDP; VPP's L3 mode puts
the IP packet right after the VXLAN header, and over the API its decap next
must be set to ip4-input explicitly - only VPP's CLI does that by itself -
so one tunnel carries one inner family: IPv4 pods; and its interface class
has no adjacency handling, so routes through it go via ``VXLAN_NEXT_HOP``,
a static neighbour the tunnel is created with - a route through it without
a next hop makes VPP 26.06 crash in ip4-glean); ``ipsec`` is an
``ipsecN`` interface whose encapsulation is its tunnel-mode ESP SAs (the
``node-ipsec`` kind protects it). A tunnel is created admin up, in the pod
table, unnumbered to the pod gateway loopback: without an address or an
unnumbered source VPP drops what it decapsulates (ip4-not-enabled).

Ownership scheme: every tunnel carries the tag ``vppagent:tun:<name>``
where ``name`` is the peer's node name (or, for names too long for a
63-byte tag, a digest of it): tag suffix = key. A restarted agent finds its
tunnels by tag and reads their flavour and endpoints back. Interfaces
without our tag are never touched.

Must not touch: routes through the tunnel (``node-route``), IPsec SAs and
protection (``node-ipsec``).
"""
from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Key, Resolver
from vppagent.vpp import features, interfaces, ipsec, neighbors, tunnels
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval
from vppagent.iptypes import IpAddress

KIND = "node-tunnel"
TAG_PREFIX = "vppagent:tun:"
_TAG_MAX = 63
FLAVOURS = ("ipip", "vxlan", "ipsec")
DEFAULT_VNI = 7000
# The next hop of routes through an L3 VXLAN tunnel (resolved by a static neighbour on each tunnel,
# never put in the FIB; the MAC is never sent: the tunnel has no L2 rewrite).
VXLAN_NEXT_HOP = ipaddress.IPv4Address("169.254.0.2")
_VXLAN_NEIGHBOR_MAC = "02:00:00:00:00:01"


DecapNext = Callable[[VppClient, bool], int]


def ip_input_next(vpp: VppClient, underlay_v6: bool) -> int:
    """The index of ip4-input among vxlan4-input's next nodes (vxlan6-input for an IPv6 underlay),
    added if missing: what an L3 VXLAN tunnel's ``decap_next_index`` must be.

    (One VPP request without a typed wrapper yet: it belongs in ``vppagent.vpp``.)
    """
    node = "vxlan6-input" if underlay_v6 else "vxlan4-input"
    return vpp.call("add_node_next", node_name=node, next_name="ip4-input").next_index


def tunnel_name(peer: str) -> str:
    """The key and tag suffix of the tunnel to ``peer`` (node names can be 253 characters)."""
    if len(TAG_PREFIX) + len(peer) <= _TAG_MAX:
        return peer
    return "#" + hashlib.sha256(peer.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class NodeTunnel:
    name: str
    flavour: str  # one of FLAVOURS
    src: IpAddress
    dst: IpAddress
    vni: int = 0  # vxlan only
    table_id: int = 0  # the (pod) table decapsulated packets are looked up in
    unnumbered: Key | None = None  # the interface object whose address it borrows

    def __post_init__(self) -> None:
        if self.flavour not in FLAVOURS:
            raise ValueError(f"unknown tunnel flavour {self.flavour!r}")
        if self.src.version != self.dst.version:
            raise ValueError(f"tunnel {self.name}: {self.src} and {self.dst} are of different families")

    @property
    def key(self) -> Key:
        return Key(KIND, self.name)


class TunnelDescriptor(VppKind):
    """Peer tunnels by tag; not batchable (create, tag, table, unnumbered, admin-up in sequence)."""

    kind = KIND

    def __init__(self, *, interface_kinds: tuple[str, ...] = (), vxlan_decap_next: DecapNext = ip_input_next):
        """``interface_kinds``: kinds an ``unnumbered`` key may name (read back first);
        ``vxlan_decap_next``: where a VXLAN tunnel sends what it decapsulates."""
        self.retrieve_after = interface_kinds
        self._interface_kinds = interface_kinds
        self._decap_next = vxlan_decap_next

    def key(self, value: NodeTunnel) -> str:
        return value.name

    def dependencies(self, value: NodeTunnel) -> Iterable[Key]:
        return [value.unnumbered] if value.unnumbered is not None else []

    def create(self, vpp: VppClient, value: NodeTunnel, resolver: Resolver) -> int:
        if value.flavour == "ipip":
            idx = tunnels.create_ipip(vpp, tunnels.IpipSpec(value.src, value.dst))
        elif value.flavour == "vxlan":
            decap = self._decap_next(vpp, value.src.version == 6)
            idx = tunnels.create_vxlan(vpp, tunnels.VxlanSpec(value.src, value.dst, value.vni, decap_next=decap,
                                                              is_l3=True))
        else:
            idx = ipsec.create_itf(vpp)
        try:
            interfaces.set_tag(vpp, idx, TAG_PREFIX + value.name)
            interfaces.set_l3(vpp, idx, table_id=value.table_id,
                              borrow_from=resolver.handle(value.unnumbered) if value.unnumbered is not None else None)
            # VPP segments GSO frames before encapsulating only where its gso feature is on the
            # tunnel, and never turns it on itself: pods that keep their offloads (pod_offloads)
            # send 64 KB frames. A pass-through for frames that are not GSO.
            features.gso(vpp, idx)
            interfaces.set_admin_up(vpp, idx)
            if value.flavour == "vxlan":
                neighbors.add(vpp, neighbors.Neighbor(idx, VXLAN_NEXT_HOP, _VXLAN_NEIGHBOR_MAC, static=True,
                                                      no_fib_entry=True))
        except Exception:
            # Never leave a half-made (untagged or unconfigured) tunnel behind.
            self._remove(vpp, value, idx)
            raise
        return idx

    def can_update(self, old: NodeTunnel, new: NodeTunnel) -> bool:
        return False  # another flavour or endpoint is another tunnel: re-create

    def update(self, vpp: VppClient, old: NodeTunnel, handle: Any, new: NodeTunnel, resolver: Resolver) -> Any:
        raise NotImplementedError("node tunnels are re-created, never updated")

    def delete(self, vpp: VppClient, value: NodeTunnel, handle: Any, resolver: Resolver) -> None:
        self._remove(vpp, value, handle)

    @staticmethod
    def _remove(vpp: VppClient, value: NodeTunnel, idx: int) -> None:
        try:
            if value.flavour == "ipip":
                tunnels.delete_ipip(vpp, idx)
            elif value.flavour == "vxlan":
                tunnels.delete_vxlan(vpp, tunnels.VxlanSpec(value.src, value.dst, value.vni, is_l3=True))
            else:
                ipsec.delete_itf(vpp, idx)  # VPP drops its protection with it
        except VppApiError as e:
            if e.retval not in (Retval.NO_SUCH_ENTRY, Retval.INVALID_SW_IF_INDEX):  # already gone
                raise

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[NodeTunnel]]:
        tagged = {i.sw_if_index: i.tag[len(TAG_PREFIX):] for i in interfaces.dump(vpp)
                  if i.tag.startswith(TAG_PREFIX)}
        if not tagged:
            return []
        ipips = {t.sw_if_index: t for t in tunnels.dump_ipip(vpp)}
        vxlans = {t.sw_if_index: t for t in tunnels.dump_vxlan(vpp)}
        itfs = {t.sw_if_index for t in ipsec.dump_itfs(vpp)}
        protections = {p.sw_if_index: p for p in ipsec.dump_protections(vpp)} if itfs else {}
        sas = {sa.sa_id: sa for sa in ipsec.dump_sas(vpp)} if itfs else {}  # one dump, not one per tunnel
        borrowed = interfaces.unnumbered(vpp)
        out: list[Found[NodeTunnel]] = []
        for idx, name in sorted(tagged.items()):
            table = interfaces.get_table(vpp, idx)
            unnumbered = self._key_of(borrowed.get(idx), resolver)
            if idx in ipips:
                s = ipips[idx].spec
                value = NodeTunnel(name, "ipip", s.src, s.dst, 0, table, unnumbered)
            elif idx in vxlans:
                s = vxlans[idx].spec
                value = NodeTunnel(name, "vxlan", s.src, s.dst, s.vni, table, unnumbered)
            elif idx in itfs:
                # An ipsec interface's endpoints are its outbound SA's; unknown without one.
                p = protections.get(idx)
                sa = sas.get(p.sa_out) if p is not None else None
                if sa is not None and sa.tunnel is not None:
                    value = NodeTunnel(name, "ipsec", sa.tunnel.src, sa.tunnel.dst, 0, table, unnumbered)
                else:
                    zero = ipaddress.IPv4Address(0)
                    value = NodeTunnel(f"{name}#unprotected{idx}", "ipsec", zero, zero, 0, table, unnumbered)
            else:
                continue  # our tag on something else: not a tunnel of ours
            out.append(Found(value, idx))
        return out

    def _key_of(self, sw_if_index: int | None, resolver: Resolver) -> Key | None:
        if sw_if_index is None:
            return None
        for kind in self._interface_kinds:
            key = resolver.key_of(kind, sw_if_index)
            if key is not None:
                return key
        return Key("sw_if_index", sw_if_index)

