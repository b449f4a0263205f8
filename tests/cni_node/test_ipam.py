"""IPAM: assignment rules, persistence and crash recovery, concurrency."""
from __future__ import annotations

import json
import threading
from ipaddress import ip_address, ip_network

import pytest

from vppagent.cni.ipam import Ipam, IpamError, IpamStateError, RangeExhausted

V4 = ip_network("10.244.1.0/24")
V6 = ip_network("fd00:10:244:1::/64")


@pytest.fixture
def ipam(tmp_path):
    i = Ipam(tmp_path)
    yield i
    i.close()


def test_v4_skips_network_first_host_and_broadcast(tmp_path):
    with Ipam(tmp_path) as ipam:
        ipam.set_ranges([ip_network("10.0.0.0/29")])   # .2 .. .6 assignable
        got = [ipam.allocate(f"c{i}", "eth0")[0] for i in range(5)]
        assert got == [ip_address(f"10.0.0.{i}") for i in range(2, 7)]
        with pytest.raises(RangeExhausted) as e:
            ipam.allocate("c5", "eth0")
        assert "10.0.0.0/29" in str(e.value) and "all 5 assignable" in str(e.value)
        assert e.value.size == 5 and e.value.range == ip_network("10.0.0.0/29")
        assert ("c5", "eth0") not in ipam.allocations()


def test_v6_on_a_64_allocates_without_materialising(ipam):
    ipam.set_ranges([V6])
    a = ipam.allocate("c1", "eth0")
    b = ipam.allocate("c2", "eth0")
    assert a == (ip_address("fd00:10:244:1::2"),)
    assert b == (ip_address("fd00:10:244:1::3"),)


def test_dual_stack_gives_one_address_per_family(ipam):
    ipam.set_ranges([V4, V6])
    ips = ipam.allocate("c1", "eth0")
    assert [i.version for i in ips] == [4, 6]
    assert ips[0] in V4 and ips[1] in V6


def test_allocate_is_idempotent_per_key(ipam):
    ipam.set_ranges([V4])
    first = ipam.allocate("c1", "eth0")
    assert ipam.allocate("c1", "eth0") == first
    assert ipam.allocate("c1", "net1") != first
    assert len(ipam.allocations()) == 2


def test_freed_address_is_not_reused_at_once_round_robin(tmp_path):
    with Ipam(tmp_path) as ipam:
        ipam.set_ranges([ip_network("10.0.0.0/29")])   # .2 .. .6
        a = ipam.allocate("a", "eth0")[0]
        ipam.allocate("b", "eth0")
        assert ipam.release("a", "eth0") is True
        assert ipam.release("a", "eth0") is False
        assert ipam.allocate("c", "eth0")[0] == ip_address("10.0.0.4")   # after the last one
        assert ipam.allocate("d", "eth0")[0] == ip_address("10.0.0.5")
        assert ipam.allocate("e", "eth0")[0] == ip_address("10.0.0.6")
        assert ipam.allocate("f", "eth0")[0] == a                       # wrapped to the freed .2


def test_no_ranges_is_a_clear_error(ipam):
    with pytest.raises(IpamError, match="no pod CIDR known yet"):
        ipam.allocate("c1", "eth0")


def test_dual_stack_exhaustion_keeps_nothing_half_allocated(tmp_path):
    with Ipam(tmp_path) as ipam:
        ipam.set_ranges([ip_network("10.0.0.0/24"), ip_network("fd00::/125")])  # v6: ::2..::7
        for i in range(6):
            ipam.allocate(f"c{i}", "eth0")
        before = ipam.allocations()
        with pytest.raises(RangeExhausted, match="fd00::/125"):
            ipam.allocate("late", "eth0")
        assert ipam.allocations() == before
        # The v4 address it would have taken is still the next one handed out.
        ipam.set_ranges([ip_network("10.0.0.0/24")])
        assert ipam.allocate("late", "eth0") == (ip_address("10.0.0.8"),)
    with Ipam(tmp_path) as again:
        assert ("late", "eth0") in again.allocations()


def test_two_ranges_of_one_family_are_rejected(ipam):
    with pytest.raises(IpamError, match="more than one IPv4"):
        ipam.set_ranges([V4, ip_network("10.9.0.0/24")])
    with pytest.raises(IpamError, match="invalid pod CIDR"):
        ipam.set_ranges(["10.0.0.1/24"])
    assert ipam.ranges == ()


def test_gc_frees_every_key_not_listed(ipam):
    ipam.set_ranges([V4])
    for c in ("a", "b", "c"):
        ipam.allocate(c, "eth0")
    assert ipam.gc([("b", "eth0")]) == [("a", "eth0"), ("c", "eth0")]
    assert list(ipam.allocations()) == [("b", "eth0")]
    assert ipam.gc([("b", "eth0")]) == []


def test_outside_ranges_after_range_change(ipam):
    ipam.set_ranges([V4])
    ipam.allocate("old", "eth0")
    ipam.set_ranges([ip_network("10.250.0.0/24")])
    new = ipam.allocate("new", "eth0")
    assert new[0] in ip_network("10.250.0.0/24")
    assert ipam.outside_ranges() == [("old", "eth0")]


def test_state_survives_reopen(tmp_path):
    with Ipam(tmp_path) as ipam:
        ipam.set_ranges([V4, V6])
        a = ipam.allocate("a", "eth0")
        ipam.allocate("b", "eth0")
        ipam.release("b", "eth0")
    with Ipam(tmp_path) as ipam:
        assert ipam.ranges == (V4, V6)
        assert ipam.allocations() == {("a", "eth0"): a}
        # The cursor survived too: b's freed address is not handed out next.
        assert ipam.allocate("c", "eth0")[0] == ip_address("10.244.1.4")


