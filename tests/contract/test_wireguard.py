"""WireGuard family: the same expectations of the emulator and of a real VPP 26.06."""
from __future__ import annotations

import ipaddress

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vppagent.vpp import interfaces, wireguard
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval
from vppagent.vpp.wireguard import InterfaceSpec, PeerSpec

# Fixed, recognisable private keys: a test fails if they ever show up in a repr.
PRIVATE = bytes.fromhex("c3" * 32)
PRIVATE_2 = bytes.fromhex("d4" * 32)
PEER_A = X25519PrivateKey.from_private_bytes(bytes.fromhex("e5" * 32)).public_key().public_bytes_raw()
PEER_B = X25519PrivateKey.from_private_bytes(bytes.fromhex("f6" * 32)).public_key().public_bytes_raw()
SRC = ipaddress.ip_address("192.0.2.1")


def _public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


@pytest.fixture
def wg(vpp):
    """Create wg interfaces for a test; delete them (and so their peers) after."""
    made: list[int] = []

    def create(spec: InterfaceSpec) -> int:
        idx = wireguard.create_interface(vpp, spec)
        made.append(idx)
        return idx

    yield create
    present = {i.sw_if_index for i in wireguard.dump_interfaces(vpp)}
    for idx in sorted(set(made)):  # a deleted index may have been reused
        if idx in present:
            wireguard.delete_interface(vpp, idx)


def _peer(sw_if_index: int, key: bytes = PEER_A, **kw) -> PeerSpec:
    kw.setdefault("allowed_ips", ("10.244.1.0/24", "fd00:244:1::/64"))
    return PeerSpec.of(sw_if_index, key, kw.pop("allowed_ips"), kw.pop("endpoint", "192.0.2.2"),
                       kw.pop("port", 51820), **kw)


def test_interface_round_trip_with_the_derived_public_key(vpp, wg):
    idx = wg(InterfaceSpec(PRIVATE, 51820, SRC, instance=4711))
    assert wireguard.dump_interfaces(vpp, idx) == [
        wireguard.Interface(idx, 4711, _public(PRIVATE), 51820, SRC)]
    i = interfaces.get(vpp, idx)
    assert i.name == "wg4711"
    assert not i.admin_up
    wireguard.delete_interface(vpp, idx)
    assert wireguard.dump_interfaces(vpp, idx) == []
    assert interfaces.get(vpp, idx) is None


def test_private_key_is_returned_only_when_asked_and_never_repr_d(vpp, wg):
    spec = InterfaceSpec(PRIVATE, 51821, SRC)
    idx = wg(spec)
    [plain] = vpp.dump("wireguard_interface_dump", show_private_key=False, sw_if_index=idx)
    assert bytes(plain.interface.private_key) == bytes(32)
    [shown] = vpp.dump("wireguard_interface_dump", show_private_key=True, sw_if_index=idx)
    assert bytes(shown.interface.private_key) == PRIVATE
    for text in (repr(spec), str(spec), repr(wireguard.dump_interfaces(vpp, idx))):
        assert "c3c3" not in text and "\\xc3" not in text


def test_instance_in_use_is_invalid_registration(vpp, wg):
    wg(InterfaceSpec(PRIVATE, 51822, SRC, instance=4712))
    with pytest.raises(VppApiError) as e:
        wireguard.create_interface(vpp, InterfaceSpec(PRIVATE_2, 51823, SRC, instance=4712))
    assert e.value.retval == Retval.INVALID_REGISTRATION
    assert "c3c3" not in str(e.value) and "d4d4" not in str(e.value)


def test_delete_of_unknown_or_other_interface_is_refused(vpp):
    with pytest.raises(VppApiError) as e:
        wireguard.delete_interface(vpp, 4242)
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX
    loop = interfaces.create_loopback(vpp)
    try:
        with pytest.raises(VppApiError) as e:
            wireguard.delete_interface(vpp, loop)
        assert e.value.retval == Retval.INVALID_VALUE
    finally:
        interfaces.delete_loopback(vpp, loop)


def test_peer_round_trip_field_by_field(vpp, wg):
    idx = wg(InterfaceSpec(PRIVATE, 51824, SRC))
    spec = _peer(idx, persistent_keepalive=25)
    pi = wireguard.add_peer(vpp, spec)
    assert wireguard.dump_peers(vpp, pi) == [wireguard.Peer(pi, spec, 0)]
    assert [p.peer_index for p in wireguard.peers_of(vpp, idx)] == [pi]
    wireguard.remove_peer(vpp, pi)
    assert wireguard.dump_peers(vpp, pi) == []


def test_ipv6_endpoint_peer(vpp, wg):
    idx = wg(InterfaceSpec(PRIVATE, 51825, ipaddress.ip_address("2001:db8::1")))
    spec = _peer(idx, endpoint="2001:db8::2", allowed_ips=("fd00:244:2::/64",))
    pi = wireguard.add_peer(vpp, spec)
    assert wireguard.dump_peers(vpp, pi)[0].spec == spec


