"""Interfaces: loopbacks, index reuse, flags, MTU, tags, MAC, tables,
unnumbered, addresses and their VPP retvals."""
from __future__ import annotations

import ipaddress

from vppagent.vpp.retvals import Retval

from .builders import NO_INDEX, routes_of


def names(vpp) -> list[str]:
    return [d.interface_name for d in vpp.api.sw_interface_dump()]


def details(vpp, sw_if_index: int):
    (d,) = vpp.api.sw_interface_dump(sw_if_index=sw_if_index)
    return d


def loop(vpp, **kw) -> int:
    r = vpp.api.create_loopback(**kw)
    assert r.retval == 0
    return r.sw_if_index


def test_fresh_vpp_has_only_local0(emu, vpp):
    (local0,) = vpp.api.sw_interface_dump()
    assert (local0.sw_if_index, local0.interface_name, local0.interface_dev_type) == (0, "local0", "local")
    assert int(local0.flags) == 0 and list(local0.mtu) == [0, 0, 0, 0]


def test_loopback_defaults_as_vpp(emu, vpp):
    idx = loop(vpp)
    d = details(vpp, idx)
    assert (d.interface_name, d.interface_dev_type) == ("loop0", "Loopback")
    assert str(d.l2_address) == "de:ad:00:00:00:00"
    assert d.link_mtu == 9000 and list(d.mtu) == [9000, 0, 0, 0]
    assert int(d.flags) == 0
    given = loop(vpp, mac_address="02:00:00:00:00:07")
    assert str(details(vpp, given).l2_address) == "02:00:00:00:00:07"


def test_loopback_instances(emu, vpp):
    r = vpp.api.create_loopback_instance(is_specified=True, user_instance=7)
    assert r.retval == 0 and details(vpp, r.sw_if_index).interface_name == "loop7"
    assert str(details(vpp, r.sw_if_index).l2_address) == "de:ad:00:00:00:07"
    dup = vpp.api.create_loopback_instance(is_specified=True, user_instance=7)
    assert dup.retval == Retval.INVALID_REGISTRATION and dup.sw_if_index == NO_INDEX
    too_big = vpp.api.create_loopback_instance(is_specified=True, user_instance=16384)
    assert too_big.retval == Retval.INVALID_REGISTRATION
    # Unspecified instances take the first free number.
    assert details(vpp, loop(vpp)).interface_name == "loop0"


def test_sw_if_index_reuse_is_last_freed_first(emu, vpp):
    a, b, c = loop(vpp), loop(vpp), loop(vpp)
    assert (a, b, c) == (1, 2, 3)
    assert vpp.api.delete_loopback(sw_if_index=a).retval == 0
    assert vpp.api.delete_loopback(sw_if_index=c).retval == 0
    assert loop(vpp) == c and loop(vpp) == a and loop(vpp) == 4
    # Loopback instance numbers are reused lowest first, independently of indices.
    assert names(vpp) == ["local0", "loop2", "loop1", "loop0", "loop3"]


def test_delete_loopback_rejects_other_interfaces(emu, vpp):
    assert vpp.api.delete_loopback(sw_if_index=0).retval == Retval.INVALID_SW_IF_INDEX
    assert vpp.api.delete_loopback(sw_if_index=42).retval == Retval.INVALID_SW_IF_INDEX


def test_dump_filters(emu, vpp):
    loop(vpp)
    loop(vpp)
    assert names(vpp) == ["local0", "loop0", "loop1"]
    # sw_if_index 0 without a name filter means all, as in VPP.
    assert len(vpp.api.sw_interface_dump(sw_if_index=0)) == 3
    assert [d.sw_if_index for d in vpp.api.sw_interface_dump(sw_if_index=2)] == [2]
    assert vpp.api.sw_interface_dump(sw_if_index=99) == []
    found = vpp.api.sw_interface_dump(name_filter_valid=True, name_filter="LOOP1")
    assert [d.interface_name for d in found] == ["loop1"]


def test_admin_and_link_state(emu, vpp):
    idx = loop(vpp)
    assert vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=1).retval == 0
    assert int(details(vpp, idx).flags) == 3  # admin up, link up (a loopback follows admin)
    assert vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=0).retval == 0
    assert int(details(vpp, idx).flags) == 0
    assert vpp.api.sw_interface_set_flags(sw_if_index=99, flags=1).retval == Retval.INVALID_SW_IF_INDEX


