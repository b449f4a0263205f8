"""ipsec.api: SAs, ipsecN interfaces and tunnel protection (route-based IPsec).

Modelled on vnet/ipsec/ipsec_api.c, ipsec_sa.c, ipsec_itf.c and ipsec_tun.c
(VPP 26.06). What VPP does, and so what the emulator does:

- ``ipsec_sad_entry_add_v2``: protocol other than ESP/AH: INVALID_PROTOCOL;
  unknown algorithms: INVALID_ALGORITHM; a tunnel-mode SA's tunnel is
  checked (families: INVALID_PROTOCOL, src == dst: SAME_SRC_DST, flags or
  mode: INVALID_VALUE_2, table: NO_SUCH_FIB); an existing SA id:
  ENTRY_ALREADY_EXISTS; an unsupported crypto/integrity pair (AEAD with an
  integrity algorithm, AH without one...): UNIMPLEMENTED; a cipher key of
  the wrong length (an empty one is accepted): KEY_LENGTH. The anti-replay
  window is rounded up to a power of two (at least 64). UDP ports of ~0
  become 4500. The reply's stat_index is the SA's pool index (~0 on failure).
- SAs are reference counted: the creator holds one reference and each use
  by a protection another. ``ipsec_sad_entry_del`` drops one reference
  (unknown id: NO_SUCH_ENTRY) - it does NOT refuse an SA in use: the SA
  lives on, and stays in dumps, until its last user lets go.
- ``ipsec_sa_v5_dump`` ignores its sa_id and lists every SA, keys
  included, with the salt byte-swapped (VPP stores the wire value and swaps
  it again when dumping), the tunnel only for tunnel-mode SAs (instance and
  sw_if_index 0), UDP ports only with UDP_ENCAP, the window only with
  anti-replay, and the protected interface only for inbound tunnel-mode
  SAs protecting a non-ipsec interface (else ~0; when several protections
  use it, the last one in pool order).
- ``ipsec_itf_create``: unknown mode: INVALID_VALUE_2; instance in use or
  out of range: INVALID_REGISTRATION; ~0 takes the lowest free instance.
  ``ipsecN`` (device "IPSEC Tunnel"), admin down, MTU 9000.
  ``ipsec_itf_delete`` of anything else: INVALID_SW_IF_INDEX.
- ``ipsec_tunnel_protect_update``: unknown interface: INVALID_SW_IF_INDEX;
  more than 4 inbound SAs: LIMIT_EXCEEDED; an unknown SA: INVALID_VALUE; an
  interface that is not a tunnel: INVALID_SW_IF_INDEX; an ipsec interface
  with a transport-mode outbound SA: INVALID_DST_ADDRESS. On a
  point-to-point interface the next hop is ignored (one protection per
  interface); updating swaps the SAs. VPP's leaks on these error paths are
  reproduced: SA references taken before the failure stay taken, and the
  INVALID_DST_ADDRESS case leaves a protection in the dump that nothing can
  find or delete.
- ``ipsec_tunnel_protect_del``: unknown interface: INVALID_SW_IF_INDEX;
  nothing protected: NO_SUCH_ENTRY. Deleting an interface removes its
  protections (VPP's interface hook).

Not modelled: SPDs and policies, traffic (sequence numbers stay 0), async
crypto and worker binding, the FIB entries tunnel-mode SAs track.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from vppagent.vpp.retvals import Retval

from ..interfaces import HwClass, Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState, IndexPool
from ._common import NO_INDEX
from ._replies import on_failure
from .tunnels import TunnelState

HANDLERS = HandlerTable("ipsec")

# VPP error codes the shared Retval enum does not name.
INVALID_DST_ADDRESS = Retval.INVALID_DST_ADDRESS
SAME_SRC_DST = Retval.SAME_SRC_DST

PROTO_ESP, PROTO_AH = 50, 51
FLAG_USE_ESN = 1
FLAG_USE_ANTI_REPLAY = 2
FLAG_IS_TUNNEL = 4
FLAG_IS_TUNNEL_V6 = 8
FLAG_UDP_ENCAP = 16
FLAG_IS_INBOUND = 64
_API_SA_FLAGS = 1 | 2 | 4 | 8 | 16 | 64 | 128

_N_CRYPTO_ALG = 16
_N_INTEG_ALG = 7
CRYPTO_NONE, INTEG_NONE = 0, 0
_DES_CBC, _3DES_CBC = 10, 11
_AES_CBC = (1, 2, 3)
_AES_CTR = (4, 5, 6)
_MD5_96 = 1
# Cipher key lengths (vnet/crypto's cipher_key_len per algorithm).
_CIPHER_KEY_LEN = {1: 16, 2: 24, 3: 32, 4: 16, 5: 24, 6: 32, 7: 16, 8: 24, 9: 32,
                   10: 8, 11: 24, 12: 32, 13: 16, 14: 24, 15: 32}

_TUNNEL_ENCAP_DECAP_FLAG_MASK = 0xFF
_TUNNEL_FLAG_MASK = 0x3  # internal RESOLVED | TRACK_MTU: the API value is taken raw
_TUNNEL_FLAG_TRACK_MTU = 0x2  # internal bit; encoded back as the API's 1
_TUNNEL_MODE_P2P, _TUNNEL_MODE_MP = 0, 1

IPSEC_UDP_PORT = 4500
_UDP_PORT_NONE = 0xFFFF
ITF_MAX_INSTANCE = 16 * 1024
ITP_MAX_N_SA_IN = 4
_ITF_MTU = 9000
_KEY_DATA_LEN = 128

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _supported(crypto: int, integ: int) -> bool:
    """ipsec_sa_get_crypto_integ_map: the pairs VPP 26.06 implements."""
    if crypto == CRYPTO_NONE:
        return True
    if integ == INTEG_NONE:
        return True
    if crypto in _AES_CBC or crypto == _3DES_CBC:
        return True
    if crypto in _AES_CTR:
        return integ != _MD5_96
    return False  # DES and the AEAD ciphers take no integrity algorithm


@dataclass
class Sa:
    index: int  # pool index, also the stat index
    sa_id: int
    spi: int
    protocol: int
    crypto_alg: int
    crypto_key: bytes = field(repr=False)
    integ_alg: int
    integ_key: bytes = field(repr=False)
    flags: int
    tunnel: dict[str, Any] | None
    salt_wire: int = field(repr=False)  # as the request carried it
    udp_src_port: int
    udp_dst_port: int
    window: int
    locks: int = 1  # the creator's reference
    is_protect: bool = False


@dataclass
class Itf:
    index: int
    instance: int
    mode: int
    sw_if_index: int


@dataclass
class Protection:
    index: int
    sw_if_index: int
    nh: IPAddress
    sa_out: int  # SA pool indexes
    sa_in: list[int]
    is_itf: bool  # the interface has no encapsulation (an ipsec itf)
    in_db: bool = True  # False: VPP's half-made entry, only in dumps


@dataclass
class IpsecState(FamilyState):
    sa_pool: IndexPool = field(default_factory=IndexPool)
    sas: dict[int, Sa] = field(default_factory=dict)  # by pool index
    sa_by_id: dict[int, int] = field(default_factory=dict)
    itf_pool: IndexPool = field(default_factory=IndexPool)
    itfs: dict[int, Itf] = field(default_factory=dict)  # by pool index
    itp_pool: IndexPool = field(default_factory=IndexPool)
    protections: dict[int, Protection] = field(default_factory=dict)  # by pool index

    # -- SA references --------------------------------------------------------

    def find_and_lock(self, sa_id: int) -> int | None:
        index = self.sa_by_id.get(sa_id)
        if index is not None:
            self.sas[index].locks += 1
        return index

    def lock(self, index: int) -> None:
        self.sas[index].locks += 1

    def unlock(self, index: int) -> None:
        sa = self.sas[index]
        sa.locks -= 1
        if sa.locks == 0:  # the last reference: ipsec_sa_del
            del self.sas[index]
            del self.sa_by_id[sa.sa_id]
            self.sa_pool.put(index)

    # -- interfaces -------------------------------------------------------------

    def itf_by_sw_if_index(self, sw_if_index: int) -> Itf | None:
        for itf in self.itfs.values():
            if itf.sw_if_index == sw_if_index:
                return itf
        return None

    def find_protection(self, sw_if_index: int, nh: IPAddress, p2p: bool) -> Protection | None:
        for p in self.protections.values():
            if p.in_db and p.sw_if_index == sw_if_index and (p2p or p.nh == nh):
                return p
        return None

    # -- protections ------------------------------------------------------------

    def config(self, p: Protection, sa_out: int, sa_in: list[int]) -> None:
        p.sa_out, p.sa_in = sa_out, list(sa_in)
        self.lock(sa_out)
        for i in p.sa_in:
            self.lock(i)
        for i in p.sa_in:
            sa = self.sas[i]
            if sa.flags & FLAG_IS_TUNNEL and not p.is_itf:
                sa.is_protect = True

    def unconfig(self, p: Protection) -> None:
        for i in p.sa_in:
            self.sas[i].is_protect = False
        self.unlock(p.sa_out)
        for i in p.sa_in:
            self.unlock(i)

    def delete_protection(self, p: Protection) -> None:
        self.unconfig(p)
        del self.protections[p.index]
        self.itp_pool.put(p.index)

    def on_interface_deleted(self, state, iface: Interface) -> None:
        for p in [p for p in self.protections.values() if p.in_db and p.sw_if_index == iface.sw_if_index]:
            self.delete_protection(p)


# -- SAs ----------------------------------------------------------------------


def _decode_tunnel(emu, t: Any) -> dict[str, Any]:
    """tunnel_decode: validate and keep what tunnel_encode gives back."""
    if t.src.version != t.dst.version:
        raise VppRetval(Retval.INVALID_PROTOCOL, "tunnel src and dst of different families")
    if t.src == t.dst:
        raise VppRetval(SAME_SRC_DST, "tunnel src == dst")
    if int(t.encap_decap_flags) & ~_TUNNEL_ENCAP_DECAP_FLAG_MASK:
        raise VppRetval(Retval.INVALID_VALUE_2, "unknown encap/decap flags")
    if int(t.mode) not in (_TUNNEL_MODE_P2P, _TUNNEL_MODE_MP):
        raise VppRetval(Retval.INVALID_VALUE_2, "unknown tunnel mode")
    if int(t.flags) & ~_TUNNEL_FLAG_MASK:
        raise VppRetval(Retval.INVALID_VALUE_2, "unknown tunnel flags")
    emu.fib.require(t.dst.version, t.table_id)
    return {
        "src": t.src,
        "dst": t.dst,
        "encap_decap_flags": int(t.encap_decap_flags),
        "mode": int(t.mode),
        # The API value is stored as the internal bits; only TRACK_MTU (internal 2) comes back.
        "flags": 1 if int(t.flags) & _TUNNEL_FLAG_TRACK_MTU else 0,
        "table_id": t.table_id,
        "dscp": int(t.dscp),
        "hop_limit": t.hop_limit,
    }


def _key(k: Any) -> bytes:
    return bytes(k.data)[: min(k.length, _KEY_DATA_LEN)]


@HANDLERS.handler("ipsec_sad_entry_add_v2")
@on_failure(stat_index=NO_INDEX)
def ipsec_sad_entry_add_v2(emu, mp):
    st = emu.state(IpsecState)
    e = mp.entry
    proto = int(e.protocol)
    if proto not in (PROTO_ESP, PROTO_AH):
        raise VppRetval(Retval.INVALID_PROTOCOL, f"protocol {proto}")
    crypto, integ = int(e.crypto_algorithm), int(e.integrity_algorithm)
    if crypto >= _N_CRYPTO_ALG or integ >= _N_INTEG_ALG:
        raise VppRetval(Retval.INVALID_ALGORITHM, f"algorithms {crypto}/{integ}")
    flags = int(e.flags) & _API_SA_FLAGS
    tunnel = _decode_tunnel(emu, e.tunnel) if flags & FLAG_IS_TUNNEL else None
    if e.sad_id in st.sa_by_id:
        raise VppRetval(Retval.ENTRY_ALREADY_EXISTS, f"SA id {e.sad_id} exists")
    if proto == PROTO_AH:
        if integ == INTEG_NONE:
            raise VppRetval(Retval.UNIMPLEMENTED, "AH needs an integrity algorithm")
        crypto = CRYPTO_NONE
    if not _supported(crypto, integ):
        raise VppRetval(Retval.UNIMPLEMENTED, f"no crypto/integ pair {crypto}/{integ}")
    crypto_key = _key(e.crypto_key)
    want = _CIPHER_KEY_LEN.get(crypto)
    if proto == PROTO_ESP and want is not None and crypto_key and len(crypto_key) != want:
        raise VppRetval(Retval.KEY_LENGTH, "cipher key length")  # never the key itself
    if tunnel is not None and tunnel["src"].version == 6:
        flags |= FLAG_IS_TUNNEL_V6
    window = 64
    if flags & FLAG_USE_ANTI_REPLAY and e.anti_replay_window_size > 64:
        window = 1 << (e.anti_replay_window_size - 1).bit_length()
    src_port = dst_port = 0
    if flags & FLAG_UDP_ENCAP:
        src_port = IPSEC_UDP_PORT if e.udp_src_port == _UDP_PORT_NONE else e.udp_src_port
        dst_port = IPSEC_UDP_PORT if e.udp_dst_port == _UDP_PORT_NONE else e.udp_dst_port
    index = st.sa_pool.get()
    st.sas[index] = Sa(index, e.sad_id, e.spi, proto, crypto, crypto_key, integ,
                       _key(e.integrity_key), flags, tunnel, e.salt, src_port, dst_port, window)
    st.sa_by_id[e.sad_id] = index
    return {"stat_index": index}


@HANDLERS.handler("ipsec_sad_entry_del")
def ipsec_sad_entry_del(emu, mp):
    st = emu.state(IpsecState)
    index = st.sa_by_id.get(mp.id)
    if index is None:
        raise VppRetval(Retval.NO_SUCH_ENTRY, f"no SA {mp.id}")
    st.unlock(index)  # VPP drops the creator's reference, in use or not
    return {}


def _swap32(v: int) -> int:
    return int.from_bytes(v.to_bytes(4, "big"), "little")


def _api_key(key: bytes) -> dict:
    return {"length": len(key), "data": key.ljust(_KEY_DATA_LEN, b"\0")}


def _zero_tunnel() -> dict[str, Any]:
    zero = ipaddress.IPv4Address(0)
    return {"instance": 0, "src": zero, "dst": zero, "sw_if_index": 0, "table_id": 0,
            "encap_decap_flags": 0, "mode": 0, "flags": 0, "dscp": 0, "hop_limit": 0}


def _sa_details(st: IpsecState, sa: Sa) -> dict:
    sw_if_index = NO_INDEX
    if sa.is_protect:
        # ipsec_sa_dump_match_sa asks to stop at the first match, but the
        # protection walk ignores that: the last protection using it wins.
        for i in sorted(st.protections):
            p = st.protections[i]
            if p.sa_out == sa.index or sa.index in p.sa_in:
                sw_if_index = p.sw_if_index
    anti_replay = bool(sa.flags & FLAG_USE_ANTI_REPLAY)
    tunnel = _zero_tunnel()
    if sa.tunnel is not None:
        tunnel.update(sa.tunnel)
    return {
        "entry": {
            "sad_id": sa.sa_id,
            "spi": sa.spi,
            "protocol": sa.protocol,
            "crypto_algorithm": sa.crypto_alg,
            "crypto_key": _api_key(sa.crypto_key),
            "integrity_algorithm": sa.integ_alg,
            "integrity_key": _api_key(sa.integ_key),
            "flags": sa.flags,
            "tunnel": tunnel,
            "salt": _swap32(sa.salt_wire),
            "udp_src_port": sa.udp_src_port,
            "udp_dst_port": sa.udp_dst_port,
            "anti_replay_window_size": sa.window if anti_replay else 0,
        },
        "sw_if_index": sw_if_index,
        "seq_outbound": 0,
        "last_seq_inbound": 0,
        # A fresh window has every bit set (nothing below sequence 0 is acceptable).
        "replay_window": (1 << 64) - 1 if anti_replay else 0,
        "thread_index": 0,
        "stat_index": sa.index,
    }


@HANDLERS.handler("ipsec_sa_v5_dump")
def ipsec_sa_v5_dump(emu, mp):
    st = emu.state(IpsecState)
    return [_sa_details(st, st.sas[i]) for i in sorted(st.sas)]


# -- ipsec interfaces -----------------------------------------------------------


@HANDLERS.handler("ipsec_itf_create")
def ipsec_itf_create(emu, mp):
    st = emu.state(IpsecState)
    mode = int(mp.itf.mode)
    if mode not in (_TUNNEL_MODE_P2P, _TUNNEL_MODE_MP):
        return {"retval": int(Retval.INVALID_VALUE_2), "sw_if_index": NO_INDEX}
    used = {itf.instance for itf in st.itfs.values()}
    want = mp.itf.user_instance
    if want == NO_INDEX:
        want = next(i for i in range(ITF_MAX_INSTANCE + 1) if i not in used)
    if want >= ITF_MAX_INSTANCE or want in used:
        return {"retval": int(Retval.INVALID_REGISTRATION), "sw_if_index": NO_INDEX}
    index = st.itf_pool.get()
    iface = emu.interfaces.add(f"ipsec{want}", "IPSEC Tunnel", hw_class=HwClass.IP,
                               dev_instance=want, owner="ipsec", mtu=[_ITF_MTU, 0, 0, 0])
    st.itfs[index] = Itf(index, want, mode, iface.sw_if_index)
    return {"sw_if_index": iface.sw_if_index}


@HANDLERS.handler("ipsec_itf_delete")
def ipsec_itf_delete(emu, mp):
    st = emu.state(IpsecState)
    emu.interfaces.require(mp.sw_if_index)
    itf = st.itf_by_sw_if_index(mp.sw_if_index)
    if itf is None:
        raise VppRetval(Retval.INVALID_SW_IF_INDEX, f"{mp.sw_if_index} is not an ipsec interface")
    emu.interfaces.remove(itf.sw_if_index)  # protections go with it (interface hook)
    del st.itfs[itf.index]
    st.itf_pool.put(itf.index)
    return {}


@HANDLERS.handler("ipsec_itf_dump")
def ipsec_itf_dump(emu, mp):
    st = emu.state(IpsecState)
    return [
        {"itf": {"user_instance": itf.instance, "mode": itf.mode, "sw_if_index": itf.sw_if_index}}
        for itf in (st.itfs[i] for i in sorted(st.itfs))
        if mp.sw_if_index == NO_INDEX or mp.sw_if_index == itf.sw_if_index
    ]


# -- tunnel protection ------------------------------------------------------------


def _tunnel_kind(emu, st: IpsecState, sw_if_index: int) -> tuple[str, bool] | None:
    """("itf"|"ipip", point-to-point) for interfaces with VPP's ip_tun_desc, else None."""
    itf = st.itf_by_sw_if_index(sw_if_index)
    if itf is not None:
        return "itf", itf.mode == _TUNNEL_MODE_P2P
    ipip = emu.state(TunnelState).ipip_by_sw_if_index(sw_if_index)
    if ipip is not None:
        return "ipip", ipip.mode == _TUNNEL_MODE_P2P
    return None


