"""Pair key derivation, SPIs and collisions (unit tier)."""
from __future__ import annotations

import itertools

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ipsec import BadPeerKey, NodeKey, PairEpoch, derive_pair, derive_spi, inbound_collisions, pair_spis
from ipsec.spi import MIN_SPI


@pytest.fixture(scope="module")
def nodes():
    return {n: NodeKey.generate() for n in ("node-a", "node-b", "node-c")}


def test_both_nodes_derive_matching_keys_and_spis(nodes):
    a, b = nodes["node-a"], nodes["node-b"]
    e = PairEpoch(3, 7)
    ka = derive_pair("node-a", a, "node-b", b.public, e)
    kb = derive_pair("node-b", b, "node-a", a.public, e)
    assert ka.outbound == kb.inbound and ka.inbound == kb.outbound
    assert len(ka.outbound.key) == 32 and 0 <= ka.outbound.salt < 1 << 32
    assert ka.outbound.key != ka.inbound.key and ka.outbound.spi != ka.inbound.spi
    assert ka.outbound.spi >= MIN_SPI and ka.inbound.spi >= MIN_SPI
    # Public data alone gives the same SPIs (what lets any node check collisions).
    assert pair_spis("node-a", a.public, "node-b", b.public, e) == (ka.outbound.spi, ka.inbound.spi)
    # The keys really work as AES-GCM-256 keys with their salts: what one side seals the other opens.
    nonce_a = ka.outbound.salt.to_bytes(4, "big") + (1).to_bytes(8, "big")
    sealed = AESGCM(ka.outbound.key).encrypt(nonce_a, b"pod payload", b"")
    nonce_b = kb.inbound.salt.to_bytes(4, "big") + (1).to_bytes(8, "big")
    assert AESGCM(kb.inbound.key).decrypt(nonce_b, sealed, b"") == b"pod payload"


def test_epoch_peer_and_key_change_give_unrelated_keys(nodes):
    a, b, c = nodes["node-a"], nodes["node-b"], nodes["node-c"]
    base = derive_pair("node-a", a, "node-b", b.public, PairEpoch(0, 0))
    variants = [
        derive_pair("node-a", a, "node-b", b.public, PairEpoch(1, 0)),
        derive_pair("node-a", a, "node-b", b.public, PairEpoch(0, 1)),
        derive_pair("node-a", a, "node-c", c.public, PairEpoch(0, 0)),
        derive_pair("node-a", a, "node-b", NodeKey.generate().public, PairEpoch(0, 0)),
    ]
    keys = {base.outbound.key, base.inbound.key}
    spis = {base.outbound.spi, base.inbound.spi}
    for v in variants:
        assert v.generation != base.generation
        keys |= {v.outbound.key, v.inbound.key}
        spis |= {v.outbound.spi, v.inbound.spi}
    assert len(keys) == 2 * (1 + len(variants))
    assert len(spis) == 2 * (1 + len(variants))


def test_names_are_bound_not_just_keys(nodes):
    # The same two key pairs under other node names give other keys.
    a, b = nodes["node-a"], nodes["node-b"]
    k1 = derive_pair("node-a", a, "node-b", b.public, PairEpoch())
    k2 = derive_pair("node-x", a, "node-b", b.public, PairEpoch())
    assert k1.outbound.key != k2.outbound.key


def test_bad_peer_keys_are_typed_errors(nodes):
    a = nodes["node-a"]
    with pytest.raises(BadPeerKey):
        derive_pair("node-a", a, "node-b", b"\x01" * 31, PairEpoch())
    with pytest.raises(BadPeerKey) as e:
        derive_pair("node-a", a, "node-b", bytes(32), PairEpoch())  # low order: no shared secret
    assert e.value.node == "node-b"
    with pytest.raises(ValueError):
        derive_pair("node-a", a, "node-a", a.public, PairEpoch())
    with pytest.raises(ValueError):
        PairEpoch(-1, 0)


def test_spi_collisions_are_detected_deterministically():
    assert inbound_collisions("r", {"s1": 1000, "s2": 2000}) == {}
    clash = inbound_collisions("r", {"s2": 1000, "s1": 1000, "s3": 3000}, in_use={3000})
    assert set(clash) == {"s2", "s3"}  # s1 (first by name) keeps 1000; 3000 is held already
    assert clash["s2"].spi == 1000 and clash["s2"].receiver == "r"
    assert set(inbound_collisions("r", {"s": 5})) == {"s"}  # reserved range


def test_derived_spis_spread_over_the_space():
    spis = {derive_spi(f"n{i}", f"n{j}", b"ctx") for i, j in itertools.permutations(range(60), 2)}
    assert len(spis) == 60 * 59
    assert min(spis) >= MIN_SPI
