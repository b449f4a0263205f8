"""IP tables and routes: VPP's special entries, replace vs multipath, lookups,
and the retvals of ip_api.c / fib_api.c."""
from __future__ import annotations

from vppagent.vpp.retvals import Retval

from .builders import NO_INDEX, fib_path, route, routes_of

IP4_SPECIALS = {"0.0.0.0/0", "0.0.0.0/32", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32"}
IP6_SPECIALS = {"::/0", "fe80::/10"}


def loop_up(vpp, prefix: str | None = None) -> int:
    idx = vpp.api.create_loopback().sw_if_index
    vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=1)
    if prefix:
        assert vpp.api.sw_interface_add_del_address(sw_if_index=idx, is_add=True, prefix=prefix).retval == 0
    return idx


def add_route(vpp, prefix, paths, table_id=0, is_add=True, is_multipath=False):
    return vpp.api.ip_route_add_del(is_add=is_add, is_multipath=is_multipath,
                                    route=route(prefix, paths, table_id))


def test_default_tables_and_their_specials(emu, vpp):
    tables = [(t.table.table_id, bool(t.table.is_ip6), t.table.name) for t in vpp.api.ip_table_dump()]
    assert tables == [(0, False, "ipv4-VRF:0"), (0, True, "ipv6-VRF:0")]
    routes = routes_of(vpp)
    assert set(routes) == IP4_SPECIALS
    assert all(int(p.type) == 2 and p.sw_if_index == NO_INDEX for ps in routes.values() for p in ps)
    assert set(routes_of(vpp, ip6=True)) == IP6_SPECIALS


def test_table_add_delete(emu, vpp):
    add = vpp.api.ip_table_add_del
    assert add(is_add=True, table={"table_id": 10, "is_ip6": False, "name": "pods"}).retval == 0
    assert add(is_add=True, table={"table_id": 10, "is_ip6": False}).retval == 0  # again: fine
    assert add(is_add=True, table={"table_id": 11, "is_ip6": True}).retval == 0
    names = {(t.table.table_id, bool(t.table.is_ip6)): t.table.name for t in vpp.api.ip_table_dump()}
    assert names[(10, False)] == "pods" and names[(11, True)] == "ipv6-VRF:11"
    assert set(routes_of(vpp, 10)) == IP4_SPECIALS
    assert add(is_add=False, table={"table_id": 10, "is_ip6": False}).retval == 0
    assert add(is_add=False, table={"table_id": 10, "is_ip6": False}).retval == 0  # absent: fine
    assert add(is_add=False, table={"table_id": 0, "is_ip6": False}).retval == 0  # ignored
    left = [(t.table.table_id, bool(t.table.is_ip6)) for t in vpp.api.ip_table_dump()]
    assert left == [(0, False), (0, True), (11, True)]
    assert vpp.api.ip_route_dump(table={"table_id": 10, "is_ip6": False}) == []


def test_route_add_dump_replace_delete(emu, vpp):
    idx = loop_up(vpp, "10.0.0.1/24")
    r = add_route(vpp, "192.168.1.0/24", [fib_path(idx, "10.0.0.2")])
    assert r.retval == 0 and r.stats_index != NO_INDEX
    (p,) = routes_of(vpp)["192.168.1.0/24"]
    assert (p.sw_if_index, str(p.nh.address.ip4), p.weight, int(p.type)) == (idx, "10.0.0.2", 1, 0)
    # Without is_multipath an add replaces the paths.
    assert add_route(vpp, "192.168.1.0/24", [fib_path(idx, "10.0.0.3")]).retval == 0
    assert [str(p.nh.address.ip4) for p in routes_of(vpp)["192.168.1.0/24"]] == ["10.0.0.3"]
    assert add_route(vpp, "192.168.1.0/24", [], is_add=False).retval == 0
    assert "192.168.1.0/24" not in routes_of(vpp)
    # Deleting a route that is not there succeeds, as in VPP.
    assert add_route(vpp, "192.168.1.0/24", [], is_add=False).retval == 0


def test_multipath_adds_and_removes_paths(emu, vpp):
    idx = loop_up(vpp, "10.0.0.1/24")
    a, b = fib_path(idx, "10.0.0.2"), fib_path(idx, "10.0.0.3")
    assert add_route(vpp, "172.16.0.0/16", [a], is_multipath=True).retval == 0
    assert add_route(vpp, "172.16.0.0/16", [b], is_multipath=True).retval == 0
    assert add_route(vpp, "172.16.0.0/16", [b], is_multipath=True).retval == 0  # already there
    assert [str(p.nh.address.ip4) for p in routes_of(vpp)["172.16.0.0/16"]] == ["10.0.0.2", "10.0.0.3"]
    assert add_route(vpp, "172.16.0.0/16", [a], is_add=False, is_multipath=True).retval == 0
    assert [str(p.nh.address.ip4) for p in routes_of(vpp)["172.16.0.0/16"]] == ["10.0.0.3"]
    assert add_route(vpp, "172.16.0.0/16", [b], is_add=False, is_multipath=True).retval == 0
    assert "172.16.0.0/16" not in routes_of(vpp)
    assert add_route(vpp, "172.16.0.0/16", [], is_multipath=True).retval == Retval.NO_PATHS_IN_ROUTE


