"""cnat family: the same expectations of the emulator and of a real VPP 26.06."""
from __future__ import annotations

import ipaddress

import pytest

from vppagent.vpp import cnat, interfaces
from vppagent.vpp.cnat import Endpoint, LbType, Path, PathFlags, Proto, TranslationSpec
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval

VIP4 = "10.96.0.10"
VIP6 = "fd00:96::10"


def _spec(vip: str = VIP4, port: int = 80, *backends: tuple[str, int], **kw) -> TranslationSpec:
    paths = tuple(Path(Endpoint.of(a, p)) for a, p in backends or (("10.0.1.5", 8080),))
    return TranslationSpec(Endpoint.of(vip, port), kw.pop("proto", Proto.TCP), paths, **kw)


@pytest.fixture
def translations(vpp):
    """Ids to delete at teardown, whatever the test did."""
    ids: list[int] = []
    yield ids
    present = {t.id for t in cnat.dump_translations(vpp)}
    for i in sorted(set(ids)):
        if i in present:
            cnat.delete_translation(vpp, i)


@pytest.fixture
def no_snat(vpp):
    """The SNAT entry is this test's own: none before, none left after."""
    if cnat.get_snat_addresses(vpp) is not None:
        pytest.skip("VPP already has cnat SNAT addresses; this test would change them")
    yield
    cnat.clear_snat_addresses(vpp)
    assert cnat.get_snat_addresses(vpp) is None


@pytest.fixture
def loop(vpp):
    idx = interfaces.create_loopback(vpp)
    yield idx
    interfaces.delete_loopback(vpp, idx)


def test_translation_is_dumped_field_by_field_and_deleted(vpp, translations):
    spec = TranslationSpec(
        Endpoint.of(VIP4, 80), Proto.TCP,
        (Path(Endpoint.of("10.0.1.5", 8080)),
         Path(Endpoint.of("10.0.1.6", 8081), flags=PathFlags.NO_NAT)),
    )
    tid = cnat.update_translation(vpp, spec)
    translations.append(tid)
    [t] = [t for t in cnat.dump_translations(vpp) if t.id == tid]
    assert t.vip == Endpoint(ipaddress.ip_address(VIP4), 80)
    assert t.proto == Proto.TCP
    assert t.lb_type == LbType.DEFAULT
    assert [p.dst for p in t.paths] == [Endpoint.of("10.0.1.5", 8080), Endpoint.of("10.0.1.6", 8081)]
    # An unset source is the unspecified address of the backend's family, port 0.
    assert all(p.src == Endpoint.of("0.0.0.0", 0) for p in t.paths)
    assert [p.flags for p in t.paths] == [PathFlags.NONE, PathFlags.NO_NAT]
    cnat.delete_translation(vpp, tid)
    assert tid not in {t.id for t in cnat.dump_translations(vpp)}


def test_update_of_the_same_vip_keeps_the_id_and_replaces_the_paths(vpp, translations):
    tid = cnat.update_translation(vpp, _spec(VIP4, 80, ("10.0.1.5", 8080), ("10.0.1.6", 8080)))
    translations.append(tid)
    again = cnat.update_translation(vpp, _spec(VIP4, 80, ("10.0.1.7", 9090), ("10.0.1.5", 8080)))
    assert again == tid
    [t] = [t for t in cnat.dump_translations(vpp) if t.id == tid]
    assert [(str(p.dst.address), p.dst.port) for p in t.paths] == [("10.0.1.7", 9090), ("10.0.1.5", 8080)]


def test_same_vip_other_port_or_protocol_is_another_translation(vpp, translations):
    a = cnat.update_translation(vpp, _spec(VIP4, 80))
    translations.append(a)
    b = cnat.update_translation(vpp, _spec(VIP4, 443))
    translations.append(b)
    c = cnat.update_translation(vpp, _spec(VIP4, 80, proto=Proto.UDP))
    translations.append(c)
    assert len({a, b, c}) == 3
    dumped = {t.id: (t.vip.port, t.proto) for t in cnat.dump_translations(vpp)}
    assert dumped[a] == (80, Proto.TCP) and dumped[b] == (443, Proto.TCP) and dumped[c] == (80, Proto.UDP)


def test_ipv6_maglev_translation_round_trip(vpp, translations):
    spec = TranslationSpec(Endpoint.of(VIP6, 53), Proto.UDP,
                           (Path(Endpoint.of("fd00:1::5", 5353)),), lb_type=LbType.MAGLEV)
    tid = cnat.update_translation(vpp, spec)
    translations.append(tid)
    [t] = [t for t in cnat.dump_translations(vpp) if t.id == tid]
    assert t.vip == Endpoint.of(VIP6, 53)
    assert t.lb_type == LbType.MAGLEV
    assert t.proto == Proto.UDP
    assert t.paths[0].dst == Endpoint.of("fd00:1::5", 5353)