@HANDLERS.handler("ipsec_tunnel_protect_update")
def ipsec_tunnel_protect_update(emu, mp):
    st = emu.state(IpsecState)
    t = mp.tunnel
    emu.interfaces.require(t.sw_if_index)
    sa_in_ids = list(t.sa_in)[: t.n_sa_in]
    if len(sa_in_ids) > ITP_MAX_N_SA_IN:
        raise VppRetval(Retval.LIMIT_EXCEEDED, f"{len(sa_in_ids)} inbound SAs")
    kind = _tunnel_kind(emu, st, t.sw_if_index)
    p2p = kind is not None and kind[1]
    existing = st.find_protection(t.sw_if_index, t.nh, p2p)
    # Each SA is looked up and referenced in turn; on failure, VPP keeps the
    # references already taken (reproduced, see the module doc).
    sa_in: list[int] = []
    for sa_id in sa_in_ids:
        index = st.find_and_lock(sa_id)
        if index is None:
            raise VppRetval(Retval.INVALID_VALUE, f"no inbound SA {sa_id}")
        sa_in.append(index)
    sa_out = st.find_and_lock(t.sa_out)
    if sa_out is None:
        raise VppRetval(Retval.INVALID_VALUE, f"no outbound SA {t.sa_out}")
    if existing is None:
        if kind is None:
            raise VppRetval(Retval.INVALID_SW_IF_INDEX, f"{t.sw_if_index} is not a tunnel")
        index = st.itp_pool.get()
        p = Protection(index, t.sw_if_index, t.nh, sa_out, list(sa_in), kind[0] == "itf")
        st.protections[index] = p
        if p.is_itf and not st.sas[sa_out].flags & FLAG_IS_TUNNEL:
            p.in_db = False  # in the pool, in no lookup table
            raise VppRetval(INVALID_DST_ADDRESS, "an ipsec interface needs a tunnel-mode SA")
        st.config(p, sa_out, sa_in)
    else:
        st.unconfig(existing)
        st.config(existing, sa_out, sa_in)
    # The lookup references are dropped once the protection holds its own.
    st.unlock(sa_out)
    for index in sa_in:
        st.unlock(index)
    return {}


