"""IP tables and routes: the same expectations of the emulator and of a real VPP."""
from __future__ import annotations

import ipaddress

import pytest

from vppagent.vpp import interfaces, routes
from vppagent.vpp.client import BulkError
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval


@pytest.fixture
def two_loops(vpp):
    idx = [interfaces.create_loopback(vpp) for _ in range(2)]
    for i, n in zip(idx, (1, 2)):
        interfaces.add_address(vpp, i, f"10.8{n}.0.1/24")
        interfaces.set_admin_up(vpp, i)
    yield idx
    for i, n in zip(idx, (1, 2)):
        interfaces.del_address(vpp, i, f"10.8{n}.0.1/24")
        interfaces.delete_loopback(vpp, i)


def _ours(vpp, table_id=0, ipv6=False, within="10.90.0.0/16"):
    net = ipaddress.ip_network(within)
    return [r for r in routes.dump(vpp, table_id, ipv6=ipv6) if r.prefix.subnet_of(net)]


def test_route_via_interface_and_next_hop_round_trips(vpp, two_loops):
    r = routes.Route.of("10.90.0.5/32", routes.Path(sw_if_index=two_loops[0],
                                                   next_hop=ipaddress.ip_address("10.81.0.2")))
    routes.add(vpp, r)
    got = _ours(vpp)
    assert len(got) == 1
    assert got[0].prefix == r.prefix
    assert [(p.sw_if_index, p.next_hop) for p in got[0].paths] == [(two_loops[0], ipaddress.ip_address("10.81.0.2"))]
    routes.delete(vpp, r)
    assert _ours(vpp) == []


def test_multipath_adds_and_removes_paths(vpp, two_loops):
    p1 = routes.Path(sw_if_index=two_loops[0], next_hop=ipaddress.ip_address("10.81.0.2"))
    p2 = routes.Path(sw_if_index=two_loops[1], next_hop=ipaddress.ip_address("10.82.0.2"))
    routes.add(vpp, routes.Route.of("10.90.1.0/24", p1))
    routes.add_paths(vpp, routes.Route.of("10.90.1.0/24", p2))
    got = _ours(vpp)
    assert {p.sw_if_index for p in got[0].paths} == set(two_loops)
    routes.remove_paths(vpp, routes.Route.of("10.90.1.0/24", p1))
    assert [p.sw_if_index for p in _ours(vpp)[0].paths] == [two_loops[1]]
    routes.delete(vpp, routes.Route.of("10.90.1.0/24", p2))
    assert _ours(vpp) == []


def test_add_without_multipath_replaces_paths(vpp, two_loops):
    p1 = routes.Path(sw_if_index=two_loops[0], next_hop=ipaddress.ip_address("10.81.0.2"))
    p2 = routes.Path(sw_if_index=two_loops[1], next_hop=ipaddress.ip_address("10.82.0.2"))
    routes.add(vpp, routes.Route.of("10.90.2.0/24", p1))
    routes.add(vpp, routes.Route.of("10.90.2.0/24", p2))
    assert [p.sw_if_index for p in _ours(vpp)[0].paths] == [two_loops[1]]
    routes.delete(vpp, routes.Route.of("10.90.2.0/24", p2))


def test_ipv6_route_in_a_vrf(vpp, two_loops):
    routes.add_table(vpp, 90, ipv6=True)
    try:
        interfaces.add_address(vpp, two_loops[0], "fd00:81::1/64")
        r = routes.Route.of("fd00:90::/64", routes.Path(sw_if_index=two_loops[0],
                                                        next_hop=ipaddress.ip_address("fd00:81::2")),
                            table_id=90)
        routes.add(vpp, r)
        got = _ours(vpp, 90, ipv6=True, within="fd00:90::/32")
        assert [x.prefix for x in got] == [r.prefix]
        assert got[0].paths[0].next_hop == ipaddress.ip_address("fd00:81::2")
        assert 90 in {t.table_id for t in routes.tables(vpp) if t.ipv6}
        routes.delete(vpp, r)
        interfaces.del_address(vpp, two_loops[0], "fd00:81::1/64")
    finally:
        routes.delete_table(vpp, 90, ipv6=True)


def test_route_in_missing_table_is_refused(vpp):
    r = routes.Route.of("10.90.3.0/24", routes.Path(next_hop=ipaddress.ip_address("10.81.0.2")), table_id=4711)
    with pytest.raises(VppApiError) as e:
        routes.add(vpp, r)
    assert e.value.retval == Retval.NO_SUCH_FIB


def test_lookup_exact_and_missing(vpp, two_loops):
    r = routes.Route.of("10.90.4.0/24", routes.Path(sw_if_index=two_loops[0],
                                                   next_hop=ipaddress.ip_address("10.81.0.2")))
    routes.add(vpp, r)
    try:
        got = routes.lookup(vpp, "10.90.4.0/24")
        assert got is not None and got.prefix == r.prefix
        assert routes.lookup(vpp, "10.90.5.0/24") is None
    finally:
        routes.delete(vpp, r)


def test_bulk_programs_thousands_of_routes_in_order(vpp, two_loops):
    rs = [routes.Route.of(ipaddress.IPv4Network((int(ipaddress.IPv4Address("10.90.128.0")) + i, 32)),
                          routes.Path(sw_if_index=two_loops[0], next_hop=ipaddress.ip_address("10.81.0.2")))
          for i in range(3000)]
    assert routes.bulk_add(vpp, rs, window=256) == 3000
    assert {r.prefix for r in _ours(vpp)} == {r.prefix for r in rs}
    assert routes.bulk_delete(vpp, rs) == 3000
    assert _ours(vpp) == []


def test_bulk_reports_each_failure_and_still_applies_the_rest(vpp, two_loops):
    good = routes.Route.of("10.90.6.1/32", routes.Path(sw_if_index=two_loops[0],
                                                      next_hop=ipaddress.ip_address("10.81.0.2")))
    bad = routes.Route.of("10.90.6.2/32", routes.Path(next_hop=ipaddress.ip_address("10.81.0.2")), table_id=4711)
    with pytest.raises(BulkError) as e:
        routes.bulk_add(vpp, [good, bad, good])
    assert list(e.value.errors) == [1]
    assert e.value.errors[1].retval == Retval.NO_SUCH_FIB
    assert [r.prefix for r in _ours(vpp)] == [good.prefix]
    routes.delete(vpp, good)
