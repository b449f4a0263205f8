"""Tunnels family (ipip, vxlan): the same expectations of the emulator and of a real VPP 26.06."""
from __future__ import annotations

import ipaddress

import pytest

from vppagent.vpp import interfaces, routes, tunnels
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval
from vppagent.vpp.tunnels import IpipSpec, TunnelMode, VxlanSpec

# VPP error codes the shared Retval enum does not name (vnet/error.h).
INVALID_DST_ADDRESS = Retval.INVALID_DST_ADDRESS
SAME_SRC_DST = Retval.SAME_SRC_DST


@pytest.fixture
def ipips(vpp):
    made: list[int] = []
    yield made
    present = {t.sw_if_index for t in tunnels.dump_ipip(vpp)}
    for i in sorted(set(made)):
        if i in present:
            tunnels.delete_ipip(vpp, i)


@pytest.fixture
def vxlans(vpp):
    made: list[VxlanSpec] = []
    yield made
    for spec in made:
        try:
            tunnels.delete_vxlan(vpp, spec)  # VPP deletes by key: the instance does not matter
        except VppApiError as e:
            if e.retval != Retval.NO_SUCH_ENTRY:  # the test deleted it already
                raise


# -- ipip ---------------------------------------------------------------------------


def test_ipip_round_trip_field_by_field(vpp, ipips):
    spec = IpipSpec.of("192.0.2.1", "192.0.2.2", instance=4711, dscp=10,
                       flags=tunnels.EncapDecapFlags.ENCAP_COPY_DSCP)
    idx = tunnels.create_ipip(vpp, spec)
    ipips.append(idx)
    assert tunnels.dump_ipip(vpp, idx) == [tunnels.IpipTunnel(idx, spec)]
    iface = interfaces.get(vpp, idx)
    assert iface.name == "ipip4711"
    assert not iface.admin_up
    tunnels.delete_ipip(vpp, idx)
    assert tunnels.dump_ipip(vpp, idx) == []
    assert interfaces.get(vpp, idx) is None


def test_ipip_ipv6_with_automatic_instance(vpp, ipips):
    idx = tunnels.create_ipip(vpp, IpipSpec.of("2001:db8::1", "2001:db8::2"))
    ipips.append(idx)
    [t] = tunnels.dump_ipip(vpp, idx)
    assert t.spec.src == ipaddress.ip_address("2001:db8::1")
    assert t.spec.dst == ipaddress.ip_address("2001:db8::2")
    assert interfaces.get(vpp, idx).name == f"ipip{t.spec.instance}"


def test_ipip_admin_up_brings_the_link_up(vpp, ipips):
    idx = tunnels.create_ipip(vpp, IpipSpec.of("192.0.2.1", "192.0.2.3"))
    ipips.append(idx)
    interfaces.set_admin_up(vpp, idx)
    i = interfaces.get(vpp, idx)
    assert i.admin_up and i.link_up
    interfaces.set_admin_up(vpp, idx, False)


def test_ipip_same_endpoints_again_is_refused_with_the_existing_index(vpp, ipips):
    spec = IpipSpec.of("192.0.2.1", "192.0.2.4")
    idx = tunnels.create_ipip(vpp, spec)
    ipips.append(idx)
    reply = vpp.call("ipip_add_tunnel", check=False, tunnel={
        "instance": tunnels.AUTO_INSTANCE, "src": spec.src, "dst": spec.dst,
        "sw_if_index": 0, "table_id": 0, "flags": 0, "mode": 0, "dscp": 0})
    assert reply.retval == Retval.IF_ALREADY_EXISTS
    assert reply.sw_if_index == idx
    with pytest.raises(VppApiError) as e:
        tunnels.create_ipip(vpp, spec)
    assert e.value.retval == Retval.IF_ALREADY_EXISTS


def test_ipip_same_endpoints_in_another_table_is_another_tunnel(vpp, ipips):
    routes.add_table(vpp, 4242)
    try:
        a = tunnels.create_ipip(vpp, IpipSpec.of("192.0.2.1", "192.0.2.5"))
        ipips.append(a)
        b = tunnels.create_ipip(vpp, IpipSpec.of("192.0.2.1", "192.0.2.5", table_id=4242))
        ipips.append(b)
        assert a != b
        assert tunnels.dump_ipip(vpp, b)[0].spec.table_id == 4242
        tunnels.delete_ipip(vpp, b)
    finally:
        routes.delete_table(vpp, 4242)