def test_state_survives_many_snapshots(tmp_path):
    with Ipam(tmp_path, snapshot_every=4) as ipam:
        ipam.set_ranges([V4])
        for i in range(30):
            ipam.allocate(f"c{i}", "eth0")
        for i in range(0, 30, 3):
            ipam.release(f"c{i}", "eth0")
        want = ipam.allocations()
    with Ipam(tmp_path) as ipam:
        assert ipam.allocations() == want


def test_second_open_of_the_same_state_is_refused(tmp_path):
    with Ipam(tmp_path):
        with pytest.raises(IpamStateError, match="in use"):
            Ipam(tmp_path)


def _journal(tmp_path):
    return tmp_path / "ipam" / "journal.jsonl"


def _crash_copy(src, dst):
    """What a crash leaves: the files as they are, without close() compacting them."""
    (dst / "ipam").mkdir(parents=True)
    for f in ("snapshot.json", "journal.jsonl"):
        (dst / "ipam" / f).write_bytes((src / "ipam" / f).read_bytes())


def test_torn_last_journal_line_is_ignored(tmp_path):
    live = tmp_path / "live"
    ipam = Ipam(live)
    try:
        ipam.set_ranges([V4])
        a = ipam.allocate("a", "eth0")
        ipam.allocate("b", "eth0")
        crashed = tmp_path / "crashed"
        _crash_copy(live, crashed)
    finally:
        ipam.close()
    j = _journal(crashed)
    data = j.read_bytes()
    assert data.count(b"\n") == 3
    j.write_bytes(data[:-7])              # b's record cut mid-line
    with Ipam(crashed) as again:
        assert again.allocations() == {("a", "eth0"): a}
        c = again.allocate("c", "eth0")   # appends land on a clean line
    with Ipam(crashed) as third:
        assert third.allocations() == {("a", "eth0"): a, ("c", "eth0"): c}


def test_garbage_last_line_is_ignored_but_a_damaged_middle_line_is_an_error(tmp_path):
    live = tmp_path / "live"
    with Ipam(live) as ipam:
        pass
    j = _journal(live)
    recs = [{"seq": 1, "op": "ranges", "cidrs": [str(V4)]},
            {"seq": 2, "op": "alloc", "key": ["a", "eth0"], "ips": ["10.244.1.2"]}]
    body = b"".join(json.dumps(r).encode() + b"\n" for r in recs)
    j.write_bytes(body + b"\0\0\0\0\n")
    with Ipam(live) as ipam:
        assert ipam.allocations() == {("a", "eth0"): (ip_address("10.244.1.2"),)}
    j.write_bytes(b"\0\0garbage\n" + body)
    with pytest.raises(IpamStateError, match="line 1 is damaged"):
        Ipam(live)


def test_crash_after_snapshot_before_journal_truncate_replays_nothing_twice(tmp_path):
    live = tmp_path / "live"
    ipam = Ipam(live, snapshot_every=1000)
    try:
        ipam.set_ranges([V4])
        ipam.allocate("a", "eth0")
        ipam.allocate("b", "eth0")
        ipam.release("a", "eth0")
        journal = _journal(live).read_bytes()
        ipam._compact()                      # snapshot now holds all four changes
        crashed = tmp_path / "crashed"
        _crash_copy(live, crashed)
        want = ipam.allocations()
    finally:
        ipam.close()
    # The crash hit between the snapshot rename and the journal truncate.
    _journal(crashed).write_bytes(journal)
    with Ipam(crashed) as again:
        assert again.allocations() == want
        assert ("a", "eth0") not in again.allocations()


def test_crash_before_snapshot_rename_keeps_journal_changes(tmp_path):
    live = tmp_path / "live"
    ipam = Ipam(live, snapshot_every=1000)
    try:
        ipam.set_ranges([V4])
        ipam.allocate("a", "eth0")
        crashed = tmp_path / "crashed"
        _crash_copy(live, crashed)
        want = ipam.allocations()
    finally:
        ipam.close()
    # A half-written snapshot temporary file was left behind, never renamed.
    tmp = crashed / "ipam" / ".snapshot.json.deadbeef.tmp"
    tmp.write_bytes(b'{"version":1,"se')
    with Ipam(crashed) as again:
        assert again.allocations() == want
    assert not tmp.exists()


def test_corrupt_snapshot_refuses_to_start(tmp_path):
    with Ipam(tmp_path) as ipam:
        ipam.set_ranges([V4])
    (tmp_path / "ipam" / "snapshot.json").write_text("{not json")
    with pytest.raises(IpamStateError, match="snapshot"):
        Ipam(tmp_path)


def test_parallel_allocations_never_duplicate(tmp_path):
    with Ipam(tmp_path, snapshot_every=16) as ipam:
        ipam.set_ranges([ip_network("10.0.0.0/16"), V6])
        results: dict[tuple[str, str], tuple] = {}
        errors: list[BaseException] = []
        lock = threading.Lock()

        def worker(t: int) -> None:
            try:
                for i in range(25):
                    key = (f"t{t}-{i}", "eth0")
                    ips = ipam.allocate(*key)
                    if i % 5 == 0:
                        ipam.release(*key)
                    else:
                        with lock:
                            results[key] = ips
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        flat = [ip for ips in results.values() for ip in ips]
        assert len(flat) == len(set(flat)) == 8 * 20 * 2
        assert ipam.allocations() == results
    with Ipam(tmp_path) as again:
        assert again.allocations() == results


def test_state_files_are_private(tmp_path):
    with Ipam(tmp_path) as ipam:
        ipam.set_ranges([V4])
        ipam.allocate("a", "eth0")
        for f in ("snapshot.json", "journal.jsonl", "lock"):
            assert (tmp_path / "ipam" / f).stat().st_mode & 0o077 == 0, f