def test_mtu(emu, vpp):
    idx = loop(vpp)
    assert vpp.api.sw_interface_set_mtu(sw_if_index=idx, mtu=[1500, 1400, 1300, 0]).retval == 0
    assert list(details(vpp, idx).mtu) == [1500, 1400, 1300, 0]
    # A loopback cannot change its max frame size; setting the same one is fine.
    assert vpp.api.hw_interface_set_mtu(sw_if_index=idx, mtu=1500).retval == Retval.UNSUPPORTED
    assert vpp.api.hw_interface_set_mtu(sw_if_index=idx, mtu=9000).retval == 0
    assert vpp.api.hw_interface_set_mtu(sw_if_index=0, mtu=1500).retval == Retval.FEATURE_DISABLED
    assert vpp.api.sw_interface_set_mtu(sw_if_index=77, mtu=[0, 0, 0, 0]).retval == Retval.INVALID_SW_IF_INDEX


def test_tag(emu, vpp):
    idx = loop(vpp)
    assert vpp.api.sw_interface_tag_add_del(is_add=True, sw_if_index=idx, tag="pod-a").retval == 0
    assert details(vpp, idx).tag == "pod-a"
    assert vpp.api.sw_interface_tag_add_del(is_add=True, sw_if_index=idx, tag="").retval == Retval.INVALID_VALUE
    assert vpp.api.sw_interface_tag_add_del(is_add=False, sw_if_index=idx).retval == 0
    assert details(vpp, idx).tag == ""


def test_mac_address(emu, vpp):
    idx = loop(vpp)
    assert vpp.api.sw_interface_set_mac_address(sw_if_index=idx, mac_address="02:11:22:33:44:55").retval == 0
    assert str(details(vpp, idx).l2_address) == "02:11:22:33:44:55"
    assert str(vpp.api.sw_interface_get_mac_address(sw_if_index=idx).mac_address) == "02:11:22:33:44:55"
    # local0 has no L2 address: VPP reports the failure as UNIMPLEMENTED.
    r = vpp.api.sw_interface_set_mac_address(sw_if_index=0, mac_address="02:11:22:33:44:55")
    assert r.retval == Retval.UNIMPLEMENTED


def test_rx_mode_on_interface_without_queues(emu, vpp):
    idx = loop(vpp)
    assert vpp.api.sw_interface_set_rx_mode(sw_if_index=idx, mode=2).retval == 0
    r = vpp.api.sw_interface_set_rx_mode(sw_if_index=idx, queue_id_valid=True, queue_id=0, mode=2)
    assert r.retval == Retval.UNIMPLEMENTED


def test_addresses(emu, vpp):
    idx = loop(vpp)
    add = vpp.api.sw_interface_add_del_address
    assert add(sw_if_index=idx, is_add=True, prefix="10.1.0.1/24").retval == 0
    assert add(sw_if_index=idx, is_add=True, prefix="10.1.0.2/24").retval == 0  # same prefix: fine
    assert add(sw_if_index=idx, is_add=True, prefix="10.1.0.1/24").retval == Retval.ADDRESS_IN_USE
    assert add(sw_if_index=idx, is_add=True, prefix="2001:db8::1/64").retval == 0
    assert add(sw_if_index=idx, is_add=True, prefix="2001:db8::1/64").retval == Retval.DUPLICATE_IF_ADDRESS
    dump4 = vpp.api.ip_address_dump(sw_if_index=idx, is_ipv6=False)
    assert [str(d.prefix) for d in dump4] == ["10.1.0.1/24", "10.1.0.2/24"]
    dump6 = vpp.api.ip_address_dump(sw_if_index=idx, is_ipv6=True)
    assert [str(d.prefix) for d in dump6] == ["2001:db8::1/64"]
    assert add(sw_if_index=idx, is_add=False, prefix="10.9.9.9/24").retval == \
        Retval.ADDRESS_NOT_FOUND_FOR_INTERFACE
    assert add(sw_if_index=idx, is_add=False, prefix="10.1.0.2/24").retval == 0
    assert add(sw_if_index=idx, is_add=False, del_all=True).retval == 0
    assert vpp.api.ip_address_dump(sw_if_index=idx, is_ipv6=False) == []
    assert vpp.api.ip_address_dump(sw_if_index=idx, is_ipv6=True) == []


