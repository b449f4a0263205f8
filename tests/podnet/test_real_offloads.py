"""Pods that keep their offloads (config pod_offloads): payloads arrive intact through a real VPP.

Pod to pod on one node and pod to a ClusterIP (cnat), IPv4 and IPv6, TCP streams and UDP
datagrams larger than the MTU: the receiver checks a SHA-256 of what it got against the
sender's, the receiving pod counts no checksum errors (``nstat``), and VPP counts no new
drops. Checks too that the pods really kept TSO/GSO and checksum offload, and that UDP
segmentation is off (VPP 26.06 takes it for TCP GSO: docs/upstream-vpp-af-packet-offloads.md).
"""
from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path

import pytest

from testbed import payload, plugins
from testbed.fakekube import objects as k
from testbed.podnet import Pods, container_id, host_links, running_agent
from testbed.targets import real_vpp_reason
from testbed.wait import wait_for
from vppagent.cni import pod_interface_kind
from vppagent.vpp import cnat, interfaces

pytestmark = [pytest.mark.real_vpp, pytest.mark.netns,
              pytest.mark.skipif(real_vpp_reason(private=True) is not None,
                                 reason=real_vpp_reason(private=True) or "")]

PORT = 7801
VIP4, VIP6 = "10.96.0.71", "fd00:96::71"
UDP_SIZES = (200, 1300, 3000, 8000)  # the last two are larger than the MTU: IP fragments
# cnat translates each packet by its L4 ports and has no reassembly: a fragmented datagram to a
# VIP loses its later fragments, offloads or not (a VPP cnat limit, README "Status and limits").
VIP_UDP_SIZES = (200, 1300)

def _ns(path: str) -> str:
    return Path(path).name


def _vpp_name(h, n: int) -> str:
    tag = pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(container_id(n), "eth0")
    return next(i.name for i in interfaces.dump(h.vpp) if i.tag == tag)


@pytest.mark.parametrize("family", [4, 6])
def test_payloads_survive_pod_to_pod_and_through_a_cluster_ip_with_offloads_on(family: int) -> None:
    pods = Pods()
    try:
        with running_agent(vpp_bin=os.environ["VPPAGENT_VPP_BIN"], pod_cidrs=("10.244.1.0/24", "fd00:244:1::/64"),
                           plugin_dirs=plugins.plugin_dirs("kpod"),
                           VPPAGENT_SERVICES="true", VPPAGENT_POD_OFFLOADS="true",
                           VPPAGENT_SERVICE_CIDRS="10.96.0.0/12,fd00:96::/108",
                           VPPAGENT_CLUSTER_CIDRS="10.244.0.0/16,fd00:244::/56") as h:
            a_ns, b_ns = pods.netns(1), pods.netns(2)
            a, err = h.add(container_id(1), a_ns, pod="client")
            assert err is None, err
            b, err = h.add(container_id(2), b_ns, pod="server")
            assert err is None, err
            ips = {name: next(str(ipaddress.ip_interface(i["address"]).ip) for i in res["ips"]
                              if ipaddress.ip_interface(i["address"]).version == family)
                   for name, res in (("a", a), ("b", b))}
            feats = payload.ethtool_features(_ns(a_ns), "eth0")
            assert feats["tcp-segmentation-offload"] == "on" and feats["tx-checksumming"] == "on", feats
            assert feats["tx-udp-segmentation"] == "off", feats
            shown = h.vpp.call("cli_inband", cmd="show interface features " + _vpp_name(h, 1)).reply
            assert "kpod-gso-ip4" in shown, shown

            vip = VIP4 if family == 4 else VIP6
            h.fake.add(k.service("sink", cluster_ip=vip, ports=[
                {"name": "tcp", "protocol": "TCP", "port": PORT, "targetPort": PORT},
                {"name": "udp", "protocol": "UDP", "port": PORT, "targetPort": PORT}]))
            eps = k.endpointslice("sink-a", service="sink", addresses=[ips["b"]], port=PORT)
            eps["addressType"] = "IPv4" if family == 4 else "IPv6"
            eps["ports"] = [{"name": "tcp", "protocol": "TCP", "port": PORT},
                            {"name": "udp", "protocol": "UDP", "port": PORT}]
            h.fake.add(eps)
            wait_for(lambda: sum(str(t.vip.address) == vip for t in cnat.dump_translations(h.vpp)) == 2, 15,
                     "the ClusterIP translations")
            ping = pods.exec(a_ns, "ping", "-c", "2", "-i", "0.2", "-W", "2", ips["b"])
            assert ping.returncode == 0, ping.stdout + ping.stderr

            before_errors = payload.csum_errors(_ns(b_ns))
            any_addr = "0.0.0.0" if family == 4 else "::"
            with payload.vpp_drops(h.vpp, "offloads") as drops:
                for to in (ips["b"], vip):
                    for proto in ("tcp", "udp"):
                        sent, got = payload.exchange(_ns(a_ns), _ns(b_ns), proto, to, bind=any_addr, port=PORT,
                                                     udp_sizes=VIP_UDP_SIZES if to == vip else UDP_SIZES)
                        assert got == sent, f"{proto} to {to}: sent {sent!r}, received {got!r}"
                time.sleep(0.2)
            assert payload.csum_errors(_ns(b_ns)) == before_errors
            assert drops == [], drops[:5]

            assert h.delete(container_id(1), a_ns) is None
            assert h.delete(container_id(2), b_ns) is None
            assert host_links() == set()
    finally:
        pods.close()
