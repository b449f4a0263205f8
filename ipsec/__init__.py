"""Key material and negotiation for node-to-node encryption, without an IKE daemon.

Owns: this node's X25519 key pairs (``keys``: 0600 files, public key
annotations), per pair key derivation (``derive``: ECDH + HKDF-SHA256 bound
to both node names, both public keys and the key epochs -> AES-GCM-256 keys
and salts per direction), deterministic SPIs and their collision check
(``spi``), and the make-before-break rekey schedule (``rekey``). Nodes agree
on keys through what they publish on their Node objects (public key, key
epoch), never through a separate channel.

Must not touch: VPP (``vppagent.connectivity`` programs SAs and WireGuard
from what this package derives), Kubernetes, logs with key material.
"""
from .derive import DirectionKeys, PairEpoch, PairKeys, derive_pair, pair_spis
from .errors import BadAnnotation, BadPeerKey, KeyFileError, KeyNegotiationError, SpiCollision
from .keys import IPSEC_PUBLIC_KEY, WIREGUARD_PUBLIC_KEY, NodeKey, decode_public, encode_public, load, load_or_create
from .rekey import IPSEC_KEY_EPOCH, EpochStore, Lifetime, PairRekey, RekeyTimers, SaPlan, parse_epoch
from .spi import derive_spi, inbound_collisions

__all__ = [
    "BadAnnotation", "BadPeerKey", "DirectionKeys", "EpochStore", "IPSEC_KEY_EPOCH", "IPSEC_PUBLIC_KEY",
    "KeyFileError", "KeyNegotiationError", "Lifetime", "NodeKey", "PairEpoch", "PairKeys", "PairRekey",
    "RekeyTimers", "SaPlan", "SpiCollision", "WIREGUARD_PUBLIC_KEY", "decode_public", "derive_pair",
    "derive_spi", "encode_public", "inbound_collisions", "load", "load_or_create", "pair_spis", "parse_epoch",
]
