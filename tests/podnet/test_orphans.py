"""What an agent killed between creating a pod interface and tagging it leaves in VPP, and its removal.

``af_packet_create_v3`` and ``memif_create_v2`` carry no tag: a pod interface
or a spare is created in one call and tagged in the next. The leftovers of a
crash between the two are made here by the same calls the agent makes,
while no agent runs; the next agent must delete them, and nothing else.
On the emulator always, on a private real VPP when ``VPPAGENT_VPP_BIN`` is set.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from testbed.podnet import Pods, container_id, host_links, running_agent
from testbed.targets import emulator_and_private_vpp
from vppagent.cni import pod_interface_kind, pool
from vppagent.vpp import af_packet, interfaces, memif

pytestmark = [pytest.mark.netns, pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]



@pytest.fixture
def pods():
    p = Pods()
    yield p
    p.close()


def _veth(name: str, peer: str) -> None:
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer], check=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True)


def _untagged_af_packet(vpp) -> set[str]:
    untagged = {i.sw_if_index for i in interfaces.dump(vpp) if not i.tag}
    return {a.host_if_name for a in af_packet.dump(vpp) if a.sw_if_index in untagged}


@pytest.mark.parametrize("vpp_bin", emulator_and_private_vpp())
def test_a_restart_deletes_what_a_crash_left_untagged_and_nothing_else(pods: Pods, tmp_path, vpp_bin) -> None:
    cid = container_id(1)
    pod_veth = pod_interface_kind.host_ifname(cid, "eth0")
    spare_veth = "vpw" + "0" * 11 + "1"
    assert pool.HOST_IFNAME.fullmatch(spare_veth)
    foreign = "vpz-foreign"  # an operator's af_packet interface, never tagged by anyone
    ns, ns2 = pods.netns(1), pods.netns(2)
    our_sockets = lambda vpp: {s.filename for s in memif.sockets(vpp)  # noqa: E731
                               if s.filename.startswith(pod_interface_kind.MEMIF_SOCKET_PREFIX)}

    def crash_leftovers(vpp) -> None:
        _veth(pod_veth, "vpy" + cid[-12:])
        _veth(spare_veth, "vpx" + "0" * 11 + "1")
        _veth(foreign, foreign + "-p")
        for name in (pod_veth, spare_veth, foreign):
            af_packet.create(vpp, name)
        sid = memif.add_socket(vpp, pod_interface_kind.memif_socket("memif0", ns))
        memif.create(vpp, memif.MemifSpec(socket_id=sid, role=memif.Role.MASTER, mode=memif.Mode.IP))
        memif.add_socket(vpp, pod_interface_kind.memif_socket("memif0", ns2))  # a crash before its memif
        assert _untagged_af_packet(vpp) >= {pod_veth, spare_veth, foreign}
        assert len(our_sockets(vpp)) == 2 and len(memif.dump(vpp)) == 1

    try:
        with running_agent(vpp_bin=vpp_bin, state_dir=str(tmp_path / "state")) as h:
            h.restart(between=lambda: crash_leftovers(h.vpp))
            assert foreign in _untagged_af_packet(h.vpp)
            assert not _untagged_af_packet(h.vpp) - {foreign}
            assert memif.dump(h.vpp) == [] and our_sockets(h.vpp) == set()
            # The start's recovery deleted the host ends no attachment owns; the operator's stays.
            assert host_links() == set() and host_links(re.compile(re.escape(foreign)))
            # The pod the crash interrupted can be attached again, on the same veth name.
            result, err = h.add(cid, ns)
            assert err is None, err
            tag = pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(cid, "eth0")
            assert [a.host_if_name for a in af_packet.dump(h.vpp)
                    if a.sw_if_index == next(i.sw_if_index for i in interfaces.dump(h.vpp) if i.tag == tag)] \
                == [pod_veth]
            assert h.delete(cid, ns) is None
            assert _untagged_af_packet(h.vpp) == {foreign}
            af_packet.delete(h.vpp, foreign)
    finally:
        subprocess.run(["ip", "link", "del", foreign], check=False, capture_output=True)

