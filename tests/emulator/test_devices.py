"""af_packet, tap and memif devices: create, dump, delete, and VPP's refusals."""
from __future__ import annotations

import pytest

from vppagent.vpp.retvals import Retval

from .builders import NO_INDEX

# -- af_packet --------------------------------------------------------------


def af_create(vpp, name: str, **kw):
    kw.setdefault("mode", 1)
    kw.setdefault("use_random_hw_addr", True)
    return vpp.api.af_packet_create_v3(host_if_name=name, **kw)


def test_af_packet_on_a_real_host_interface(emu, vpp):
    r = af_create(vpp, "lo")  # exists in every network namespace
    assert r.retval == 0
    (d,) = vpp.api.sw_interface_dump(sw_if_index=r.sw_if_index)
    assert (d.interface_name, d.interface_dev_type) == ("host-lo", "af-packet")
    assert int(d.flags) == 2  # link up from creation, admin down
    assert str(d.l2_address).startswith("02:fe:")
    assert [(a.sw_if_index, a.host_if_name) for a in vpp.api.af_packet_dump()] == [(r.sw_if_index, "lo")]
    dup = af_create(vpp, "lo")
    assert (dup.retval, dup.sw_if_index) == (Retval.IF_ALREADY_EXISTS, r.sw_if_index)
    assert vpp.api.af_packet_delete(host_if_name="lo").retval == 0
    assert vpp.api.af_packet_dump() == []
    assert vpp.api.af_packet_delete(host_if_name="lo").retval == Retval.SYSCALL_ERROR_1


def test_af_packet_needs_the_host_interface(emu, vpp):
    r = af_create(vpp, "nosuchif0")
    assert (r.retval, r.sw_if_index) == (Retval.INVALID_INTERFACE, 0)
    bad_mode = af_create(vpp, "lo", mode=0)
    assert (bad_mode.retval, bad_mode.sw_if_index) == (Retval.INVALID_VALUE, NO_INDEX)


def test_af_packet_pretend_host_interfaces_and_modes(emu_factory, connect):
    emu = emu_factory(host_interfaces=["veth-pod1", "veth-pod2"])
    vpp = connect(emu)
    eth = af_create(vpp, "veth-pod1", use_random_hw_addr=False, hw_addr="02:00:00:aa:bb:cc")
    (d,) = vpp.api.sw_interface_dump(sw_if_index=eth.sw_if_index)
    assert str(d.l2_address) == "02:00:00:aa:bb:cc" and d.link_mtu == 9000
    ip = af_create(vpp, "veth-pod2", mode=2)
    (d,) = vpp.api.sw_interface_dump(sw_if_index=ip.sw_if_index)
    assert str(d.l2_address) == "00:00:00:00:00:00" and d.link_mtu == 0
    assert vpp.api.hw_interface_set_mtu(sw_if_index=eth.sw_if_index, mtu=1500).retval == 0
    (d,) = vpp.api.sw_interface_dump(sw_if_index=eth.sw_if_index)
    assert d.link_mtu == 1500 and d.mtu[0] == 1500
    # Admin state drives the link.
    vpp.api.sw_interface_set_flags(sw_if_index=eth.sw_if_index, flags=1)
    vpp.api.sw_interface_set_flags(sw_if_index=eth.sw_if_index, flags=0)
    (d,) = vpp.api.sw_interface_dump(sw_if_index=eth.sw_if_index)
    assert int(d.flags) == 0
    # Deleting through the generic table keeps the family consistent.
    with emu.locked():
        emu.interfaces.remove(eth.sw_if_index)
    assert [a.host_if_name for a in vpp.api.af_packet_dump()] == ["veth-pod2"]


# -- tap ----------------------------------------------------------------------


def tap_create(vpp, **kw):
    return vpp.api.tap_create_v3(**kw)


def test_tap_create_dump_delete(emu, vpp):
    r = tap_create(vpp, host_if_name_set=True, host_if_name="vpp-tap", tag="pod-x",
                   host_mtu_set=True, host_mtu_size=1400)
    assert r.retval == 0
    (d,) = vpp.api.sw_interface_dump(sw_if_index=r.sw_if_index)
    assert (d.interface_name, d.interface_dev_type, d.tag) == ("tap0", "tap", "pod-x")
    (t,) = vpp.api.sw_interface_tap_v2_dump()
    assert (t.sw_if_index, t.id, t.dev_name, t.host_if_name, t.host_mtu_size) == \
        (r.sw_if_index, 0, "tap0", "vpp-tap", 1400)
    assert (t.rx_ring_sz, t.tx_ring_sz) == (256, 256)
    tun = tap_create(vpp, id=5, tap_flags=16)
    (d,) = vpp.api.sw_interface_dump(sw_if_index=tun.sw_if_index)
    assert d.interface_name == "tun5" and str(d.l2_address) == "00:00:00:00:00:00"
    assert [t.id for t in vpp.api.sw_interface_tap_v2_dump(sw_if_index=tun.sw_if_index)] == [5]
    dup = tap_create(vpp, id=5)
    assert (dup.retval, dup.sw_if_index) == (Retval.INVALID_INTERFACE, NO_INDEX)
    assert tap_create(vpp, rx_ring_sz=100).retval == Retval.INIT_FAILED
    assert tap_create(vpp, tap_flags=8).retval == Retval.NO_MATCHING_INTERFACE
    assert vpp.api.tap_delete_v2(sw_if_index=r.sw_if_index).retval == 0
    assert vpp.api.tap_delete_v2(sw_if_index=0).retval == Retval.INVALID_SW_IF_INDEX
    assert [t.dev_name for t in vpp.api.sw_interface_tap_v2_dump()] == ["tun5"]


def test_tap_without_vhost_net_fails_like_vpp(emu_factory, connect):
    emu = emu_factory(no_vhost_net=True)
    vpp = connect(emu)
    r = tap_create(vpp, host_if_name_set=True, host_if_name="vpp-tap")
    assert (r.retval, r.sw_if_index) == (Retval.SYSCALL_ERROR_1, NO_INDEX)
    assert vpp.api.sw_interface_tap_v2_dump() == []
    assert [d.interface_name for d in vpp.api.sw_interface_dump()] == ["local0"]


# -- memif --------------------------------------------------------------------


def sockets(vpp) -> list[tuple[int, str]]:
    return [(s.socket_id, s.socket_filename) for s in vpp.api.memif_socket_filename_dump()]


def test_memif_socket_filenames(emu, vpp):
    assert sockets(vpp) == [(0, "/run/vpp/memif.sock")]
    add = vpp.api.memif_socket_filename_add_del_v2
    r = add(is_add=True, socket_id=3, socket_filename="pods/pod-a.sock")
    assert (r.retval, r.socket_id) == (0, 3)
    assert add(is_add=True, socket_id=3, socket_filename="pods/pod-a.sock").retval == 0
    assert add(is_add=True, socket_id=3, socket_filename="/tmp/other.sock").retval == \
        Retval.ENTRY_ALREADY_EXISTS
    picked = add(is_add=True, socket_filename="abstract:pod-b")
    assert picked.retval == 0 and picked.socket_id not in (0, NO_INDEX)
    assert sockets(vpp) == sorted([(0, "/run/vpp/memif.sock"), (3, "/run/vpp/pods/pod-a.sock"),
                                   (picked.socket_id, "abstract:pod-b")])
    assert add(is_add=True, socket_id=0, socket_filename="x.sock").retval == Retval.INVALID_ARGUMENT
    assert add(is_add=False, socket_id=0).retval == Retval.INVALID_ARGUMENT
    assert add(is_add=False, socket_id=44).retval == Retval.INVALID_ARGUMENT
    assert add(is_add=True, socket_id=45, socket_filename="").retval == Retval.INVALID_ARGUMENT
    assert add(is_add=False, socket_id=3).retval == 0


def test_memif_create_dump_delete(emu, vpp):
    vpp.api.memif_socket_filename_add_del_v2(is_add=True, socket_id=1, socket_filename="/tmp/m.sock")
    r = vpp.api.memif_create_v2(role=0, mode=0, id=7, socket_id=1)
    assert r.retval == 0
    (d,) = vpp.api.sw_interface_dump(sw_if_index=r.sw_if_index)
    assert (d.interface_name, d.interface_dev_type) == ("memif1/7", "memif")
    vpp.api.sw_interface_set_flags(sw_if_index=r.sw_if_index, flags=1)
    (m,) = vpp.api.memif_dump()
    assert (m.sw_if_index, m.id, m.socket_id, int(m.role), m.if_name) == (r.sw_if_index, 7, 1, 0, "memif1/7")
    assert int(m.flags) == 1  # admin up, but no peer: link down
    assert (m.ring_size, m.buffer_size) == (1, 0)  # not negotiated before a connection
    # The socket is in use now.
    assert vpp.api.memif_socket_filename_add_del_v2(is_add=False, socket_id=1).retval == \
        Retval.UNEXPECTED_INTF_STATE
    dup = vpp.api.memif_create_v2(role=0, mode=0, id=7, socket_id=1)
    assert (dup.retval, dup.sw_if_index) == (Retval.SUBIF_ALREADY_EXISTS, 0)
    slave = vpp.api.memif_create_v2(role=1, mode=0, id=8, socket_id=1)
    assert slave.retval == Retval.SUBIF_ALREADY_EXISTS  # a master socket takes no slave
    assert vpp.api.memif_create_v2(role=0, mode=0, id=1, socket_id=9).retval == Retval.INVALID_ARGUMENT
    assert vpp.api.memif_create_v2(role=0, mode=0, id=1, socket_id=1, ring_size=1000).retval == \
        Retval.INVALID_ARGUMENT
    assert vpp.api.memif_create_v2(role=0, mode=2, id=2, socket_id=1).retval == Retval.SYSCALL_ERROR_2
    ip = vpp.api.memif_create_v2(role=0, mode=1, id=3, socket_id=1)
    assert ip.retval == 0
    assert vpp.api.memif_delete(sw_if_index=0).retval == Retval.INVALID_SW_IF_INDEX
    assert vpp.api.memif_delete(sw_if_index=r.sw_if_index).retval == 0
    assert vpp.api.memif_delete(sw_if_index=ip.sw_if_index).retval == 0
    assert vpp.api.memif_dump() == []
    assert vpp.api.memif_socket_filename_add_del_v2(is_add=False, socket_id=1).retval == 0


@pytest.mark.parametrize("role", [0, 1])
def test_memif_on_the_default_socket(emu, vpp, role):
    r = vpp.api.memif_create_v2(role=role, mode=0, id=0, socket_id=0)
    assert r.retval == 0
    (m,) = vpp.api.memif_dump()
    assert int(m.role) == role and m.if_name == "memif0/0"
    assert m.zero_copy == (role == 1)
