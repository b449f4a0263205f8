"""IPsec: security associations, IPsec tunnel interfaces and tunnel protection.

Owns the typed calls on VPP's IPsec API used for route-based node-to-node
encryption: SAs (ESP, AES-GCM-256 by default, anti-replay, tunnel or
transport mode, optional UDP encapsulation), ``ipsecN`` interfaces, and the
protection of a tunnel interface (ipsec or ipip) by one outbound and up to
four inbound SAs. Must not: choose keys or SPIs (``ipsec/`` does).

KEYS ARE SECRETS. Key material and salts are never put in exceptions, logs
or reprs: key fields are ``repr=False``, and errors carry only the SA id and
SPI. VPP's SA dump returns the keys; :class:`Sa` keeps them out of its repr.

VPP semantics worth knowing (26.06):

- SA ids are chosen by the caller; adding an existing id fails with
  ENTRY_ALREADY_EXISTS (-116).
- Deleting an SA only drops the creator's reference. An SA still used by a
  tunnel protection is *not* refused: VPP answers 0 and keeps it alive (and
  dumpable) until the protection lets go of it; a second delete then frees
  it under the protection's feet. :func:`delete_sa` therefore refuses, with
  :class:`SaInUseError`, an SA that a protection still uses.
- Protecting an ``ipsecN`` interface needs a tunnel-mode outbound SA
  (the interface has no encapsulation of its own); VPP answers -58 otherwise
  and leaves a half-made protection behind, so :func:`protect` checks first.
- The SA dump ignores its ``sa_id`` filter and reports the salt byte-swapped
  (VPP stores it in network order and swaps it again on the way out);
  :func:`dump_sas` filters and swaps it back.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Sequence

from vppagent.iptypes import IpAddress, U32_NONE

from .client import VppClient
from .errors import VppApiError, VppError

MESSAGES = (
    "ipsec_sad_entry_add_v2",
    "ipsec_sad_entry_del",
    "ipsec_sa_v5_dump",
    "ipsec_itf_create",
    "ipsec_itf_delete",
    "ipsec_itf_dump",
    "ipsec_tunnel_protect_update",
    "ipsec_tunnel_protect_del",
    "ipsec_tunnel_protect_dump",
)

ALL = U32_NONE
AUTO_INSTANCE = U32_NONE
NO_INTERFACE = U32_NONE
IPSEC_UDP_PORT = 4500
MAX_SA_IN = 4  # inbound SAs per protection (VPP's ITP_MAX_N_SA_IN)
MAX_KEY_LEN = 128


class Protocol(IntEnum):
    ESP = 50
    AH = 51


class CryptoAlg(IntEnum):
    NONE = 0
    AES_CBC_128 = 1
    AES_CBC_192 = 2
    AES_CBC_256 = 3
    AES_CTR_128 = 4
    AES_CTR_192 = 5
    AES_CTR_256 = 6
    AES_GCM_128 = 7
    AES_GCM_192 = 8
    AES_GCM_256 = 9
    DES_CBC = 10
    TDES_CBC = 11
    CHACHA20_POLY1305 = 12
    AES_NULL_GMAC_128 = 13
    AES_NULL_GMAC_192 = 14
    AES_NULL_GMAC_256 = 15


class IntegAlg(IntEnum):
    NONE = 0
    MD5_96 = 1
    SHA1_96 = 2
    SHA_256_96 = 3
    SHA_256_128 = 4
    SHA_384_192 = 5
    SHA_512_256 = 6


class SaFlags(IntFlag):
    NONE = 0
    USE_ESN = 1
    USE_ANTI_REPLAY = 2
    IS_TUNNEL = 4
    IS_TUNNEL_V6 = 8
    UDP_ENCAP = 16
    IS_INBOUND = 64
    ASYNC = 128


class TunnelMode(IntEnum):
    P2P = 0
    MP = 1


# Cipher key lengths VPP's crypto layer insists on (bytes).
CIPHER_KEY_LEN = {
    CryptoAlg.AES_CBC_128: 16, CryptoAlg.AES_CBC_192: 24, CryptoAlg.AES_CBC_256: 32,
    CryptoAlg.AES_CTR_128: 16, CryptoAlg.AES_CTR_192: 24, CryptoAlg.AES_CTR_256: 32,
    CryptoAlg.AES_GCM_128: 16, CryptoAlg.AES_GCM_192: 24, CryptoAlg.AES_GCM_256: 32,
    CryptoAlg.DES_CBC: 8, CryptoAlg.TDES_CBC: 24, CryptoAlg.CHACHA20_POLY1305: 32,
    CryptoAlg.AES_NULL_GMAC_128: 16, CryptoAlg.AES_NULL_GMAC_192: 24, CryptoAlg.AES_NULL_GMAC_256: 32,
}


class SaInUseError(VppError):
    """An SA is still used by a tunnel protection; remove the protection first."""

    def __init__(self, sa_id: int, sw_if_index: int):
        self.sa_id = sa_id
        self.sw_if_index = sw_if_index
        super().__init__(f"SA {sa_id} is in use by the tunnel protection of sw_if_index {sw_if_index}")


class ProtectionError(VppError):
    """A protection request that VPP would mishandle, refused before sending."""


@dataclass(frozen=True)
class SaTunnel:
    """Outer addresses of a tunnel-mode SA."""

    src: IpAddress
    dst: IpAddress
    table_id: int = 0
    dscp: int = 0
    hop_limit: int = 0
    encap_decap_flags: int = 0

    @staticmethod
    def of(src: str | IpAddress, dst: str | IpAddress, table_id: int = 0) -> "SaTunnel":
        return SaTunnel(ipaddress.ip_address(src), ipaddress.ip_address(dst), table_id)


@dataclass(frozen=True)
class SaSpec:
    sa_id: int
    spi: int
    crypto_key: bytes = field(repr=False)
    salt: int = field(default=0, repr=False)  # GCM: the 4 bytes after the key, big-endian
    inbound: bool = False
    crypto_alg: CryptoAlg = CryptoAlg.AES_GCM_256
    integ_alg: IntegAlg = IntegAlg.NONE  # AEAD ciphers authenticate on their own
    integ_key: bytes = field(default=b"", repr=False)
    protocol: Protocol = Protocol.ESP
    anti_replay: bool = True
    anti_replay_window: int = 64  # rounded up to a power of two by VPP
    esn: bool = False
    tunnel: SaTunnel | None = None  # None: transport mode
    udp_encap: bool = False
    udp_src_port: int = IPSEC_UDP_PORT
    udp_dst_port: int = IPSEC_UDP_PORT

    def __post_init__(self) -> None:
        # Errors name the field and lengths, never the value.
        for name in ("crypto_key", "integ_key"):
            if len(getattr(self, name)) > MAX_KEY_LEN:
                raise ValueError(f"SA {self.sa_id}: {name} longer than {MAX_KEY_LEN} bytes")
        want = CIPHER_KEY_LEN.get(self.crypto_alg)
        if self.protocol == Protocol.ESP and want is not None and len(self.crypto_key) != want:
            # VPP accepts an empty key (all zeros) and refuses other lengths
            # with KEY_LENGTH; neither is what a caller means.
            raise ValueError(f"SA {self.sa_id}: {self.crypto_alg.name} needs a {want}-byte key, "
                             f"got {len(self.crypto_key)} bytes")

    def flags(self) -> SaFlags:
        f = SaFlags.NONE
        if self.esn:
            f |= SaFlags.USE_ESN
        if self.anti_replay:
            f |= SaFlags.USE_ANTI_REPLAY
        if self.tunnel is not None:
            f |= SaFlags.IS_TUNNEL
            if self.tunnel.src.version == 6:
                f |= SaFlags.IS_TUNNEL_V6
        if self.udp_encap:
            f |= SaFlags.UDP_ENCAP
        if self.inbound:
            f |= SaFlags.IS_INBOUND
        return f


@dataclass(frozen=True)
class Sa:
    """An SA as VPP reports it."""

    sa_id: int
    spi: int
    protocol: Protocol | int
    crypto_alg: CryptoAlg | int
    integ_alg: IntegAlg | int
    flags: SaFlags
    tunnel: SaTunnel | None
    udp_src_port: int
    udp_dst_port: int
    anti_replay_window: int  # 0 without anti-replay
    sw_if_index: int | None  # the protected interface using it, if any
    stat_index: int
    seq_outbound: int
    last_seq_inbound: int
    thread_index: int
    crypto_key: bytes = field(repr=False)
    integ_key: bytes = field(repr=False)
    salt: int = field(repr=False)

    @property
    def inbound(self) -> bool:
        return bool(self.flags & SaFlags.IS_INBOUND)


@dataclass(frozen=True)
class IpsecItf:
    sw_if_index: int
    instance: int
    mode: TunnelMode


@dataclass(frozen=True)
class Protection:
    sw_if_index: int
    sa_out: int
    sa_in: tuple[int, ...]
    nh: IpAddress | None = None  # next hop, for point-to-multipoint interfaces


def _api_key(key: bytes) -> dict:
    return {"length": len(key), "data": key}


def _api_tunnel(t: SaTunnel | None) -> dict:
    if t is None:
        zero = ipaddress.IPv4Address(0)
        return {"instance": ALL, "src": zero, "dst": zero, "sw_if_index": NO_INTERFACE,
                "table_id": 0, "encap_decap_flags": 0, "mode": 0, "flags": 0, "dscp": 0,
                "hop_limit": 0}
    return {
        "instance": ALL,
        "src": t.src,
        "dst": t.dst,
        "sw_if_index": NO_INTERFACE,
        "table_id": t.table_id,
        "encap_decap_flags": t.encap_decap_flags,
        "mode": 0,
        "flags": 0,
        "dscp": t.dscp,
        "hop_limit": t.hop_limit,
    }


def _ident(spec_or_id: SaSpec | int) -> dict:
    if isinstance(spec_or_id, SaSpec):
        return {"sa_id": spec_or_id.sa_id, "spi": spec_or_id.spi}
    return {"sa_id": spec_or_id}


def add_sa(vpp: VppClient, spec: SaSpec) -> int:
    """Add an SA; return its stat index."""
    entry = {
        "sad_id": spec.sa_id,
        "spi": spec.spi,
        "protocol": int(spec.protocol),
        "crypto_algorithm": int(spec.crypto_alg),
        "crypto_key": _api_key(spec.crypto_key),
        "integrity_algorithm": int(spec.integ_alg),
        "integrity_key": _api_key(spec.integ_key),
        "flags": int(spec.flags()),
        "tunnel": _api_tunnel(spec.tunnel),
        "salt": spec.salt,
        "udp_src_port": spec.udp_src_port,
        "udp_dst_port": spec.udp_dst_port,
        "anti_replay_window_size": spec.anti_replay_window,
    }
    try:
        return vpp.call("ipsec_sad_entry_add_v2", entry=entry).stat_index
    except VppApiError as e:
        # The client shows no nested fields; name the SA (never its keys).
        raise VppApiError(e.message, e.retval, _ident(spec)) from None


def delete_sa(vpp: VppClient, sa_id: int, *, check_unused: bool = True) -> None:
    """Delete an SA. Refuses (SaInUseError) one that a protection still uses.

    ``check_unused=False`` skips the protection dump (for callers that have
    just removed the protections themselves).
    """
    if check_unused:
        for p in dump_protections(vpp):
            if sa_id == p.sa_out or sa_id in p.sa_in:
                raise SaInUseError(sa_id, p.sw_if_index)
    vpp.call("ipsec_sad_entry_del", id=sa_id)


def _swap32(v: int) -> int:
    return int.from_bytes(v.to_bytes(4, "little"), "big")


def _sa(d) -> Sa:
    e = d.entry
    flags = SaFlags(e.flags)
    tunnel = None
    if flags & SaFlags.IS_TUNNEL:
        t = e.tunnel
        tunnel = SaTunnel(t.src, t.dst, t.table_id, int(t.dscp), t.hop_limit, int(t.encap_decap_flags))

    def enum(cls, v):
        try:
            return cls(v)
        except ValueError:
            return v

    return Sa(
        sa_id=e.sad_id,
        spi=e.spi,
        protocol=enum(Protocol, e.protocol),
        crypto_alg=enum(CryptoAlg, e.crypto_algorithm),
        integ_alg=enum(IntegAlg, e.integrity_algorithm),
        flags=flags,
        tunnel=tunnel,
        udp_src_port=e.udp_src_port,
        udp_dst_port=e.udp_dst_port,
        anti_replay_window=e.anti_replay_window_size,
        sw_if_index=None if d.sw_if_index == NO_INTERFACE else d.sw_if_index,
        stat_index=d.stat_index,
        seq_outbound=d.seq_outbound,
        last_seq_inbound=d.last_seq_inbound,
        thread_index=d.thread_index,
        crypto_key=bytes(e.crypto_key.data[: e.crypto_key.length]),
        integ_key=bytes(e.integrity_key.data[: e.integrity_key.length]),
        salt=_swap32(e.salt),
    )


def dump_sas(vpp: VppClient, sa_id: int | None = None) -> list[Sa]:
    """All SAs, or the one with ``sa_id`` (VPP itself ignores the filter)."""
    sas = [_sa(d) for d in vpp.dump("ipsec_sa_v5_dump", sa_id=ALL)]
    return sas if sa_id is None else [s for s in sas if s.sa_id == sa_id]


def get_sa(vpp: VppClient, sa_id: int) -> Sa | None:
    found = dump_sas(vpp, sa_id)
    return found[0] if found else None


def create_itf(vpp: VppClient, instance: int = AUTO_INSTANCE, mode: TunnelMode = TunnelMode.P2P) -> int:
    """Create an ``ipsecN`` interface; return its sw_if_index."""
    return vpp.call("ipsec_itf_create", itf={"user_instance": instance, "mode": int(mode),
                                              "sw_if_index": NO_INTERFACE}).sw_if_index


def delete_itf(vpp: VppClient, sw_if_index: int) -> None:
    """Delete an ``ipsecN`` interface (VPP drops its protections with it)."""
    vpp.call("ipsec_itf_delete", sw_if_index=sw_if_index)


def dump_itfs(vpp: VppClient, sw_if_index: int = ALL) -> list[IpsecItf]:
    return [
        IpsecItf(d.itf.sw_if_index, d.itf.user_instance, TunnelMode(d.itf.mode))
        for d in vpp.dump("ipsec_itf_dump", sw_if_index=sw_if_index)
    ]


def _nh(nh: str | IpAddress | None) -> IpAddress:
    return ipaddress.ip_address(nh) if nh is not None else ipaddress.IPv4Address(0)


def protect(
    vpp: VppClient,
    sw_if_index: int,
    sa_out: int,
    sa_in: Sequence[int],
    *,
    nh: str | IpAddress | None = None,
) -> None:
    """Protect a tunnel interface with ``sa_out`` and ``sa_in``, or swap its SAs.

    Updating an existing protection replaces its SAs without a gap, which
    is how rekeying works.
    """
    if len(sa_in) > MAX_SA_IN:
        raise ProtectionError(f"sw_if_index {sw_if_index}: {len(sa_in)} inbound SAs, VPP takes {MAX_SA_IN}")
    if dump_itfs(vpp, sw_if_index):
        out = get_sa(vpp, sa_out)
        if out is not None and out.tunnel is None:
            raise ProtectionError(
                f"sw_if_index {sw_if_index} is an ipsec interface: outbound SA {sa_out} must be tunnel mode")
    vpp.call(
        "ipsec_tunnel_protect_update",
        tunnel={"sw_if_index": sw_if_index, "nh": _nh(nh), "sa_out": sa_out,
                "n_sa_in": len(sa_in), "sa_in": list(sa_in)},
    )


def unprotect(vpp: VppClient, sw_if_index: int, *, nh: str | IpAddress | None = None) -> None:
    vpp.call("ipsec_tunnel_protect_del", sw_if_index=sw_if_index, nh=_nh(nh))


def dump_protections(vpp: VppClient, sw_if_index: int = ALL) -> list[Protection]:
    out = []
    for d in vpp.dump("ipsec_tunnel_protect_dump", sw_if_index=sw_if_index):
        t = d.tun
        nh = t.nh if t.nh is not None and not t.nh.is_unspecified else None
        out.append(Protection(t.sw_if_index, t.sa_out, tuple(t.sa_in[: t.n_sa_in]), nh))
    return out
