"""The kpod plugin's IPv4 GSO fix-up on one real VPP, where VPP must segment a pod's GSO frames.

Pod a sends with its offloads on through af_packet with checksum/GSO; pod b's af_packet has
no GSO (and pod b no offloads), so VPP cuts pod a's 64 KB frames itself (the ``gso`` feature on
b's interface, as on a tunnel), the case VPP
26.06 gets wrong for IPv4 (docs/upstream-vpp-af-packet-offloads.md): with kpod-gso-ip4 on pod
a's interface the payload arrives whole and the receiver counts no checksum errors. IPv6 is
the control: VPP segments it right without the fix.
"""
from __future__ import annotations

import ipaddress
import secrets
from contextlib import ExitStack

import pytest

from testbed import netpods, payload, plugins, targets
from vppagent.cni import pool
from vppagent.vpp import af_packet, features, interfaces

pytestmark = [pytest.mark.real_vpp, pytest.mark.netns]

GATEWAY4, GATEWAY6 = "10.97.255.1/32", "fd00:97:ff::1/128"
A = ("10.97.1.2", "fd00:97:1::2")
B = ("10.97.1.3", "fd00:97:1::3")
TCP_BYTES = 4 << 20

@pytest.fixture(scope="module")
def topo():
    with ExitStack() as stack:
        vpp = targets.private_vpp(stack, plugin_dirs=plugins.plugin_dirs("kpod"), client={}).vpp
        assert vpp is not None
        loop = interfaces.create_loopback(vpp)
        stack.callback(interfaces.delete_loopback, vpp, loop)
        for gw in (GATEWAY4, GATEWAY6):
            interfaces.add_address(vpp, loop, ipaddress.ip_interface(gw))
        interfaces.set_admin_up(vpp, loop)
        sfx = secrets.token_hex(3)
        # the agent's rings for pods that keep their offloads (V2, 64 KB frames)
        a = netpods.pod(vpp, stack, f"vpa-kpa-{sfx}", f"vka{sfx}", A, loopback=loop,
                        rings=pool.Rings(gso=True).create_args(1500))
        # no CKSUM_GSO: VPP must segment and complete checksums for this interface itself
        b = netpods.pod(vpp, stack, f"vpa-kpb-{sfx}", f"vkb{sfx}", B, loopback=loop,
                        flags=af_packet.Flags.QDISC_BYPASS, pod_offloads=False)
        features.gso(vpp, b.sw_if_index)  # VPP segments what b's interface cannot take
        yield vpp, a, b


def _send(a: netpods.NetPod, b: netpods.NetPod, to: str) -> tuple[str, str, int]:
    """(sent, received, new checksum errors in pod b) of a 4 MB TCP transfer a -> b."""
    before = sum(payload.csum_errors(b.netns).values())
    sent, got = payload.exchange(a.netns, b.netns, "tcp", to, bind=to, port=7802, tcp_bytes=TCP_BYTES)
    return sent, got, sum(payload.csum_errors(b.netns).values()) - before


@pytest.mark.parametrize("family", [4, 6])
def test_the_fix_up_makes_vpp_segmented_pod_traffic_arrive_whole(topo, family: int) -> None:
    vpp, a, b = topo
    features.enable(vpp, a.sw_if_index, "ip4-unicast", "kpod-gso-ip4")
    try:
        sent, got, errors = _send(a, b, B[0] if family == 4 else B[1])
        assert sent.startswith(str(TCP_BYTES)), sent
        assert got == sent and errors == 0, (sent, got, errors)
        if family == 4:  # the node saw the IPv4 GSO frames (IPv6 needs no fix-up)
            fixed = vpp.call("cli_inband", cmd="show errors").reply
            assert "kpod-gso-ip4" in fixed, fixed
    finally:
        features.enable(vpp, a.sw_if_index, "ip4-unicast", "kpod-gso-ip4", enable=False)


def test_enabling_a_feature_that_is_not_there_is_refused(topo) -> None:
    from vppagent.vpp.errors import VppApiError

    vpp, a, _ = topo
    with pytest.raises(VppApiError):
        features.enable(vpp, a.sw_if_index, "ip4-unicast", "no-such-feature")


def test_without_the_fix_up_vpp_corrupts_the_ipv4_segments_it_cuts(topo) -> None:
    """The upstream bug itself (docs/upstream-vpp-af-packet-offloads.md, 1.): when this fails,
    VPP got it right on its own and the kpod fix-up can go."""
    _, a, b = topo
    sent, got, errors = _send(a, b, B[0])
    assert sent.startswith(str(TCP_BYTES)), sent
    assert got != sent and errors > 0, (sent, got, errors)