def test_ipip_instance_in_use_is_refused(vpp, ipips):
    idx = tunnels.create_ipip(vpp, IpipSpec.of("192.0.2.1", "192.0.2.6", instance=77))
    ipips.append(idx)
    with pytest.raises(VppApiError) as e:
        tunnels.create_ipip(vpp, IpipSpec.of("192.0.2.1", "192.0.2.7", instance=77))
    assert e.value.retval == Retval.INSTANCE_IN_USE


@pytest.mark.parametrize("src,dst,table,retval", [
    ("192.0.2.1", "2001:db8::1", 0, Retval.INVALID_PROTOCOL),
    ("192.0.2.1", "192.0.2.1", 0, SAME_SRC_DST),
    ("192.0.2.1", "192.0.2.8", 4243, Retval.NO_SUCH_FIB),
])
def test_ipip_bad_requests_are_refused(vpp, src, dst, table, retval):
    with pytest.raises(VppApiError) as e:
        tunnels.create_ipip(vpp, IpipSpec.of(src, dst, table_id=table))
    assert e.value.retval == retval


def test_ipip_multipoint_with_a_destination_is_invalid_dst_address(vpp):
    with pytest.raises(VppApiError) as e:
        tunnels.create_ipip(vpp, IpipSpec.of("192.0.2.1", "192.0.2.9", mode=TunnelMode.MP))
    assert e.value.retval == INVALID_DST_ADDRESS


def test_ipip_multipoint_round_trip(vpp, ipips):
    idx = tunnels.create_ipip(vpp, IpipSpec.of("192.0.2.1", "0.0.0.0", mode=TunnelMode.MP))
    ipips.append(idx)
    [t] = tunnels.dump_ipip(vpp, idx)
    assert t.spec.mode == TunnelMode.MP
    assert t.spec.dst == ipaddress.IPv4Address(0)


def test_ipip_delete_of_unknown_or_non_ipip_is_no_such_entry(vpp):
    with pytest.raises(VppApiError) as e:
        tunnels.delete_ipip(vpp, 4242)
    assert e.value.retval == Retval.NO_SUCH_ENTRY
    loop = interfaces.create_loopback(vpp)
    try:
        with pytest.raises(VppApiError) as e:
            tunnels.delete_ipip(vpp, loop)
        assert e.value.retval == Retval.NO_SUCH_ENTRY
    finally:
        interfaces.delete_loopback(vpp, loop)


# -- vxlan ----------------------------------------------------------------------------


def test_vxlan_round_trip_with_default_ports(vpp, vxlans):
    spec = VxlanSpec.of("192.0.2.1", "192.0.2.2", 1001, instance=31)
    idx = tunnels.create_vxlan(vpp, spec)
    vxlans.append(spec)
    [t] = tunnels.dump_vxlan(vpp, idx)
    assert t.sw_if_index == idx
    assert t.spec == tunnels.with_defaults(spec)
    assert (t.spec.src_port, t.spec.dst_port) == (4789, 4789)
    i = interfaces.get(vpp, idx)
    assert i.name == "vxlan_tunnel31"
    assert i.admin_up  # L2 VXLAN tunnels come up admin-up
    assert tunnels.delete_vxlan(vpp, spec) == idx
    assert tunnels.dump_vxlan(vpp, idx) == []
    assert interfaces.get(vpp, idx) is None


def test_vxlan_ipv6_with_ports_deleted_through_its_dump(vpp, vxlans):
    spec = VxlanSpec.of("2001:db8::1", "2001:db8::2", 1002, src_port=8472, dst_port=8473)
    idx = tunnels.create_vxlan(vpp, spec)
    vxlans.append(spec)
    [t] = tunnels.dump_vxlan(vpp, idx)
    assert (t.spec.src_port, t.spec.dst_port, t.spec.vni) == (8472, 8473, 1002)
    assert tunnels.delete_vxlan(vpp, t) == idx


