"""af_packet, tap and memif: the drivers behind pod interfaces."""
from __future__ import annotations

import os
import uuid

import pytest
from pyroute2 import IPRoute

from vppagent.cni import pool
from vppagent.vpp import af_packet, interfaces, memif, tap
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval


@pytest.fixture
def veth():
    """A veth pair in this namespace (VPP's): returns the end VPP attaches to."""
    name = "vpt" + uuid.uuid4().hex[:8]
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="veth", peer={"ifname": name + "p"})
        for n in (name, name + "p"):
            ipr.link("set", index=ipr.link_lookup(ifname=n)[0], state="up")
    yield name
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            ipr.link("del", index=found[0])


def test_af_packet_round_trip(vpp, veth):
    idx = af_packet.create(vpp, veth, mac="02:fe:aa:00:00:01")
    try:
        assert af_packet.AfPacket(idx, veth) in af_packet.dump(vpp)
        i = interfaces.get(vpp, idx)
        assert i.name == f"host-{veth}"
        assert i.mac == "02:fe:aa:00:00:01"
        with pytest.raises(VppApiError) as e:
            af_packet.create(vpp, veth)
        assert e.value.retval == Retval.IF_ALREADY_EXISTS
    finally:
        af_packet.delete(vpp, veth)
    assert all(a.host_if_name != veth for a in af_packet.dump(vpp))


@pytest.mark.parametrize("gso", [False, True], ids=["offloads-off", "gso"])
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("mtu", [1450, 9000])
def test_pod_rings_are_accepted(vpp, veth, version, mtu, gso):
    rings = pool.Rings(version=version, gso=gso)
    args = rings.create_args(mtu)
    assert bool(args["flags"] & af_packet.Flags.VERSION_2) == (version == 2)
    assert args["flags"] & af_packet.Flags.CKSUM_GSO
    if version == 2:  # fixed-size frames: each holds the largest packet with its headers
        largest = 65536 if gso else mtu
        assert args["rx_frame_size"] >= largest + 256 and args["rx_frame_size"] % 16 == 0
        ring = args["rx_frame_size"] * args["rx_frames_per_block"]
        assert ring % 4096 == 0 and 2 << 20 <= ring <= 4 << 20, ring  # bytes in flight, not 66 MB
    idx = pool.attach_af_packet(vpp, veth, "02:fe:aa:00:00:02", mtu, rings)
    try:
        assert af_packet.AfPacket(idx, veth) in af_packet.dump(vpp)
    finally:
        af_packet.delete(vpp, veth)


def test_af_packet_on_missing_host_interface_is_refused(vpp):
    with pytest.raises(VppApiError) as e:
        af_packet.create(vpp, "vpt-does-not-exist")
    assert e.value.retval == Retval.INVALID_INTERFACE
    assert all(a.host_if_name != "vpt-does-not-exist" for a in af_packet.dump(vpp))


def test_deleting_unknown_af_packet_is_refused(vpp):
    with pytest.raises(VppApiError) as e:
        af_packet.delete(vpp, "vpt-does-not-exist")
    assert e.value.retval == Retval.SYSCALL_ERROR_1


@pytest.mark.skipif(os.path.exists("/dev/vhost-net"), reason="this case is about nodes without /dev/vhost-net")
def test_tap_fails_without_vhost_net_and_leaves_nothing(vpp):
    with pytest.raises(VppApiError) as e:
        tap.create(vpp, tap.TapSpec(host_if_name="vpt-tap0"))
    # VPP opens /dev/net/tun first, then fails on vhost-net and undoes the tap.
    assert e.value.retval in (Retval.SYSCALL_ERROR_1, Retval.SYSCALL_ERROR_2)
    assert tap.dump(vpp) == []


def test_memif_socket_and_interface_round_trip(vpp, tmp_path):
    sock_id = memif.add_socket(vpp, str(tmp_path / "memif.sock"), socket_id=7)
    assert sock_id == 7
    try:
        assert memif.MemifSocket(7, str(tmp_path / "memif.sock")) in memif.sockets(vpp)
        idx = memif.create(vpp, memif.MemifSpec(socket_id=7, id=3))
        try:
            m = [x for x in memif.dump(vpp) if x.sw_if_index == idx]
            assert len(m) == 1
            assert (m[0].id, m[0].socket_id, m[0].role, m[0].mode) == (3, 7, memif.Role.MASTER, memif.Mode.IP)
            assert interfaces.get(vpp, idx).name == "memif7/3"
            with pytest.raises(VppApiError):
                memif.create(vpp, memif.MemifSpec(socket_id=7, id=3))
        finally:
            memif.delete(vpp, idx)
        assert all(x.sw_if_index != idx for x in memif.dump(vpp))
    finally:
        memif.del_socket(vpp, 7)
    assert all(s.socket_id != 7 for s in memif.sockets(vpp))


def test_memif_on_unknown_socket_is_refused(vpp):
    with pytest.raises(VppApiError):
        memif.create(vpp, memif.MemifSpec(socket_id=4242, id=0))
