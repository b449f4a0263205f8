"""Neighbours and proxy ARP/ND."""
from __future__ import annotations

import ipaddress

import pytest

from vppagent.vpp import interfaces, neighbors, routes
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval


@pytest.fixture
def loop(vpp):
    idx = interfaces.create_loopback(vpp)
    interfaces.add_address(vpp, idx, "10.85.0.1/24")
    interfaces.add_address(vpp, idx, "fd00:85::1/64")
    yield idx
    interfaces.del_address(vpp, idx, "10.85.0.1/24")
    interfaces.del_address(vpp, idx, "fd00:85::1/64")
    interfaces.delete_loopback(vpp, idx)


@pytest.mark.parametrize("ip", ["10.85.0.9", "fd00:85::9"])
def test_static_neighbour_round_trip(vpp, loop, ip):
    n = neighbors.Neighbor(loop, ipaddress.ip_address(ip), "02:00:00:00:85:09")
    neighbors.add(vpp, n)
    got = [x for x in neighbors.dump(vpp, loop, ipv6=":" in ip) if x.ip == n.ip]
    assert got == [n]
    neighbors.delete(vpp, n)
    assert [x for x in neighbors.dump(vpp, loop, ipv6=":" in ip) if x.ip == n.ip] == []


def test_neighbour_on_unknown_interface_is_refused(vpp):
    with pytest.raises(VppApiError) as e:
        neighbors.add(vpp, neighbors.Neighbor(99999, ipaddress.ip_address("10.85.0.9"), "02:00:00:00:85:09"))
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX


def test_proxy_arp_range_and_interface(vpp, loop):
    r = neighbors.ProxyArpRange(ipaddress.IPv4Address("169.254.1.1"), ipaddress.IPv4Address("169.254.1.1"))
    neighbors.add_proxy_arp(vpp, r)
    neighbors.enable_proxy_arp(vpp, loop)
    assert r in neighbors.proxy_arp_ranges(vpp)
    assert loop in neighbors.proxy_arp_interfaces(vpp)
    neighbors.enable_proxy_arp(vpp, loop, False)
    neighbors.del_proxy_arp(vpp, r)
    assert r not in neighbors.proxy_arp_ranges(vpp)
    assert loop not in neighbors.proxy_arp_interfaces(vpp)


def test_proxy_nd_entry_installs_and_removes_its_host_route(vpp, loop):
    neighbors.add_proxy_nd(vpp, loop, "fe80::1")
    r = routes.lookup(vpp, "fe80::1/128")
    assert r is not None and [p.sw_if_index for p in r.paths] == [loop]
    neighbors.del_proxy_nd(vpp, loop, "fe80::1")
    assert routes.lookup(vpp, "fe80::1/128") is None