def test_address_conflicts_across_interfaces(emu, vpp):
    a, b = loop(vpp), loop(vpp)
    add = vpp.api.sw_interface_add_del_address
    assert add(sw_if_index=a, is_add=True, prefix="10.2.0.1/16").retval == 0
    assert add(sw_if_index=b, is_add=True, prefix="10.2.3.1/24").retval == Retval.ADDRESS_IN_USE
    assert add(sw_if_index=b, is_add=False, prefix="10.2.0.1/16").retval == \
        Retval.ADDRESS_NOT_FOUND_FOR_INTERFACE
    assert add(sw_if_index=0, is_add=True, prefix="10.3.0.1/24").retval == Retval.UNSUPPORTED
    assert add(sw_if_index=99, is_add=True, prefix="10.3.0.1/24").retval == Retval.INVALID_SW_IF_INDEX
    # In another table the same prefix is fine.
    assert vpp.api.ip_table_add_del(is_add=True, table={"table_id": 5, "is_ip6": False}).retval == 0
    assert vpp.api.sw_interface_set_table(sw_if_index=b, is_ipv6=False, vrf_id=5).retval == 0
    assert add(sw_if_index=b, is_add=True, prefix="10.2.0.1/16").retval == 0


def test_table_binding(emu, vpp):
    idx = loop(vpp)
    assert vpp.api.sw_interface_set_table(sw_if_index=idx, is_ipv6=False, vrf_id=7).retval == Retval.NO_SUCH_FIB
    assert vpp.api.ip_table_add_del(is_add=True, table={"table_id": 7, "is_ip6": False}).retval == 0
    assert vpp.api.sw_interface_set_table(sw_if_index=idx, is_ipv6=False, vrf_id=7).retval == 0
    got = vpp.api.sw_interface_get_table(sw_if_index=idx, is_ipv6=False)
    assert (got.retval, got.vrf_id) == (0, 7)
    assert vpp.api.sw_interface_get_table(sw_if_index=idx, is_ipv6=True).vrf_id == 0
    bad = vpp.api.sw_interface_get_table(sw_if_index=99, is_ipv6=False)
    assert (bad.retval, bad.vrf_id) == (Retval.INVALID_SW_IF_INDEX, NO_INDEX)
    vpp.api.sw_interface_add_del_address(sw_if_index=idx, is_add=True, prefix="10.7.0.1/24")
    assert vpp.api.sw_interface_set_table(sw_if_index=idx, is_ipv6=False, vrf_id=0).retval == \
        Retval.ADDRESS_FOUND_FOR_INTERFACE
    # The interface's lock keeps the table after the API lets it go.
    assert vpp.api.ip_table_add_del(is_add=False, table={"table_id": 7, "is_ip6": False}).retval == 0
    assert 7 in [t.table.table_id for t in vpp.api.ip_table_dump()]
    assert vpp.api.delete_loopback(sw_if_index=idx).retval == 0
    assert 7 not in [t.table.table_id for t in vpp.api.ip_table_dump()]


