"""Per node pair key derivation: ECDH + HKDF-SHA256 -> AES-GCM-256 keys, salts and SPIs.

Owns: ``PairEpoch`` (the key epochs the two nodes publish), ``DirectionKeys``
(key, salt and SPI of one direction), ``PairKeys`` (both directions, seen
from this node) and ``derive_pair``.

Scheme (version 1), identical on both nodes of a pair:

- names are ordered canonically (``a`` < ``b`` as strings), and so are the
  public keys and epochs with them; this node may be ``a`` or ``b``;
- ``shared = X25519(own private, peer public)``;
- ``okm = HKDF-SHA256(shared, salt="vppagent-ipsec-v1", info=context, 72 bytes)``
  where ``context`` = label, both names (length-prefixed), both public keys,
  both epochs; bytes 0..35 are the ``a -> b`` key (32) and salt (4), bytes
  36..71 the ``b -> a`` ones. Binding names, keys and epochs into ``info``
  means a different peer, a new key or a new epoch gives unrelated keys;
- SPIs come from public data only (``spi.derive_spi``), so that every node
  can check every pair's SPIs for collisions.

Must not touch: VPP, files (``keys`` loads the node key).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import BadPeerKey
from .keys import IPSEC_PUBLIC_KEY, KEY_LEN, NodeKey
from .spi import derive_spi

SALT = b"vppagent-ipsec-v1"
LABEL = b"vppagent node pair keys v1"
CIPHER_KEY_LEN = 32  # AES-GCM-256
GCM_SALT_LEN = 4


@dataclass(frozen=True, order=True)
class PairEpoch:
    """The key epochs of the two nodes of a pair, in canonical (name) order."""

    a: int = 0
    b: int = 0

    def __post_init__(self) -> None:
        for v in (self.a, self.b):
            if not 0 <= v < 1 << 63:
                raise ValueError(f"key epoch out of range: {v}")


@dataclass(frozen=True)
class DirectionKeys:
    """Key material of one direction of a pair (one SA on each node)."""

    key: bytes = field(repr=False)
    salt: int = field(repr=False)  # the 4 GCM salt bytes, big-endian (VPP's SA salt field)
    spi: int


@dataclass(frozen=True)
class PairKeys:
    """A pair's keys as this node uses them: outbound SA and inbound SA."""

    local: str
    peer: str
    epoch: PairEpoch
    outbound: DirectionKeys
    inbound: DirectionKeys

    @property
    def generation(self) -> tuple[PairEpoch, int, int]:
        """What identifies this generation on both nodes (no secret in it)."""
        return (self.epoch, self.outbound.spi, self.inbound.spi)


def canonical(local: str, peer: str) -> tuple[str, str]:
    if local == peer:
        raise ValueError(f"a node pair needs two nodes, got {local!r} twice")
    return (local, peer) if local < peer else (peer, local)


def _lp(b: bytes) -> bytes:
    return struct.pack(">H", len(b)) + b


def context(a: str, b: str, pub_a: bytes, pub_b: bytes, epoch: PairEpoch) -> bytes:
    """The HKDF info string binding a pair (public data only)."""
    return (LABEL + _lp(a.encode()) + _lp(b.encode()) + _lp(pub_a) + _lp(pub_b)
            + struct.pack(">QQ", epoch.a, epoch.b))


def derive_pair(local: str, own: NodeKey, peer: str, peer_public: bytes, epoch: PairEpoch) -> PairKeys:
    """Both directions' keys and SPIs of the pair (local, peer), as ``local`` uses them."""
    a, b = canonical(local, peer)
    if len(peer_public) != KEY_LEN:
        raise BadPeerKey(peer, IPSEC_PUBLIC_KEY, f"{len(peer_public)} bytes, an X25519 key is {KEY_LEN}")
    pub_a, pub_b = (own.public, peer_public) if local == a else (peer_public, own.public)
    try:
        shared = own.exchange(peer_public)
    except ValueError:
        raise BadPeerKey(peer, IPSEC_PUBLIC_KEY, "a low-order point (no shared secret)") from None
    info = context(a, b, pub_a, pub_b, epoch)
    okm = HKDF(algorithm=hashes.SHA256(), length=2 * (CIPHER_KEY_LEN + GCM_SALT_LEN),
               salt=SALT, info=info).derive(shared)
    n = CIPHER_KEY_LEN + GCM_SALT_LEN

    def direction(chunk: bytes, src: str, dst: str) -> DirectionKeys:
        return DirectionKeys(chunk[:CIPHER_KEY_LEN], int.from_bytes(chunk[CIPHER_KEY_LEN:n], "big"),
                             derive_spi(src, dst, info))

    ab = direction(okm[:n], a, b)
    ba = direction(okm[n:], b, a)
    out, inb = (ab, ba) if local == a else (ba, ab)
    return PairKeys(local, peer, epoch, out, inb)


def pair_spis(local: str, local_public: bytes, peer: str, peer_public: bytes,
              epoch: PairEpoch) -> tuple[int, int]:
    """(outbound, inbound) SPIs of the pair from ``local``'s side, from public data only."""
    a, b = canonical(local, peer)
    pub_a, pub_b = (local_public, peer_public) if local == a else (peer_public, local_public)
    info = context(a, b, pub_a, pub_b, epoch)
    return derive_spi(local, peer, info), derive_spi(peer, local, info)
