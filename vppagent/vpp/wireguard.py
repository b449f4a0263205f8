"""WireGuard: ``wgN`` interfaces and their peers.

Owns create/delete/dump of VPP WireGuard interfaces and add/remove/dump of
peers (public key, endpoint, allowed IPs, keepalive). Must not: generate or
store keys (``ipsec/`` does; VPP's own key generation is never used, so the
private key stays the one the node published the public key of).

THE PRIVATE KEY IS A SECRET: it is ``repr=False``, never logged, never put
in an error, and never asked back from VPP (dumps request no private key).

VPP semantics worth knowing (26.06):

- A public key can be a peer only once across *all* WireGuard interfaces:
  a second add fails with ENTRY_ALREADY_EXISTS (-116).
- A peer needs at least one allowed IP (INVALID_VALUE, -7 otherwise).
- Peer indexes are VPP's pool indexes, reused after removal.
- Deleting the interface removes its peers.
- VPP never clears its sw_if_index -> wg interface table on delete: a dump
  of one deleted interface's index still describes the deleted interface,
  and a peer added on that index - even once a loopback has reused it - is
  accepted. :func:`dump_interfaces` therefore always lists all interfaces
  and filters, and :func:`add_peer` first checks that the interface is a
  live wg interface (:class:`NotAWireguardInterface` otherwise).
- ``wireguard_peer_add``/``wireguard_peers_dump`` are marked deprecated in
  26.06 while their successors (with a preshared key) are "in progress";
  the stable pair is used until the successors settle.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable

from vppagent.iptypes import IpAddress, IpNetwork, U32_NONE

from .client import VppClient
from .errors import VppApiError, VppError

MESSAGES = (
    "wireguard_interface_create",
    "wireguard_interface_delete",
    "wireguard_interface_dump",
    "wireguard_peer_add",
    "wireguard_peer_remove",
    "wireguard_peers_dump",
)

ALL = U32_NONE
AUTO_INSTANCE = U32_NONE
KEY_LEN = 32


class NotAWireguardInterface(VppError):
    """A peer was asked for on an interface that is not a live wg interface."""


def _check_key(what: str, key: bytes) -> None:
    if len(key) != KEY_LEN:
        raise ValueError(f"{what}: a WireGuard key is {KEY_LEN} bytes, got {len(key)}")


@dataclass(frozen=True)
class InterfaceSpec:
    private_key: bytes = field(repr=False)
    port: int
    src_ip: IpAddress
    instance: int = AUTO_INSTANCE

    def __post_init__(self) -> None:
        _check_key("wireguard interface private key", self.private_key)


@dataclass(frozen=True)
class Interface:
    sw_if_index: int
    instance: int
    public_key: bytes
    port: int
    src_ip: IpAddress


@dataclass(frozen=True)
class PeerSpec:
    sw_if_index: int
    public_key: bytes
    allowed_ips: tuple[IpNetwork, ...]
    endpoint: IpAddress
    port: int
    persistent_keepalive: int = 0  # seconds; 0: off
    table_id: int = 0  # the table the endpoint is reached through

    def __post_init__(self) -> None:
        _check_key("wireguard peer public key", self.public_key)
        if not self.allowed_ips:
            raise ValueError("a wireguard peer needs at least one allowed IP")
        if len(self.allowed_ips) > 255:
            raise ValueError(f"{len(self.allowed_ips)} allowed IPs; VPP takes at most 255 per peer")

    @staticmethod
    def of(sw_if_index: int, public_key: bytes, allowed_ips: Iterable[str | IpNetwork],
           endpoint: str | IpAddress, port: int, **kw) -> "PeerSpec":
        return PeerSpec(sw_if_index, public_key, tuple(ipaddress.ip_network(p) for p in allowed_ips),
                        ipaddress.ip_address(endpoint), port, **kw)


@dataclass(frozen=True)
class Peer:
    peer_index: int
    spec: PeerSpec
    flags: int  # WIREGUARD_PEER_STATUS_DEAD = 1, WIREGUARD_PEER_ESTABLISHED = 2

    @property
    def established(self) -> bool:
        return bool(self.flags & 2)


def create_interface(vpp: VppClient, spec: InterfaceSpec) -> int:
    """Create a ``wgN`` interface with the node's private key; return its sw_if_index."""
    try:
        reply = vpp.call(
            "wireguard_interface_create",
            interface={
                "user_instance": spec.instance,
                "sw_if_index": ALL,
                "private_key": spec.private_key,
                "public_key": bytes(KEY_LEN),
                "port": spec.port,
                "src_ip": spec.src_ip,
            },
            generate_key=False,
        )
    except VppApiError as e:
        raise VppApiError(e.message, e.retval, {"instance": spec.instance, "port": spec.port}) from None
    return reply.sw_if_index


def delete_interface(vpp: VppClient, sw_if_index: int) -> None:
    vpp.call("wireguard_interface_delete", sw_if_index=sw_if_index)


def dump_interfaces(vpp: VppClient, sw_if_index: int = ALL) -> list[Interface]:
    """All wg interfaces, or the one at ``sw_if_index``.

    Always asks for all: VPP answers a per-index request from a table it
    does not clear on delete (see the module doc).
    """
    out = [
        Interface(i.sw_if_index, i.user_instance, bytes(i.public_key), i.port, i.src_ip)
        for i in (d.interface for d in vpp.dump("wireguard_interface_dump",
                                                 show_private_key=False, sw_if_index=ALL))
    ]
    return out if sw_if_index == ALL else [i for i in out if i.sw_if_index == sw_if_index]


def add_peer(vpp: VppClient, spec: PeerSpec, *, check_interface: bool = True) -> int:
    """Add a peer to a wg interface; return its peer index.

    ``check_interface`` (one small dump) keeps VPP from attaching the peer to
    a deleted wg interface whose index now belongs to something else.
    """
    if check_interface and not dump_interfaces(vpp, spec.sw_if_index):
        raise NotAWireguardInterface(f"sw_if_index {spec.sw_if_index} is not a wireguard interface")
    reply = vpp.call(
        "wireguard_peer_add",
        peer={
            "peer_index": ALL,
            "public_key": spec.public_key,
            "port": spec.port,
            "persistent_keepalive": spec.persistent_keepalive,
            "table_id": spec.table_id,
            "endpoint": spec.endpoint,
            "sw_if_index": spec.sw_if_index,
            "flags": 0,
            "n_allowed_ips": len(spec.allowed_ips),
            "allowed_ips": list(spec.allowed_ips),
        },
    )
    return reply.peer_index


def remove_peer(vpp: VppClient, peer_index: int) -> None:
    vpp.call("wireguard_peer_remove", peer_index=peer_index)


def dump_peers(vpp: VppClient, peer_index: int = ALL) -> list[Peer]:
    out = []
    for d in vpp.dump("wireguard_peers_dump", peer_index=peer_index):
        p = d.peer
        spec = PeerSpec(p.sw_if_index, bytes(p.public_key), tuple(p.allowed_ips[: p.n_allowed_ips]),
                        p.endpoint, p.port, p.persistent_keepalive, p.table_id)
        out.append(Peer(p.peer_index, spec, int(p.flags)))
    return out


def peers_of(vpp: VppClient, sw_if_index: int) -> list[Peer]:
    return [p for p in dump_peers(vpp) if p.spec.sw_if_index == sw_if_index]