def test_route_rejections(emu, vpp):
    assert add_route(vpp, "10.9.0.0/16", [fib_path(NO_INDEX, "1.1.1.1")], table_id=42).retval == \
        Retval.NO_SUCH_FIB
    assert add_route(vpp, "10.9.0.0/16", [fib_path(77, "1.1.1.1")]).retval == Retval.NO_MATCHING_INTERFACE
    # Recursive via a table that does not exist.
    assert add_route(vpp, "10.9.0.0/16", [fib_path(NO_INDEX, "1.1.1.1", table_id=9)]).retval == \
        Retval.NO_SUCH_FIB
    assert add_route(vpp, "10.9.0.0/16", []).retval == Retval.NO_PATHS_IN_ROUTE
    assert add_route(vpp, "10.9.0.0/16", [fib_path(proto=9)]).retval == Retval.UNSPECIFIED
    assert "10.9.0.0/16" not in routes_of(vpp)


def test_recursive_drop_and_ipv6_routes(emu, vpp):
    assert add_route(vpp, "10.10.0.0/16", [fib_path(NO_INDEX, "8.8.8.8")]).retval == 0
    (p,) = routes_of(vpp)["10.10.0.0/16"]
    assert (p.sw_if_index, str(p.nh.address.ip4)) == (NO_INDEX, "8.8.8.8")
    assert add_route(vpp, "10.11.0.0/16", [fib_path(type=2)]).retval == 0
    assert int(routes_of(vpp)["10.11.0.0/16"][0].type) == 2
    idx = loop_up(vpp, "2001:db8::1/64")
    assert add_route(vpp, "2001:db8:1::/48", [fib_path(idx, "2001:db8::2", proto=1)]).retval == 0
    routes6 = routes_of(vpp, ip6=True)
    (p6,) = routes6["2001:db8:1::/48"]
    assert (p6.sw_if_index, str(p6.nh.address.ip6)) == (idx, "2001:db8::2")
    assert int(routes6["2001:db8::1/128"][0].type) == 1 and "2001:db8::/64" in routes6


def test_routes_in_other_tables(emu, vpp):
    vpp.api.ip_table_add_del(is_add=True, table={"table_id": 20, "is_ip6": False})
    assert add_route(vpp, "10.20.0.0/16", [fib_path(type=2)], table_id=20).retval == 0
    assert "10.20.0.0/16" in routes_of(vpp, 20) and "10.20.0.0/16" not in routes_of(vpp)
    # Deleting the table drops its routes with it (VPP logs a BUG about it).
    vpp.api.ip_table_add_del(is_add=False, table={"table_id": 20, "is_ip6": False})
    assert vpp.api.ip_route_dump(table={"table_id": 20, "is_ip6": False}) == []
    vpp.api.ip_table_add_del(is_add=True, table={"table_id": 20, "is_ip6": False})
    assert set(routes_of(vpp, 20)) == IP4_SPECIALS


def test_lookup(emu, vpp):
    idx = loop_up(vpp, "10.0.0.1/24")
    add_route(vpp, "10.30.0.0/16", [fib_path(idx, "10.0.0.2")])
    exact = vpp.api.ip_route_lookup(table_id=0, exact=1, prefix="10.30.0.0/16")
    assert exact.retval == 0 and str(exact.route.prefix) == "10.30.0.0/16"
    assert exact.route.n_paths == 1 and exact.route.paths[0].sw_if_index == idx
    lpm = vpp.api.ip_route_lookup(table_id=0, exact=0, prefix="10.30.4.5/32")
    assert str(lpm.route.prefix) == "10.30.0.0/16"
    assert vpp.api.ip_route_lookup(table_id=0, exact=1, prefix="10.30.4.0/24").retval == Retval.NO_SUCH_ENTRY
    # Anything falls back to the default route.
    assert str(vpp.api.ip_route_lookup(table_id=0, exact=0, prefix="1.2.3.4/32").route.prefix) == "0.0.0.0/0"
    assert vpp.api.ip_route_lookup(table_id=99, exact=0, prefix="1.2.3.4/32").retval == Retval.NO_SUCH_FIB


def test_api_route_over_a_connected_prefix_is_hidden_by_the_interface(emu, vpp):
    idx = loop_up(vpp, "10.40.0.1/24")
    assert add_route(vpp, "10.40.0.0/24", [fib_path(type=2)]).retval == 0
    # The interface source has priority over the API's.
    (p,) = routes_of(vpp)["10.40.0.0/24"]
    assert (int(p.type), p.sw_if_index) == (0, idx)
    vpp.api.sw_interface_set_flags(sw_if_index=idx, flags=0)
    assert int(routes_of(vpp)["10.40.0.0/24"][0].type) == 2


def test_route_v2_carries_the_source(emu, vpp):
    add_route(vpp, "10.50.0.0/16", [fib_path(type=2)])
    dump = vpp.api.ip_route_v2_dump(table={"table_id": 0, "is_ip6": False}, src=0)
    srcs = {str(d.route.prefix): d.route.src for d in dump}
    assert srcs["10.50.0.0/16"] == 8 and srcs["0.0.0.0/0"] == 20  # API, default-route
    api_only = vpp.api.ip_route_v2_dump(table={"table_id": 0, "is_ip6": False}, src=8)
    assert [str(d.route.prefix) for d in api_only] == ["10.50.0.0/16"]


def test_many_routes_pipelined_over_the_client(emu, vpp):
    idx = loop_up(vpp, "10.0.0.1/24")
    msg = vpp.messages["ip_route_add_del"]
    msg_id = vpp.transport.get_msg_index(f"ip_route_add_del_{msg.crc[2:]}")
    n = 1000
    for i in range(n):
        vpp.transport.write(msg.pack({
            "_vl_msg_id": msg_id, "client_index": vpp.transport.socket_index, "context": 0x10000 + i,
            "is_add": True,
            "route": route(f"100.{i // 256}.{i % 256}.0/24", [fib_path(idx, "10.0.0.2")])}))
    assert vpp.api.control_ping().retval == 0  # ordered: every add is done by now
    routes = routes_of(vpp)
    assert sum(1 for p in routes if p.startswith("100.")) == n