def test_translation_without_backends_is_refused_before_vpp(vpp):
    # VPP 26.06 would validate a vector of n_paths - 1 = 2^32 - 1 paths and die.
    sent = vpp.calls["cnat_translation_update"]
    with pytest.raises(ValueError):
        cnat.update_translation(vpp, TranslationSpec(Endpoint.of(VIP4, 8443), Proto.TCP))
    assert vpp.calls["cnat_translation_update"] == sent


def test_a_freed_translation_id_is_reused(vpp, translations):
    a = cnat.update_translation(vpp, _spec(VIP4, 1001))
    b = cnat.update_translation(vpp, _spec(VIP4, 1002))
    translations.extend([a, b])
    cnat.delete_translation(vpp, a)
    c = cnat.update_translation(vpp, _spec(VIP4, 1003))
    translations.append(c)
    assert c == a


def test_delete_of_unknown_translation_is_no_such_entry(vpp):
    with pytest.raises(VppApiError) as e:
        cnat.delete_translation(vpp, 4242)
    assert e.value.retval == Retval.NO_SUCH_ENTRY
    assert e.value.message == "cnat_translation_del"


def test_delete_twice_is_no_such_entry(vpp):
    tid = cnat.update_translation(vpp, _spec(VIP4, 1004))
    cnat.delete_translation(vpp, tid)
    with pytest.raises(VppApiError) as e:
        cnat.delete_translation(vpp, tid)
    assert e.value.retval == Retval.NO_SUCH_ENTRY


def test_interface_vip_without_address_stays_unresolved(vpp, translations, loop):
    tid = cnat.update_translation(
        vpp, TranslationSpec(Endpoint.interface(loop, 80), Proto.TCP, (Path(Endpoint.of("10.0.1.5", 80)),)))
    translations.append(tid)
    [t] = [t for t in cnat.dump_translations(vpp) if t.id == tid]
    assert t.vip.sw_if_index == loop
    assert t.vip.port == 80
    assert t.vip.address == ipaddress.IPv4Address(0)


def test_unresolved_interface_vip_is_never_updated_in_place(vpp, translations, loop):
    # VPP stores it under one key and looks it up under another: each update adds one.
    spec = TranslationSpec(Endpoint.interface(loop, 81), Proto.TCP, (Path(Endpoint.of("10.0.1.5", 80)),))
    a = cnat.update_translation(vpp, spec)
    translations.append(a)
    b = cnat.update_translation(vpp, spec)
    translations.append(b)
    assert a != b
    assert {a, b} <= {t.id for t in cnat.dump_translations(vpp)}


def test_interface_vip_takes_the_interface_address(vpp, translations, loop):
    interfaces.add_address(vpp, loop, "192.0.2.1/24")
    try:
        tid = cnat.update_translation(
            vpp, TranslationSpec(Endpoint.interface(loop, 80), Proto.TCP, (Path(Endpoint.of("10.0.1.5", 80)),)))
        translations.append(tid)
        [t] = [t for t in cnat.dump_translations(vpp) if t.id == tid]
        assert t.vip == Endpoint(ipaddress.ip_address("192.0.2.1"), 80, loop, False)
        # Resolved, it is the translation of that address: an address VIP updates it.
        again = cnat.update_translation(vpp, _spec("192.0.2.1", 80, ("10.0.1.9", 80)))
        assert again == tid
        [t] = [t for t in cnat.dump_translations(vpp) if t.id == tid]
        assert t.vip.sw_if_index == loop
        assert [str(p.dst.address) for p in t.paths] == ["10.0.1.9"]
        cnat.delete_translation(vpp, tid)
    finally:
        interfaces.del_address(vpp, loop, "192.0.2.1/24")


def test_session_purge_also_deletes_every_translation(vpp, translations):
    if cnat.dump_translations(vpp):
        pytest.skip("VPP holds translations this test did not make; purge would delete them")
    translations.append(cnat.update_translation(vpp, _spec(VIP4, 1005)))
    assert cnat.dump_sessions(vpp) == []
    cnat.purge_sessions(vpp)
    assert cnat.dump_translations(vpp) == []


# -- SNAT --------------------------------------------------------------------------


def test_snat_addresses_are_set_read_and_cleared(vpp, no_snat):
    cnat.set_snat_addresses(vpp, "192.0.2.10", "2001:db8::10")
    got = cnat.get_snat_addresses(vpp)
    assert got == cnat.SnatAddresses(ipaddress.IPv4Address("192.0.2.10"),
                                     ipaddress.IPv6Address("2001:db8::10"), cnat.NO_INTERFACE)
    cnat.clear_snat_addresses(vpp)
    assert cnat.get_snat_addresses(vpp) is None