def test_vxlan_same_key_again_is_tunnel_exist(vpp, vxlans):
    spec = VxlanSpec.of("192.0.2.1", "192.0.2.2", 1003)
    tunnels.create_vxlan(vpp, spec)
    vxlans.append(spec)
    with pytest.raises(VppApiError) as e:
        tunnels.create_vxlan(vpp, VxlanSpec.of("192.0.2.1", "192.0.2.2", 1003, instance=99))
    assert e.value.retval == Retval.TUNNEL_EXIST
    # Another VNI between the same endpoints is another tunnel.
    other = VxlanSpec.of("192.0.2.1", "192.0.2.2", 1004)
    tunnels.create_vxlan(vpp, other)
    vxlans.append(other)


def test_vxlan_instance_in_use_is_refused(vpp, vxlans):
    spec = VxlanSpec.of("192.0.2.1", "192.0.2.2", 1005, instance=55)
    tunnels.create_vxlan(vpp, spec)
    vxlans.append(spec)
    with pytest.raises(VppApiError) as e:
        tunnels.create_vxlan(vpp, VxlanSpec.of("192.0.2.1", "192.0.2.2", 1006, instance=55))
    assert e.value.retval == Retval.INSTANCE_IN_USE


def test_vxlan_delete_of_unknown_key_is_no_such_entry(vpp):
    with pytest.raises(VppApiError) as e:
        tunnels.delete_vxlan(vpp, VxlanSpec.of("192.0.2.1", "192.0.2.2", 4242))
    assert e.value.retval == Retval.NO_SUCH_ENTRY


@pytest.mark.parametrize("src,dst,table,retval", [
    ("192.0.2.1", "2001:db8::1", 0, Retval.INVALID_VALUE),
    ("192.0.2.1", "192.0.2.1", 0, SAME_SRC_DST),
    ("192.0.2.1", "192.0.2.2", 4244, Retval.NO_SUCH_FIB),
    ("192.0.2.1", "239.1.1.1", 0, Retval.INVALID_SW_IF_INDEX),  # multicast needs an mcast interface
])
def test_vxlan_bad_requests_are_refused(vpp, src, dst, table, retval):
    with pytest.raises(VppApiError) as e:
        tunnels.create_vxlan(vpp, VxlanSpec.of(src, dst, 7, encap_table_id=table))
    assert e.value.retval == retval


def test_failed_creates_answer_no_sw_if_index(vpp):
    reply = vpp.call("ipip_add_tunnel", check=False, tunnel={
        "instance": tunnels.AUTO_INSTANCE, "src": ipaddress.ip_address("192.0.2.1"),
        "dst": ipaddress.ip_address("192.0.2.1"), "sw_if_index": 0, "table_id": 0,
        "flags": 0, "mode": 0, "dscp": 0})
    assert (reply.retval, reply.sw_if_index) == (SAME_SRC_DST, tunnels.NO_INTERFACE)
    with pytest.raises(VppApiError):
        tunnels.delete_vxlan(vpp, VxlanSpec.of("192.0.2.1", "192.0.2.2", 4243))
    reply = vpp.call("vxlan_add_del_tunnel_v3", check=False, **tunnels._api_vxlan(
        VxlanSpec.of("192.0.2.1", "192.0.2.2", 4243), False))
    assert (reply.retval, reply.sw_if_index) == (Retval.NO_SUCH_ENTRY, tunnels.NO_INTERFACE)


def test_vxlan_takes_ipv6_addresses_with_96_zero_bits_as_ipv4(vpp, vxlans):
    # vxlan works on ip46 addresses: ::192.0.2.1 is 192.0.2.1 to it.
    spec = VxlanSpec.of("::c000:201", "::c000:202", 1007)
    idx = tunnels.create_vxlan(vpp, spec)
    vxlans.append(spec)
    [t] = tunnels.dump_vxlan(vpp, idx)
    assert (t.spec.src, t.spec.dst) == (ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2"))
    with pytest.raises(VppApiError) as e:
        tunnels.create_vxlan(vpp, VxlanSpec.of("192.0.2.1", "192.0.2.2", 1007))
    assert e.value.retval == Retval.TUNNEL_EXIST


def test_vxlan_dump_of_a_non_vxlan_interface_is_empty(vpp):
    assert tunnels.dump_vxlan(vpp, 0) == []
    assert tunnels.dump_ipip(vpp, 0) == []