@HANDLERS.handler("ipsec_tunnel_protect_del")
def ipsec_tunnel_protect_del(emu, mp):
    st = emu.state(IpsecState)
    emu.interfaces.require(mp.sw_if_index)
    kind = _tunnel_kind(emu, st, mp.sw_if_index)
    p = st.find_protection(mp.sw_if_index, mp.nh, kind is not None and kind[1])
    if p is None:
        raise VppRetval(Retval.NO_SUCH_ENTRY, f"no protection on {mp.sw_if_index}")
    st.delete_protection(p)
    return {}


def _protect_details(st: IpsecState, p: Protection) -> dict:
    return {"tun": {
        "sw_if_index": p.sw_if_index,
        "nh": p.nh,
        "sa_out": st.sas[p.sa_out].sa_id,
        "n_sa_in": len(p.sa_in),
        "sa_in": [st.sas[i].sa_id for i in p.sa_in],
    }}


@HANDLERS.handler("ipsec_tunnel_protect_dump")
def ipsec_tunnel_protect_dump(emu, mp):
    st = emu.state(IpsecState)
    if mp.sw_if_index == NO_INDEX:
        chosen = [st.protections[i] for i in sorted(st.protections)]
    else:  # the interface's lookup table: half-made entries are not in it
        chosen = [p for i, p in sorted(st.protections.items())
                  if p.in_db and p.sw_if_index == mp.sw_if_index]
    return [_protect_details(st, p) for p in chosen]