def test_same_public_key_twice_is_refused_even_on_another_interface(vpp, wg):
    a = wg(InterfaceSpec(PRIVATE, 51826, SRC))
    b = wg(InterfaceSpec(PRIVATE_2, 51827, SRC))
    wireguard.add_peer(vpp, _peer(a))
    for where in (a, b):
        with pytest.raises(VppApiError) as e:
            wireguard.add_peer(vpp, _peer(where, endpoint="192.0.2.9"))
        assert e.value.retval == Retval.ENTRY_ALREADY_EXISTS


def test_failed_peer_add_answers_no_index(vpp, wg):
    idx = wg(InterfaceSpec(PRIVATE, 51828, SRC))
    wireguard.add_peer(vpp, _peer(idx))
    reply = vpp.call("wireguard_peer_add", check=False, peer={
        "peer_index": 0, "public_key": PEER_A, "port": 1, "persistent_keepalive": 0, "table_id": 0,
        "endpoint": ipaddress.ip_address("192.0.2.3"), "sw_if_index": idx, "flags": 0,
        "n_allowed_ips": 1, "allowed_ips": [ipaddress.ip_network("10.0.0.0/8")]})
    assert reply.retval == Retval.ENTRY_ALREADY_EXISTS
    assert reply.peer_index == wireguard.ALL


def test_peer_without_allowed_ips_is_invalid_value(vpp, wg):
    idx = wg(InterfaceSpec(PRIVATE, 51829, SRC))
    with pytest.raises(VppApiError) as e:
        vpp.call("wireguard_peer_add", peer={
            "peer_index": 0, "public_key": PEER_A, "port": 51820, "persistent_keepalive": 0,
            "table_id": 0, "endpoint": ipaddress.ip_address("192.0.2.2"), "sw_if_index": idx,
            "flags": 0, "n_allowed_ips": 0, "allowed_ips": []})
    assert e.value.retval == Retval.INVALID_VALUE


def test_peer_on_unknown_or_non_wireguard_interface_is_refused(vpp):
    with pytest.raises(wireguard.NotAWireguardInterface):
        wireguard.add_peer(vpp, _peer(4242))
    with pytest.raises(VppApiError) as e:
        wireguard.add_peer(vpp, _peer(4242), check_interface=False)
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX
    loop = interfaces.create_loopback(vpp)
    try:
        with pytest.raises(wireguard.NotAWireguardInterface):
            wireguard.add_peer(vpp, _peer(loop))
    finally:
        interfaces.delete_loopback(vpp, loop)


def test_vpp_still_finds_a_deleted_wg_interface_by_its_index(vpp):
    # VPP does not clear its sw_if_index -> wg interface table on delete.
    idx = wireguard.create_interface(vpp, InterfaceSpec(PRIVATE, 51833, SRC, instance=4713))
    wireguard.delete_interface(vpp, idx)
    [stale] = vpp.dump("wireguard_interface_dump", show_private_key=False, sw_if_index=idx)
    assert (stale.interface.sw_if_index, stale.interface.user_instance) == (idx, 4713)
    assert wireguard.dump_interfaces(vpp, idx) == []
    loop = interfaces.create_loopback(vpp)
    try:
        if loop != idx:
            pytest.skip(f"the loopback did not reuse sw_if_index {idx}")
        # ...so a loopback that took the index over is given peers.
        reply = vpp.call("wireguard_peer_add", check=False, peer={
            "peer_index": 0, "public_key": PEER_B, "port": 51820, "persistent_keepalive": 0,
            "table_id": 0, "endpoint": ipaddress.ip_address("192.0.2.2"), "sw_if_index": loop,
            "flags": 0, "n_allowed_ips": 1, "allowed_ips": [ipaddress.ip_network("10.9.0.0/16")]})
        assert reply.retval == 0
        assert wireguard.dump_peers(vpp, reply.peer_index)[0].spec.sw_if_index == loop
        wireguard.remove_peer(vpp, reply.peer_index)
        with pytest.raises(wireguard.NotAWireguardInterface):
            wireguard.add_peer(vpp, _peer(loop, PEER_B))
    finally:
        interfaces.delete_loopback(vpp, loop)


def test_remove_of_unknown_peer_is_no_such_entry(vpp):
    with pytest.raises(VppApiError) as e:
        wireguard.remove_peer(vpp, 424242)
    assert e.value.retval == Retval.NO_SUCH_ENTRY


def test_a_removed_peer_index_is_reused(vpp, wg):
    idx = wg(InterfaceSpec(PRIVATE, 51830, SRC))
    a = wireguard.add_peer(vpp, _peer(idx, PEER_A))
    wireguard.remove_peer(vpp, a)
    b = wireguard.add_peer(vpp, _peer(idx, PEER_B))
    assert b == a


def test_deleting_the_interface_removes_its_peers(vpp, wg):
    idx = wg(InterfaceSpec(PRIVATE, 51831, SRC))
    pa = wireguard.add_peer(vpp, _peer(idx, PEER_A))
    pb = wireguard.add_peer(vpp, _peer(idx, PEER_B, endpoint="192.0.2.3"))
    wireguard.delete_interface(vpp, idx)
    assert wireguard.dump_peers(vpp, pa) == [] and wireguard.dump_peers(vpp, pb) == []
    # The public key is free again.
    other = wg(InterfaceSpec(PRIVATE_2, 51832, SRC))
    wireguard.add_peer(vpp, _peer(other, PEER_A))
