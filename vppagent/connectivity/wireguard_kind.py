"""The ``node-wg`` and ``node-wg-peer`` kinds: this node's WireGuard interface and one peer per node.

Owns ``WgInterface`` (the node's ``wgN``: listen port, source address, the
private key from the node's 0600 key file) with its descriptor, and
``WgPeer`` (a peer node: its public key, endpoint, listen port, keepalive,
allowed IPs = its pod CIDRs) with its descriptor.

Ownership scheme: the interface carries the tag ``vppagent:wg:<name>``;
peers are ours when they hang off that interface. VPP never returns the
private key (we never ask), so an interface compares by its *public* key:
the private key field is neither compared nor shown.

Must not touch: keys on disk (``ipsec.keys``), routes through the interface.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Key, Resolver
from vppagent.vpp import features, interfaces, wireguard
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval
from vppagent.iptypes import IpAddress, IpNetwork

log = logging.getLogger(__name__)

KIND = "node-wg"
PEER_KIND = "node-wg-peer"
TAG_PREFIX = "vppagent:wg:"
DEFAULT_PORT = 51820
DEFAULT_KEEPALIVE_S = 25


@dataclass(frozen=True)
class WgInterface:
    name: str
    port: int
    src: IpAddress
    public_key: bytes
    private_key: bytes = field(default=b"", repr=False, compare=False)
    table_id: int = 0
    unnumbered: Key | None = None

    @property
    def key(self) -> Key:
        return Key(KIND, self.name)


@dataclass(frozen=True)
class WgPeer:
    interface: Key
    public_key: bytes
    endpoint: IpAddress
    port: int
    allowed_ips: tuple[IpNetwork, ...]  # kept sorted
    keepalive_s: int = DEFAULT_KEEPALIVE_S

    def __post_init__(self) -> None:
        ordered = tuple(sorted(set(self.allowed_ips), key=lambda n: (n.version, n)))
        if ordered != self.allowed_ips:
            object.__setattr__(self, "allowed_ips", ordered)


def _complete_offloads(vpp: VppClient, idx: int) -> None:
    """Pods that keep their offloads (pod_offloads) send 64 KB frames and partial checksums.

    VPP's gso feature segments the frames before wg4/6-output-tun (which take none), and
    kpod's csum nodes complete the checksums WireGuard would seal in unfinished
    (docs/upstream-vpp-af-packet-offloads.md, finding 3). Both pass other frames through.
    """
    features.gso(vpp, idx)
    for arc, feature in features.KPOD_CSUM:
        if not features.enable_if_loaded(vpp, idx, arc, feature):
            log.warning("kpod plugin not loaded: pods' offloaded checksums leave WireGuard unfinished and "
                        "their receivers drop them; load kpod_plugin.so or set pod_offloads false",
                        extra={"sw_if_index": idx, "feature": feature})


class WgInterfaceDescriptor(VppKind):
    kind = KIND

    def __init__(self, *, interface_kinds: tuple[str, ...] = ()):
        self.retrieve_after = interface_kinds
        self._interface_kinds = interface_kinds

    def key(self, value: WgInterface) -> str:
        return value.name

    def dependencies(self, value: WgInterface) -> Iterable[Key]:
        return [value.unnumbered] if value.unnumbered is not None else []

    def create(self, vpp: VppClient, value: WgInterface, resolver: Resolver) -> int:
        idx = wireguard.create_interface(vpp, wireguard.InterfaceSpec(value.private_key, value.port, value.src))
        try:
            interfaces.set_tag(vpp, idx, TAG_PREFIX + value.name)
            interfaces.set_l3(vpp, idx, table_id=value.table_id,
                              borrow_from=resolver.handle(value.unnumbered) if value.unnumbered is not None else None)
            _complete_offloads(vpp, idx)
            interfaces.set_admin_up(vpp, idx)
        except Exception:
            wireguard.delete_interface(vpp, idx)
            raise
        return idx

    def update(self, vpp: VppClient, old: WgInterface, handle: Any, new: WgInterface, resolver: Resolver) -> Any:
        raise NotImplementedError("wireguard interfaces are re-created, never updated")

    def delete(self, vpp: VppClient, value: WgInterface, handle: Any, resolver: Resolver) -> None:
        try:
            wireguard.delete_interface(vpp, handle)
        except VppApiError as e:
            if e.retval not in (Retval.NO_SUCH_ENTRY, Retval.INVALID_SW_IF_INDEX):
                raise

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[WgInterface]]:
        tagged = {i.sw_if_index: i.tag[len(TAG_PREFIX):] for i in interfaces.dump(vpp)
                  if i.tag.startswith(TAG_PREFIX)}
        if not tagged:
            return []
        borrowed = interfaces.unnumbered(vpp)
        out = []
        for wg in wireguard.dump_interfaces(vpp):
            name = tagged.get(wg.sw_if_index)
            if name is None:
                continue
            via = borrowed.get(wg.sw_if_index)
            unnumbered = None
            if via is not None:
                unnumbered = next((k for k in (resolver.key_of(kind, via) for kind in self._interface_kinds)
                                   if k is not None), Key("sw_if_index", via))
            value = WgInterface(name, wg.port, wg.src_ip, wg.public_key, b"",
                                interfaces.get_table(vpp, wg.sw_if_index), unnumbered)
            out.append(Found(value, wg.sw_if_index))
        return out


class WgPeerDescriptor(VppKind):
    kind = PEER_KIND
    retrieve_after = (KIND,)

    def key(self, value: WgPeer) -> bytes:
        return value.public_key  # VPP allows a public key once across all wg interfaces

    def dependencies(self, value: WgPeer) -> Iterable[Key]:
        return [value.interface]

    def create(self, vpp: VppClient, value: WgPeer, resolver: Resolver) -> int:
        spec = wireguard.PeerSpec(resolver.handle(value.interface), value.public_key, value.allowed_ips,
                                  value.endpoint, value.port, value.keepalive_s)
        return wireguard.add_peer(vpp, spec)

    def update(self, vpp: VppClient, old: WgPeer, handle: Any, new: WgPeer, resolver: Resolver) -> Any:
        raise NotImplementedError("wireguard peers are re-created, never updated")

    def delete(self, vpp: VppClient, value: WgPeer, handle: Any, resolver: Resolver) -> None:
        try:
            wireguard.remove_peer(vpp, handle)
        except VppApiError as e:
            if e.retval not in (Retval.NO_SUCH_ENTRY, Retval.INVALID_SW_IF_INDEX):
                raise

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[WgPeer]]:
        out = []
        for p in wireguard.dump_peers(vpp):
            itf = resolver.key_of(KIND, p.spec.sw_if_index)
            if itf is None:
                continue
            s = p.spec
            out.append(Found(WgPeer(itf, s.public_key, s.endpoint, s.port, s.allowed_ips,
                                    s.persistent_keepalive), p.peer_index))
        return out