def test_snat_ip4_only_reports_interface_zero(vpp, no_snat):
    # VPP reports the IPv6 side's interface, still zeroed when only IPv4 is set.
    cnat.set_snat_addresses(vpp, "192.0.2.10")
    got = cnat.get_snat_addresses(vpp)
    assert got is not None
    assert got.ip4 == ipaddress.IPv4Address("192.0.2.10")
    assert got.ip6 == ipaddress.IPv6Address(0)
    assert got.sw_if_index == 0


def test_clearing_absent_snat_is_feature_disabled(vpp, no_snat):
    with pytest.raises(VppApiError) as e:
        vpp.call("cnat_set_snat_addresses", snat_ip4=ipaddress.IPv4Address(0),
                 snat_ip6=ipaddress.IPv6Address(0), sw_if_index=cnat.NO_INTERFACE)
    assert e.value.retval == Retval.FEATURE_DISABLED
    cnat.clear_snat_addresses(vpp)  # the wrapper treats it as done


def test_get_snat_without_entry_is_feature_disabled(vpp, no_snat):
    reply = vpp.call("cnat_get_snat_addresses", check=False)
    assert reply.retval == Retval.FEATURE_DISABLED


def test_snat_settings_without_addresses_are_refused_before_vpp(vpp, no_snat):
    # VPP 26.06 would dereference a NULL SNAT entry: the wrapper never sends these.
    sent = dict(vpp.calls)
    with pytest.raises(cnat.SnatNotConfigured):
        cnat.add_snat_exclusion(vpp, "10.0.0.0/8")
    with pytest.raises(cnat.SnatNotConfigured):
        cnat.set_snat_policy(vpp, cnat.SnatPolicy.K8S)
    assert vpp.calls["cnat_snat_policy_add_del_exclude_pfx"] == sent.get("cnat_snat_policy_add_del_exclude_pfx", 0)
    assert vpp.calls["cnat_set_snat_policy"] == sent.get("cnat_set_snat_policy", 0)


def test_snat_interface_map_without_addresses_is_feature_disabled(vpp, no_snat, loop):
    with pytest.raises(VppApiError) as e:
        cnat.set_snat_interface(vpp, loop, cnat.SnatIfTable.POD)
    assert e.value.retval == Retval.FEATURE_DISABLED


def test_snat_exclusions_policy_and_interface_maps(vpp, no_snat, loop):
    cnat.set_snat_addresses(vpp, "192.0.2.10", "2001:db8::10")
    cnat.add_snat_exclusion(vpp, "10.0.0.0/8")
    cnat.add_snat_exclusion(vpp, "fd00::/8")
    cnat.del_snat_exclusion(vpp, "10.0.0.0/8")
    cnat.del_snat_exclusion(vpp, "10.0.0.0/8")  # absent: still fine
    cnat.del_snat_exclusion(vpp, "fd00::/8")
    for policy in (cnat.SnatPolicy.K8S, cnat.SnatPolicy.IF_PFX, cnat.SnatPolicy.NONE):
        cnat.set_snat_policy(vpp, policy)
    for table in cnat.SnatIfTable:
        cnat.set_snat_interface(vpp, loop, table)
        cnat.set_snat_interface(vpp, loop, table, enable=False)


def test_snat_interface_map_checks_interface_and_table(vpp, no_snat, loop):
    cnat.set_snat_addresses(vpp, "192.0.2.10")
    with pytest.raises(VppApiError) as e:
        cnat.set_snat_interface(vpp, 4242, cnat.SnatIfTable.POD)
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX
    with pytest.raises(VppApiError) as e:
        vpp.call("cnat_snat_policy_add_del_if", sw_if_index=loop, is_add=1, table=4)
    assert e.value.retval == Retval.INVALID_VALUE


def test_unknown_snat_policy_is_invalid_value(vpp, no_snat):
    cnat.set_snat_addresses(vpp, "192.0.2.10")
    with pytest.raises(VppApiError) as e:
        vpp.call("cnat_set_snat_policy", policy=9)
    assert e.value.retval == Retval.INVALID_VALUE


# -- feature arc ----------------------------------------------------------------------


def test_feature_enable_and_disable(vpp, loop):
    cnat.enable_feature(vpp, loop)
    cnat.enable_feature(vpp, loop, False)


def test_feature_on_unknown_interface_is_invalid_sw_if_index(vpp):
    with pytest.raises(VppApiError) as e:
        cnat.enable_feature(vpp, 4242)
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX
