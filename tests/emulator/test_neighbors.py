"""IP neighbours, their adjacency FIB entries, flushes, proxy ARP and ND proxy."""
from __future__ import annotations

from vppagent.vpp.retvals import Retval

from .builders import NO_INDEX, routes_of


def loop_up(vpp, prefix: str) -> int:
    idx = vpp.api.create_loopback().sw_if_index
    vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=1)
    vpp.api.sw_interface_add_del_address(sw_if_index=idx, is_add=True, prefix=prefix)
    return idx


def nbr(vpp, idx, ip, mac="02:00:00:00:00:01", flags=0, is_add=True):
    return vpp.api.ip_neighbor_add_del(is_add=is_add, neighbor={
        "sw_if_index": idx, "flags": flags, "mac_address": mac, "ip_address": ip})


def dump(vpp, af=0, sw_if_index=NO_INDEX):
    return [(d.neighbor.sw_if_index, str(d.neighbor.ip_address), str(d.neighbor.mac_address),
             int(d.neighbor.flags)) for d in vpp.api.ip_neighbor_dump(sw_if_index=sw_if_index, af=af)]


def test_add_dump_delete(emu, vpp):
    idx = loop_up(vpp, "10.0.0.1/24")
    r = nbr(vpp, idx, "10.0.0.2", flags=1)
    assert r.retval == 0 and r.stats_index != NO_INDEX
    assert nbr(vpp, idx, "2001:db8::2", mac="02:00:00:00:00:02").retval == 0
    assert dump(vpp) == [(idx, "10.0.0.2", "02:00:00:00:00:01", 1)]
    assert dump(vpp, af=1) == [(idx, "2001:db8::2", "02:00:00:00:00:02", 0)]
    assert dump(vpp, sw_if_index=0) == []
    # The neighbour puts an attached /32 in the interface's table.
    (p,) = routes_of(vpp)["10.0.0.2/32"]
    assert (p.sw_if_index, str(p.nh.address.ip4)) == (idx, "10.0.0.2")
    assert nbr(vpp, idx, "10.0.0.2", is_add=False).retval == 0
    assert "10.0.0.2/32" not in routes_of(vpp)
    assert nbr(vpp, idx, "10.0.0.2", is_add=False).retval == Retval.NO_SUCH_ENTRY
    assert nbr(vpp, 77, "10.0.0.3").retval == Retval.INVALID_SW_IF_INDEX


def test_no_fib_entry_flag(emu, vpp):
    idx = loop_up(vpp, "10.0.0.1/24")
    r = nbr(vpp, idx, "10.0.0.9", flags=2)
    assert r.retval == 0 and r.stats_index == NO_INDEX
    assert "10.0.0.9/32" not in routes_of(vpp)
    assert dump(vpp)[0][3] == 2


def test_static_entries_are_not_overwritten_by_dynamic_ones(emu, vpp):
    idx = loop_up(vpp, "10.0.0.1/24")
    assert nbr(vpp, idx, "10.0.0.2", flags=1).retval == 0
    assert nbr(vpp, idx, "10.0.0.2", mac="02:00:00:00:00:99").retval == -2  # VPP's literal -2
    assert nbr(vpp, idx, "10.0.0.2").retval == 0  # same MAC: accepted
    assert nbr(vpp, idx, "10.0.0.3").retval == 0
    assert nbr(vpp, idx, "10.0.0.3", flags=1).retval == 0  # dynamic may become static
    assert [f for *_, f in dump(vpp)] == [1, 1]


def test_flushes(emu, vpp):
    idx = loop_up(vpp, "10.0.0.1/24")
    nbr(vpp, idx, "10.0.0.2")
    nbr(vpp, idx, "10.0.0.3", flags=1)
    vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=0)
    assert [ip for _, ip, _, _ in dump(vpp)] == ["10.0.0.3"]  # admin down flushed the dynamic one
    vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=1)
    nbr(vpp, idx, "10.0.0.4")
    vpp.api.sw_interface_add_del_address(sw_if_index=idx, is_add=False, prefix="10.0.0.1/24")
    assert [ip for _, ip, _, _ in dump(vpp)] == ["10.0.0.3"]  # the covered dynamic one went
    vpp.api.delete_loopback(sw_if_index=idx)
    assert dump(vpp) == []
    assert "10.0.0.3/32" not in routes_of(vpp)


def test_table_rebind_moves_adjacency_entries(emu, vpp):
    idx = vpp.api.create_loopback().sw_if_index
    nbr(vpp, idx, "10.6.0.2")
    vpp.api.ip_table_add_del(is_add=True, table={"table_id": 6, "is_ip6": False})
    assert vpp.api.sw_interface_set_table(sw_if_index=idx, is_ipv6=False, vrf_id=6).retval == 0
    assert "10.6.0.2/32" in routes_of(vpp, 6) and "10.6.0.2/32" not in routes_of(vpp)


def test_proxy_arp(emu, vpp):
    rng = {"table_id": 0, "low": "10.0.0.10", "hi": "10.0.0.20"}
    assert vpp.api.proxy_arp_add_del(is_add=True, proxy=rng).retval == 0
    assert vpp.api.proxy_arp_add_del(is_add=True, proxy=rng).retval == 0
    got = [(d.proxy.table_id, str(d.proxy.low), str(d.proxy.hi)) for d in vpp.api.proxy_arp_dump()]
    assert got == [(0, "10.0.0.10", "10.0.0.20")]
    assert vpp.api.proxy_arp_add_del(is_add=True, proxy=dict(rng, table_id=9)).retval == Retval.NO_SUCH_FIB
    assert vpp.api.proxy_arp_add_del(is_add=False, proxy=rng).retval == 0
    assert vpp.api.proxy_arp_add_del(is_add=False, proxy=rng).retval == Retval.NO_SUCH_ENTRY
    idx = vpp.api.create_loopback().sw_if_index
    assert vpp.api.proxy_arp_intfc_enable_disable(sw_if_index=idx, enable=True).retval == 0
    assert [d.sw_if_index for d in vpp.api.proxy_arp_intfc_dump()] == [idx]
    assert vpp.api.proxy_arp_intfc_enable_disable(sw_if_index=idx, enable=False).retval == 0
    assert vpp.api.proxy_arp_intfc_dump() == []
    assert vpp.api.proxy_arp_intfc_enable_disable(sw_if_index=55, enable=True).retval == \
        Retval.INVALID_SW_IF_INDEX


def test_nd_proxy(emu, vpp):
    idx = vpp.api.create_loopback().sw_if_index
    assert vpp.api.ip6nd_proxy_enable_disable(sw_if_index=idx, is_enable=True).retval == 0
    assert vpp.api.ip6nd_proxy_add_del(sw_if_index=idx, is_add=True, ip="2001:db8::5").retval == 0
    got = [(d.sw_if_index, str(d.ip)) for d in vpp.api.ip6nd_proxy_dump()]
    assert got == [(idx, "2001:db8::5")]
    assert "2001:db8::5/128" in routes_of(vpp, ip6=True)
    assert vpp.api.ip6nd_proxy_add_del(sw_if_index=idx, is_add=False, ip="2001:db8::5").retval == 0
    assert vpp.api.ip6nd_proxy_dump() == []
    assert vpp.api.ip6nd_proxy_add_del(sw_if_index=99, is_add=True, ip="2001:db8::5").retval == \
        Retval.INVALID_SW_IF_INDEX
