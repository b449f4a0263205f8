"""Deterministic SPIs and the collision check.

Owns ``derive_spi`` (an SPI from public data: sender, receiver and the
pair's context, so both nodes - and any third node - compute the same) and
``inbound_collisions`` (the SPIs a receiving node would hold must be
distinct from each other and from SPIs already in use there). VPP finds an
inbound tunnel SA by (peer address, SPI), so the caller checks within one
pair: a new generation's SPIs against the generations still held.

SPIs 0..255 are reserved by RFC 4303 and never derived. A collision is
astronomically rare (about n^2 / 2^33 for n SAs on a node) but is checked,
never assumed away: it raises ``SpiCollision`` naming the pair, and the
caller leaves that pair as it was (and reports it) until the next epoch
derives fresh SPIs.

Must not touch: keys (SPIs are not secret and never derived from secrets).
"""
from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping

from .errors import SpiCollision

SPI_LABEL = b"vppagent spi v1"
MIN_SPI = 256
SPI_SPACE = (1 << 32) - MIN_SPI


def derive_spi(sender: str, receiver: str, context: bytes) -> int:
    """The SPI of the ``sender -> receiver`` direction of a pair, from public data."""
    h = hashlib.sha256(SPI_LABEL + struct.pack(">H", len(sender)) + sender.encode()
                       + struct.pack(">H", len(receiver)) + receiver.encode() + context).digest()
    return MIN_SPI + int.from_bytes(h[:8], "big") % SPI_SPACE


def inbound_collisions(receiver: str, wanted: Mapping[str, int],
                       in_use: Iterable[int] = ()) -> dict[str, SpiCollision]:
    """The senders whose SPI towards ``receiver`` collides, with the typed error for each.

    ``wanted`` maps a sender to the SPI it will use towards ``receiver``;
    ``in_use`` are SPIs of other SAs already held there (e.g. a previous
    generation). Senders are taken in name order and the first claimant of
    an SPI keeps it, so every node that sees the same cluster reaches the
    same verdict.
    """
    taken = set(in_use)
    out: dict[str, SpiCollision] = {}
    for sender in sorted(wanted):
        spi = wanted[sender]
        if spi < MIN_SPI or spi in taken:
            out[sender] = SpiCollision(receiver, sender, spi)
            continue
        taken.add(spi)
    return out
