"""wireguard.api: wgN interfaces and their peers.

Modelled on plugins/wireguard/wireguard_api.c, wireguard_if.c and
wireguard_peer.c (VPP 26.06):

- ``wireguard_interface_create``: the public key is derived from the
  private key (X25519, as VPP does with OpenSSL); ``generate_key`` makes a
  random private key; instance ~0 takes the lowest free one, an instance in
  use or out of range is INVALID_REGISTRATION (sw_if_index ~0). ``wgN``
  (device "Wireguard Tunnel"), admin down, link following admin.
- ``wireguard_interface_delete``: unknown interface: INVALID_SW_IF_INDEX;
  not a wg interface: INVALID_VALUE; the interface's peers go with it.
- ``wireguard_interface_dump``: the private key only when asked for.
- ``wireguard_peer_add``: unknown interface: INVALID_SW_IF_INDEX; no allowed
  IP: INVALID_VALUE; not a wg interface: INVALID_SW_IF_INDEX; a public key
  that is already a peer on *any* wg interface: ENTRY_ALREADY_EXISTS.
  Failures answer peer_index ~0. Peer indexes come from VPP's pool (freed
  indexes reused, last freed first). A new peer's flags are 0.
- ``wireguard_peer_remove``: unknown index: NO_SUCH_ENTRY.
- ``wireguard_peers_dump``: ~0 lists all peers, an unknown index nothing;
  endpoints are encoded as ip46 (``::a.b.c.d`` comes back as IPv4).
- VPP never clears its sw_if_index -> wg interface table on delete. So a
  per-interface dump of a deleted wg interface's index still answers with
  the deleted interface (or with whichever wg interface reused its pool
  slot), and a peer added on that sw_if_index - now any interface, or one
  reused by a loopback - is accepted and attached to that stale record.
  Both are reproduced; the vpp layer's wrappers step around them.

Not modelled: handshakes and keepalives (flags stay 0: never established,
never dead), cookies, peer events, the preshared-key (v2) messages, async
mode and the UDP port registrations.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vppagent.vpp.retvals import Retval

from ..interfaces import HwClass, Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState, IndexPool
from ._common import NO_INDEX
from ._replies import ip46

HANDLERS = HandlerTable("wireguard")

WG_MAX_INSTANCE = 16 * 1024
KEY_LEN = 32
MAX_PEERS = 1 << 20

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def public_key_of(private_key: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


@dataclass
class WgInterface:
    index: int
    instance: int
    sw_if_index: int
    private_key: bytes = field(repr=False)
    public_key: bytes
    port: int
    src_ip: IPAddress
    peers: set[int] = field(default_factory=set)  # the record's own peer hash


@dataclass
class WgPeer:
    index: int
    sw_if_index: int
    public_key: bytes
    endpoint: IPAddress
    port: int
    persistent_keepalive: int
    table_id: int
    allowed_ips: list[IPNetwork]
    flags: int = 0


@dataclass
class WireguardState(FamilyState):
    if_pool: IndexPool = field(default_factory=IndexPool)
    interfaces: dict[int, WgInterface] = field(default_factory=dict)  # by pool index
    # VPP's wg_if_index_by_sw_if_index: set on create, never cleared.
    pool_index_of: dict[int, int] = field(default_factory=dict)
    # What a freed pool slot still holds until a new interface takes it.
    ghosts: dict[int, WgInterface] = field(default_factory=dict)
    peer_pool: IndexPool = field(default_factory=IndexPool)
    peers: dict[int, WgPeer] = field(default_factory=dict)  # by peer index

    def live(self, sw_if_index: int) -> WgInterface | None:
        """The wg interface that really is ``sw_if_index`` (dev class check)."""
        for wg in self.interfaces.values():
            if wg.sw_if_index == sw_if_index:
                return wg
        return None

    def lookup(self, sw_if_index: int) -> WgInterface | None:
        """wg_if_get (wg_if_find_by_sw_if_index (...)): stale entries included."""
        index = self.pool_index_of.get(sw_if_index)
        if index is None:
            return None
        return self.interfaces.get(index) or self.ghosts.get(index)

    def add(self, wg: WgInterface) -> None:
        self.ghosts.pop(wg.index, None)  # pool_get_zero wipes the old slot
        self.interfaces[wg.index] = wg
        self.pool_index_of[wg.sw_if_index] = wg.index

    def remove_peer(self, index: int) -> None:
        peer = self.peers.pop(index)
        owner = self.lookup(peer.sw_if_index)
        if owner is not None:
            owner.peers.discard(index)
        self.peer_pool.put(index)

    def forget_interface(self, wg: WgInterface) -> None:
        for index in sorted(wg.peers):
            self.remove_peer(index)
        del self.interfaces[wg.index]
        self.ghosts[wg.index] = wg
        self.if_pool.put(wg.index)

    def on_interface_deleted(self, state, iface: Interface) -> None:
        wg = self.live(iface.sw_if_index)
        if wg is not None:
            self.forget_interface(wg)


@HANDLERS.handler("wireguard_interface_create")
def wireguard_interface_create(emu, mp):
    st = emu.state(WireguardState)
    i = mp.interface
    used = {wg.instance for wg in st.interfaces.values()}
    want = i.user_instance
    if want == NO_INDEX:
        want = next(n for n in range(WG_MAX_INSTANCE + 1) if n not in used)
    if want >= WG_MAX_INSTANCE or want in used:
        return {"retval": int(Retval.INVALID_REGISTRATION), "sw_if_index": NO_INDEX}
    if mp.generate_key:
        private = emu.random.getrandbits(8 * KEY_LEN).to_bytes(KEY_LEN, "little")
    else:
        private = bytes(i.private_key)
    index = st.if_pool.get()
    iface = emu.interfaces.add(f"wg{want}", "Wireguard Tunnel", hw_class=HwClass.IP,
                               dev_instance=index, owner="wireguard")
    st.add(WgInterface(index, want, iface.sw_if_index, private, public_key_of(private),
                       i.port, i.src_ip))
    return {"sw_if_index": iface.sw_if_index}


@HANDLERS.handler("wireguard_interface_delete")
def wireguard_interface_delete(emu, mp):
    st = emu.state(WireguardState)
    emu.interfaces.require(mp.sw_if_index)
    wg = st.live(mp.sw_if_index)
    if wg is None:
        raise VppRetval(Retval.INVALID_VALUE, f"{mp.sw_if_index} is not a wireguard interface")
    emu.interfaces.remove(wg.sw_if_index)  # the hook drops its peers and the record
    return {}


@HANDLERS.handler("wireguard_interface_dump")
def wireguard_interface_dump(emu, mp):
    st = emu.state(WireguardState)

    def details(wg: WgInterface) -> dict:
        return {"interface": {
            "user_instance": wg.instance,
            "sw_if_index": wg.sw_if_index,
            "private_key": wg.private_key if mp.show_private_key else bytes(KEY_LEN),
            "public_key": wg.public_key,
            "port": wg.port,
            "src_ip": wg.src_ip,
        }}

    if mp.sw_if_index == NO_INDEX:
        return [details(st.interfaces[i]) for i in sorted(st.interfaces)]
    wg = st.lookup(mp.sw_if_index)  # possibly a deleted interface: VPP's stale table
    return [details(wg)] if wg is not None else []


@HANDLERS.handler("wireguard_peer_add")
def wireguard_peer_add(emu, mp):
    st = emu.state(WireguardState)
    p = mp.peer
    failed = {"peer_index": NO_INDEX}
    if p.sw_if_index not in emu.interfaces:
        return {"retval": int(Retval.INVALID_SW_IF_INDEX), **failed}
    if p.n_allowed_ips == 0:
        return {"retval": int(Retval.INVALID_VALUE), **failed}
    owner = st.lookup(p.sw_if_index)
    if owner is None:
        return {"retval": int(Retval.INVALID_SW_IF_INDEX), **failed}
    key = bytes(p.public_key)
    if any(peer.public_key == key for peer in st.peers.values()):
        return {"retval": int(Retval.ENTRY_ALREADY_EXISTS), **failed}
    if len(st.peers) > MAX_PEERS:
        return {"retval": int(Retval.LIMIT_EXCEEDED), **failed}
    index = st.peer_pool.get()
    st.peers[index] = WgPeer(index, p.sw_if_index, key, p.endpoint, p.port,
                             p.persistent_keepalive, p.table_id,
                             list(p.allowed_ips)[: p.n_allowed_ips])
    owner.peers.add(index)
    return {"peer_index": index}


@HANDLERS.handler("wireguard_peer_remove")
def wireguard_peer_remove(emu, mp):
    st = emu.state(WireguardState)
    if mp.peer_index not in st.peers:
        raise VppRetval(Retval.NO_SUCH_ENTRY, f"no peer {mp.peer_index}")
    st.remove_peer(mp.peer_index)
    return {}


def _peer_details(peer: WgPeer) -> dict:
    return {"peer": {
        "peer_index": peer.index,
        "public_key": peer.public_key,
        "port": peer.port,
        "persistent_keepalive": peer.persistent_keepalive,
        "table_id": peer.table_id,
        "endpoint": ip46(peer.endpoint),  # encoded with IP46_TYPE_ANY
        "sw_if_index": peer.sw_if_index,
        "flags": peer.flags,
        "n_allowed_ips": len(peer.allowed_ips),
        "allowed_ips": list(peer.allowed_ips),
    }}


@HANDLERS.handler("wireguard_peers_dump")
def wireguard_peers_dump(emu, mp):
    st = emu.state(WireguardState)
    if mp.peer_index == NO_INDEX:
        return [_peer_details(st.peers[i]) for i in sorted(st.peers)]
    peer = st.peers.get(mp.peer_index)
    return [_peer_details(peer)] if peer is not None else []
