"""Make-before-break rekey schedule, lifetimes and the epoch store (unit tier)."""
from __future__ import annotations

import os
import stat

import pytest

from ipsec import (
    BadAnnotation,
    EpochStore,
    KeyFileError,
    Lifetime,
    NodeKey,
    PairEpoch,
    PairRekey,
    RekeyTimers,
    derive_pair,
    parse_epoch,
)


@pytest.fixture(scope="module")
def keys():
    a, b = NodeKey.generate(), NodeKey.generate()
    return [derive_pair("a", a, "b", b.public, PairEpoch(e, 0)) for e in range(6)]


def test_first_generation_is_used_at_once(keys):
    r = PairRekey(RekeyTimers(5, 30))
    assert r.plan(0) is None
    assert r.observe(keys[0], 100.0)
    assert not r.observe(keys[0], 101.0)  # same generation again: nothing new
    p = r.plan(100.0)
    assert p.outbound == keys[0] and p.inbound == (keys[0],)
    assert r.next_change(100.0) is None


def test_rekey_is_make_before_break(keys):
    r = PairRekey(RekeyTimers(switch_after_s=5, overlap_s=30))
    r.observe(keys[0], 0.0)
    r.plan(0.0)
    r.observe(keys[1], 100.0)
    # Phase 1: new inbound next to the old; still sending with the old key.
    p = r.plan(100.0)
    assert p.outbound == keys[0] and p.inbound == (keys[1], keys[0])
    assert r.next_change(100.0) == 105.0
    # Phase 2: sending with the new key; the old inbound stays for the overlap.
    p = r.plan(105.0)
    assert p.outbound == keys[1] and p.inbound == (keys[1], keys[0])
    assert r.next_change(105.0) == 135.0
    # Phase 3: only the new generation.
    p = r.plan(135.0)
    assert p.outbound == keys[1] and p.inbound == (keys[1],)
    assert r.next_change(135.0) is None
    # At every instant, the SA the peer sends with (its outbound = our inbound of the same
    # generation, same schedule) is among our inbound SAs: checked over the whole window.
    r2 = PairRekey(RekeyTimers(5, 30))
    r2.observe(keys[0], 0.0)
    r2.observe(keys[1], 100.0)
    peer = PairRekey(RekeyTimers(5, 30))
    peer.observe(keys[0], 0.0)
    peer.observe(keys[1], 103.0)  # the peer sees the change 3 s later (< switch_after)
    t = 99.0
    while t < 150:
        assert peer.plan(t).outbound in r2.plan(t).inbound, t
        assert r2.plan(t).outbound in peer.plan(t).inbound, t
        t += 0.25


def test_rapid_changes_keep_at_most_four_inbound(keys):
    r = PairRekey(RekeyTimers(5, 30))
    r.observe(keys[0], 0.0)
    for i in range(1, 6):
        r.observe(keys[i], 100.0 + i)
        p = r.plan(100.0 + i)
        assert len(p.inbound) <= 4
        assert p.outbound in p.inbound
    p = r.plan(200.0)
    assert p.outbound == keys[5] and p.inbound == (keys[5],)


def test_lifetime_triggers_by_time_or_bytes():
    lt = Lifetime(seconds=60, bytes=10_000)
    assert not lt.expired(59.9, 9_999)
    assert lt.expired(60, 0)
    assert lt.expired(0, 10_000)
    with pytest.raises(ValueError):
        Lifetime(seconds=0)


def test_epoch_store_advances_and_survives(tmp_path):
    s = EpochStore(tmp_path / "d" / "ipsec.epoch")
    assert s.load() == 0
    assert s.advance() == 1
    assert s.advance() == 2
    assert EpochStore(s.path).load() == 2
    assert stat.S_IMODE(os.stat(s.path).st_mode) == 0o600
    s.path.write_text("garbage")
    with pytest.raises(KeyFileError):
        s.load()


def test_epoch_annotation_parsing():
    assert parse_epoch(None, node="n") == 0
    assert parse_epoch(" 12 ", node="n") == 12
    for bad in ("-1", "x", "1.5", "9" * 30):
        with pytest.raises(BadAnnotation):
            parse_epoch(bad, node="n")


@pytest.mark.parametrize("what", ["epoch", "key"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch, what):
    """The epoch and the key are written by the one crash-safe writer (vppagent/atomic.py): a write
    that fails (a full disk at fsync) keeps what was there and leaves nothing half-written beside it."""
    from ipsec import load_or_create

    d = tmp_path / "keys"
    if what == "epoch":
        store = EpochStore(d / "ipsec.epoch")
        store.advance()
        write = store.advance
    else:
        write = lambda: load_or_create(d / "node.key")  # noqa: E731
    before = {p.name: p.read_bytes() for p in d.iterdir()} if d.exists() else {}

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write()
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
