"""IPsec family: the same expectations of the emulator and of a real VPP 26.06."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest

from vppagent.vpp import interfaces, ipsec, tunnels
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.ipsec import CryptoAlg, IntegAlg, SaFlags, SaSpec, SaTunnel
from vppagent.vpp.retvals import Retval

# Recognisable key material: a test fails if it ever shows up in a repr or error.
KEY_A = bytes.fromhex("a1" * 32)
KEY_B = bytes.fromhex("b2" * 32)
SALT = 0x0A0B0C0D
LOCAL, REMOTE = "192.0.2.1", "192.0.2.2"


@dataclass
class Made:
    """What a test created, torn down in reverse dependency order."""

    sas: list[int] = field(default_factory=list)
    itfs: list[int] = field(default_factory=list)
    ipips: list[int] = field(default_factory=list)


@pytest.fixture
def made(vpp):
    before = {s.sa_id for s in ipsec.dump_sas(vpp)}
    m = Made()
    yield m
    for p in ipsec.dump_protections(vpp):
        if p.sw_if_index in m.itfs + m.ipips:
            ipsec.unprotect(vpp, p.sw_if_index)
    for idx in m.itfs:
        if ipsec.dump_itfs(vpp, idx):
            ipsec.delete_itf(vpp, idx)
    for idx in m.ipips:
        if tunnels.dump_ipip(vpp, idx):
            tunnels.delete_ipip(vpp, idx)
    present = {s.sa_id for s in ipsec.dump_sas(vpp)}
    for sa_id in sorted(set(m.sas)):
        if sa_id in present:
            ipsec.delete_sa(vpp, sa_id, check_unused=False)
    # The shared leave-as-found check does not look at SAs; this does.
    assert {s.sa_id for s in ipsec.dump_sas(vpp)} == before


def _out(sa_id: int, spi: int, **kw) -> SaSpec:
    kw.setdefault("tunnel", SaTunnel.of(LOCAL, REMOTE))
    return SaSpec(sa_id, spi, KEY_A, salt=SALT, **kw)


def _in(sa_id: int, spi: int, **kw) -> SaSpec:
    kw.setdefault("tunnel", SaTunnel.of(REMOTE, LOCAL))
    return SaSpec(sa_id, spi, KEY_B, salt=SALT + 1, inbound=True, **kw)


def _add(vpp, made: Made, spec: SaSpec) -> int:
    stat = ipsec.add_sa(vpp, spec)
    made.sas.append(spec.sa_id)
    return stat


# -- SAs ------------------------------------------------------------------------------


def test_outbound_tunnel_sa_round_trip_field_by_field(vpp, made):
    stat = _add(vpp, made, _out(1001, 0x1001))
    sa = ipsec.get_sa(vpp, 1001)
    assert sa is not None
    assert (sa.sa_id, sa.spi, sa.stat_index) == (1001, 0x1001, stat)
    assert sa.protocol == ipsec.Protocol.ESP
    assert (sa.crypto_alg, sa.integ_alg) == (CryptoAlg.AES_GCM_256, IntegAlg.NONE)
    assert sa.flags == SaFlags.USE_ANTI_REPLAY | SaFlags.IS_TUNNEL
    assert sa.tunnel == SaTunnel.of(LOCAL, REMOTE)
    assert (sa.udp_src_port, sa.udp_dst_port) == (0, 0)  # no UDP encapsulation
    assert sa.anti_replay_window == 64
    assert sa.sw_if_index is None
    assert (sa.seq_outbound, sa.last_seq_inbound) == (0, 0)
    assert sa.crypto_key == KEY_A and sa.integ_key == b""
    assert sa.salt == SALT
    ipsec.delete_sa(vpp, 1001)
    assert ipsec.get_sa(vpp, 1001) is None


def test_inbound_transport_sa_with_udp_encap_and_a_bigger_window(vpp, made):
    _add(vpp, made, _in(1002, 0x1002, tunnel=None, udp_encap=True, anti_replay_window=100))
    sa = ipsec.get_sa(vpp, 1002)
    assert sa.flags == SaFlags.USE_ANTI_REPLAY | SaFlags.UDP_ENCAP | SaFlags.IS_INBOUND
    assert sa.inbound
    assert sa.tunnel is None
    assert (sa.udp_src_port, sa.udp_dst_port) == (4500, 4500)
    assert sa.anti_replay_window == 128  # rounded up to a power of two


def test_ipv6_tunnel_sa_is_flagged_tunnel_v6(vpp, made):
    _add(vpp, made, _out(1003, 0x1003, tunnel=SaTunnel.of("2001:db8::1", "2001:db8::2")))
    sa = ipsec.get_sa(vpp, 1003)
    assert sa.flags & SaFlags.IS_TUNNEL_V6
    assert sa.tunnel.dst == ipaddress.ip_address("2001:db8::2")


def test_sa_without_anti_replay_reports_no_window(vpp, made):
    _add(vpp, made, _out(1004, 0x1004, anti_replay=False))
    sa = ipsec.get_sa(vpp, 1004)
    assert not sa.flags & SaFlags.USE_ANTI_REPLAY
    assert sa.anti_replay_window == 0


def test_cbc_with_hmac_sa_round_trip(vpp, made):
    spec = SaSpec(1005, 0x1005, bytes(range(16)), crypto_alg=CryptoAlg.AES_CBC_128,
                  integ_alg=IntegAlg.SHA_256_128, integ_key=bytes(range(32, 64)), tunnel=None)
    _add(vpp, made, spec)
    sa = ipsec.get_sa(vpp, 1005)
    assert (sa.crypto_alg, sa.integ_alg) == (CryptoAlg.AES_CBC_128, IntegAlg.SHA_256_128)
    assert sa.integ_key == bytes(range(32, 64))


def test_existing_sa_id_is_entry_already_exists(vpp, made):
    _add(vpp, made, _out(1006, 0x1006))
    with pytest.raises(VppApiError) as e:
        ipsec.add_sa(vpp, _out(1006, 0x2006))
    assert e.value.retval == Retval.ENTRY_ALREADY_EXISTS
    assert e.value.context == {"sa_id": 1006, "spi": 0x2006}
    assert ipsec.get_sa(vpp, 1006).spi == 0x1006


def test_delete_of_unknown_sa_is_no_such_entry(vpp):
    with pytest.raises(VppApiError) as e:
        ipsec.delete_sa(vpp, 424242)
    assert e.value.retval == Retval.NO_SUCH_ENTRY


def test_sa_dump_ignores_its_filter(vpp, made):
    _add(vpp, made, _out(1007, 0x1007))
    _add(vpp, made, _out(1008, 0x1008))
    ids = {d.entry.sad_id for d in vpp.dump("ipsec_sa_v5_dump", sa_id=1007)}
    assert {1007, 1008} <= ids
    assert [s.sa_id for s in ipsec.dump_sas(vpp, 1007)] == [1007]


def _raw_entry(sa_id: int, crypto: int, key: bytes, integ: int = 0) -> dict:
    zero = ipaddress.IPv4Address(0)
    return {"sad_id": sa_id, "spi": sa_id, "protocol": 50, "crypto_algorithm": crypto,
            "crypto_key": {"length": len(key), "data": key}, "integrity_algorithm": integ,
            "integrity_key": {"length": 0, "data": b""}, "flags": 0,
            "tunnel": {"instance": 0, "src": zero, "dst": zero, "sw_if_index": 0, "table_id": 0,
                       "encap_decap_flags": 0, "mode": 0, "flags": 0, "dscp": 0, "hop_limit": 0},
            "salt": 0, "udp_src_port": 4500, "udp_dst_port": 4500, "anti_replay_window_size": 64}


def test_wrong_key_length_is_refused_without_showing_the_key(vpp):
    with pytest.raises(ValueError) as e:
        SaSpec(1009, 0x1009, KEY_A[:20])
    assert KEY_A[:20].hex() not in str(e.value) and "a1a1" not in str(e.value)
    with pytest.raises(VppApiError) as e:
        vpp.call("ipsec_sad_entry_add_v2", entry=_raw_entry(1009, CryptoAlg.AES_GCM_256, KEY_A[:20]))
    assert e.value.retval == Retval.KEY_LENGTH
    assert "a1a1" not in str(e.value)
    assert ipsec.get_sa(vpp, 1009) is None


def test_aead_with_an_integrity_algorithm_is_unimplemented(vpp):
    with pytest.raises(VppApiError) as e:
        vpp.call("ipsec_sad_entry_add_v2",
                 entry=_raw_entry(1010, CryptoAlg.AES_GCM_256, KEY_A, IntegAlg.SHA1_96))
    assert e.value.retval == Retval.UNIMPLEMENTED


def test_unknown_algorithm_is_invalid_algorithm_with_no_stat_index(vpp):
    reply = vpp.call("ipsec_sad_entry_add_v2", check=False, entry=_raw_entry(1011, 42, KEY_A))
    assert reply.retval == Retval.INVALID_ALGORITHM
    assert reply.stat_index == ipsec.ALL


def test_keys_never_show_in_reprs(vpp, made):
    spec = _out(1012, 0x1012)
    _add(vpp, made, spec)
    sa = ipsec.get_sa(vpp, 1012)
    for text in (repr(spec), str(spec), repr(sa), str(sa)):
        assert "a1a1" not in text and "\\xa1" not in text and str(SALT) not in text


# -- ipsec interfaces -----------------------------------------------------------------------


def test_ipsec_interface_round_trip(vpp, made):
    idx = ipsec.create_itf(vpp, instance=4711)
    made.itfs.append(idx)
    assert ipsec.dump_itfs(vpp, idx) == [ipsec.IpsecItf(idx, 4711, ipsec.TunnelMode.P2P)]
    i = interfaces.get(vpp, idx)
    assert i.name == "ipsec4711"
    assert not i.admin_up
    ipsec.delete_itf(vpp, idx)
    assert ipsec.dump_itfs(vpp, idx) == []
    assert interfaces.get(vpp, idx) is None


def test_ipsec_interface_instance_in_use_is_invalid_registration(vpp, made):
    idx = ipsec.create_itf(vpp, instance=4712)
    made.itfs.append(idx)
    with pytest.raises(VppApiError) as e:
        ipsec.create_itf(vpp, instance=4712)
    assert e.value.retval == Retval.INVALID_REGISTRATION


def test_delete_of_a_non_ipsec_interface_is_invalid_sw_if_index(vpp):
    with pytest.raises(VppApiError) as e:
        ipsec.delete_itf(vpp, 4242)
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX
    loop = interfaces.create_loopback(vpp)
    try:
        with pytest.raises(VppApiError) as e:
            ipsec.delete_itf(vpp, loop)
        assert e.value.retval == Retval.INVALID_SW_IF_INDEX
    finally:
        interfaces.delete_loopback(vpp, loop)


# -- protection -------------------------------------------------------------------------------


def test_protection_round_trip_and_rekey_on_an_ipsec_interface(vpp, made):
    for spec in (_out(1101, 0x1101), _in(1102, 0x1102), _out(1103, 0x1103), _in(1104, 0x1104)):
        _add(vpp, made, spec)
    idx = ipsec.create_itf(vpp)
    made.itfs.append(idx)
    ipsec.protect(vpp, idx, 1101, [1102])
    assert ipsec.dump_protections(vpp, idx) == [ipsec.Protection(idx, 1101, (1102,))]
    # Rekey: new outbound SA, old and new inbound SAs while the peer switches.
    ipsec.protect(vpp, idx, 1103, [1102, 1104])
    assert ipsec.dump_protections(vpp, idx) == [ipsec.Protection(idx, 1103, (1102, 1104))]
    # Protecting an ipsec interface does not mark its SAs as the interface's.
    assert ipsec.get_sa(vpp, 1104).sw_if_index is None
    ipsec.unprotect(vpp, idx)
    assert ipsec.dump_protections(vpp, idx) == []
    for sa_id in (1101, 1102, 1103, 1104):
        ipsec.delete_sa(vpp, sa_id)


def test_ipip_protected_by_transport_sas(vpp, made):
    _add(vpp, made, _out(1111, 0x1111, tunnel=None))
    _add(vpp, made, _in(1112, 0x1112, tunnel=None))
    idx = tunnels.create_ipip(vpp, tunnels.IpipSpec.of(LOCAL, REMOTE))
    made.ipips.append(idx)
    ipsec.protect(vpp, idx, 1111, [1112])
    assert ipsec.dump_protections(vpp) == [ipsec.Protection(idx, 1111, (1112,))]
    ipsec.unprotect(vpp, idx)


def test_inbound_tunnel_sa_protecting_ipip_names_the_interface(vpp, made):
    _add(vpp, made, _out(1121, 0x1121))
    _add(vpp, made, _in(1122, 0x1122))
    idx = tunnels.create_ipip(vpp, tunnels.IpipSpec.of(LOCAL, "192.0.2.3"))
    made.ipips.append(idx)
    ipsec.protect(vpp, idx, 1121, [1122])
    assert ipsec.get_sa(vpp, 1122).sw_if_index == idx
    assert ipsec.get_sa(vpp, 1121).sw_if_index is None
    ipsec.unprotect(vpp, idx)
    assert ipsec.get_sa(vpp, 1122).sw_if_index is None


def test_sa_in_use_is_refused_by_the_wrapper_and_outlives_vpps_delete(vpp, made):
    _add(vpp, made, _out(1131, 0x1131))
    _add(vpp, made, _in(1132, 0x1132))
    idx = ipsec.create_itf(vpp)
    made.itfs.append(idx)
    ipsec.protect(vpp, idx, 1131, [1132])
    with pytest.raises(ipsec.SaInUseError) as e:
        ipsec.delete_sa(vpp, 1131)
    assert (e.value.sa_id, e.value.sw_if_index) == (1131, idx)
    # VPP itself does not refuse: it drops the creator's reference and keeps
    # the SA alive (and dumped) for the protection...
    vpp.call("ipsec_sad_entry_del", id=1132)
    assert ipsec.get_sa(vpp, 1132) is not None
    assert ipsec.dump_protections(vpp, idx) == [ipsec.Protection(idx, 1131, (1132,))]
    # ...until the protection lets go of it.
    ipsec.unprotect(vpp, idx)
    assert ipsec.get_sa(vpp, 1132) is None
    ipsec.delete_sa(vpp, 1131)


def test_deleting_a_protected_interface_releases_its_sas(vpp, made):
    _add(vpp, made, _out(1141, 0x1141))
    _add(vpp, made, _in(1142, 0x1142))
    idx = ipsec.create_itf(vpp)
    made.itfs.append(idx)
    ipsec.protect(vpp, idx, 1141, [1142])
    ipsec.delete_itf(vpp, idx)
    assert all(p.sw_if_index != idx for p in ipsec.dump_protections(vpp))
    ipsec.delete_sa(vpp, 1141)  # not in use any more
    ipsec.delete_sa(vpp, 1142)


def test_protection_with_an_unknown_sa_is_invalid_value(vpp, made):
    idx = ipsec.create_itf(vpp)
    made.itfs.append(idx)
    with pytest.raises(VppApiError) as e:
        ipsec.protect(vpp, idx, 424242, [])
    assert e.value.retval == Retval.INVALID_VALUE
    assert ipsec.dump_protections(vpp, idx) == []


def test_protection_of_an_unknown_interface_is_invalid_sw_if_index(vpp):
    with pytest.raises(VppApiError) as e:
        ipsec.protect(vpp, 4242, 1, [])
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX


def test_more_than_four_inbound_sas_are_refused(vpp, made):
    idx = ipsec.create_itf(vpp)
    made.itfs.append(idx)
    with pytest.raises(ipsec.ProtectionError):
        ipsec.protect(vpp, idx, 1, [1, 2, 3, 4, 5])
    with pytest.raises(VppApiError) as e:
        vpp.call("ipsec_tunnel_protect_update", tunnel={
            "sw_if_index": idx, "nh": ipaddress.IPv4Address(0), "sa_out": 1,
            "n_sa_in": 5, "sa_in": [1, 2, 3, 4, 5]})
    assert e.value.retval == Retval.LIMIT_EXCEEDED


def test_ipsec_interface_with_a_transport_sa_is_refused_before_vpp(vpp, made):
    # VPP would answer -58 and leave a protection behind that nothing can delete.
    _add(vpp, made, _out(1151, 0x1151, tunnel=None))
    idx = ipsec.create_itf(vpp)
    made.itfs.append(idx)
    with pytest.raises(ipsec.ProtectionError):
        ipsec.protect(vpp, idx, 1151, [])
    assert ipsec.dump_protections(vpp, idx) == []


def test_unprotect_without_protection_is_no_such_entry(vpp, made):
    idx = ipsec.create_itf(vpp)
    made.itfs.append(idx)
    with pytest.raises(VppApiError) as e:
        ipsec.unprotect(vpp, idx)
    assert e.value.retval == Retval.NO_SUCH_ENTRY