def test_unnumbered(emu, vpp):
    donor, borrower = loop(vpp), loop(vpp)
    vpp.api.sw_interface_add_del_address(sw_if_index=donor, is_add=True, prefix="10.8.0.1/24")
    set_un = vpp.api.sw_interface_set_unnumbered
    assert set_un(sw_if_index=donor, unnumbered_sw_if_index=borrower, is_add=True).retval == 0
    assert [(d.sw_if_index, d.ip_sw_if_index) for d in vpp.api.ip_unnumbered_dump()] == [(borrower, donor)]
    assert [(d.sw_if_index, d.ip_sw_if_index)
            for d in vpp.api.ip_unnumbered_dump(sw_if_index=borrower)] == [(borrower, donor)]
    assert vpp.api.ip_address_dump(sw_if_index=borrower, is_ipv6=False) == []
    # It borrows addresses, so it cannot change tables either.
    vpp.api.ip_table_add_del(is_add=True, table={"table_id": 3, "is_ip6": False})
    assert vpp.api.sw_interface_set_table(sw_if_index=borrower, is_ipv6=False, vrf_id=3).retval == \
        Retval.ADDRESS_FOUND_FOR_INTERFACE
    assert set_un(sw_if_index=99, unnumbered_sw_if_index=borrower, is_add=True).retval == \
        Retval.INVALID_SW_IF_INDEX_2
    assert set_un(sw_if_index=donor, unnumbered_sw_if_index=99, is_add=True).retval == \
        Retval.INVALID_SW_IF_INDEX
    assert set_un(sw_if_index=donor, unnumbered_sw_if_index=borrower, is_add=False).retval == 0
    assert vpp.api.ip_unnumbered_dump() == []
    third = loop(vpp)
    assert vpp.api.sw_interface_set_table(sw_if_index=third, is_ipv6=False, vrf_id=3).retval == 0
    assert set_un(sw_if_index=donor, unnumbered_sw_if_index=third, is_add=True).retval == \
        Retval.UNEXPECTED_INTF_STATE


def test_ip6_enable_and_link_local(emu, vpp):
    idx = loop(vpp, mac_address="02:fe:12:34:56:78")
    get_ll = vpp.api.sw_interface_ip6_get_link_local_address
    assert get_ll(sw_if_index=idx).retval == Retval.IP6_NOT_ENABLED
    assert vpp.api.sw_interface_ip6_enable_disable(sw_if_index=idx, enable=False).retval == \
        Retval.IP6_NOT_ENABLED
    assert vpp.api.sw_interface_ip6_enable_disable(sw_if_index=idx, enable=True).retval == 0
    ll = get_ll(sw_if_index=idx)
    assert ll.retval == 0 and ll.ip == ipaddress.IPv6Address("fe80::fe:12ff:fe34:5678")
    # Enabling again counts but says VALUE_EXIST, as VPP's ip6_link_enable.
    assert vpp.api.sw_interface_ip6_enable_disable(sw_if_index=idx, enable=True).retval == Retval.VALUE_EXIST
    assert vpp.api.sw_interface_ip6_enable_disable(sw_if_index=idx, enable=False).retval == 0
    assert get_ll(sw_if_index=idx).retval == 0
    assert vpp.api.sw_interface_ip6_enable_disable(sw_if_index=idx, enable=False).retval == 0
    assert get_ll(sw_if_index=idx).retval == Retval.IP6_NOT_ENABLED


def test_interface_routes_follow_admin_state(emu, vpp):
    idx = loop(vpp)
    vpp.api.sw_interface_add_del_address(sw_if_index=idx, is_add=True, prefix="10.4.0.1/24")
    assert "10.4.0.0/24" not in routes_of(vpp)  # admin down: no interface routes yet
    vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=1)
    routes = routes_of(vpp)
    local = routes["10.4.0.1/32"][0]
    assert (int(local.type), local.sw_if_index, str(local.nh.address.ip4)) == (1, idx, "10.4.0.1")
    glean = routes["10.4.0.0/24"][0]
    assert (int(glean.type), glean.sw_if_index) == (0, idx)
    assert int(routes["10.4.0.0/32"][0].type) == 2 and int(routes["10.4.0.255/32"][0].type) == 2
    vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=0)
    assert not {"10.4.0.0/24", "10.4.0.1/32", "10.4.0.255/32"} & set(routes_of(vpp))


def test_deleting_an_interface_cleans_up(emu, vpp):
    idx = loop(vpp)
    vpp.api.sw_interface_add_del_address(sw_if_index=idx, is_add=True, prefix="10.5.0.1/31")
    vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=1)
    routes = routes_of(vpp)
    peer = routes["10.5.0.0/32"][0]
    assert (peer.sw_if_index, str(peer.nh.address.ip4)) == (idx, "10.5.0.0")
    assert vpp.api.delete_loopback(sw_if_index=idx).retval == 0
    assert set(routes_of(vpp)) == {"0.0.0.0/0", "0.0.0.0/32", "224.0.0.0/4", "240.0.0.0/4",
                                   "255.255.255.255/32"}
    assert names(vpp) == ["local0"]
