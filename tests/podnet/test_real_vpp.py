"""Pods attached through the CNI backend talk to each other through a real VPP."""
from __future__ import annotations

import ipaddress
import os

import pytest

from testbed.netpods import TCP_CLIENT, TCP_SERVER
from testbed.podnet import Pods, container_id, host_links, running_agent
from testbed.targets import real_vpp_reason
from vppagent.cni import pod_interface_kind
from vppagent.vpp import interfaces

pytestmark = [pytest.mark.real_vpp, pytest.mark.netns,
              pytest.mark.skipif(real_vpp_reason() is not None or not os.environ.get("VPPAGENT_VPP_BIN"),
                                 reason=real_vpp_reason() or "needs VPPAGENT_VPP_BIN (a private VPP)")]


@pytest.mark.parametrize("version", [2, 3])
def test_two_pods_ping_and_talk_tcp_through_vpp(version: int) -> None:
    pods = Pods()
    try:
        with running_agent(vpp_bin=os.environ["VPPAGENT_VPP_BIN"], VPPAGENT_POD_AF_PACKET_VERSION=str(version)) as h:
            a_ns, b_ns = pods.netns(1), pods.netns(2)
            a, err = h.add(container_id(1), a_ns, pod="a")
            assert err is None, err
            b, err = h.add(container_id(2), b_ns, pod="b")
            assert err is None, err
            a_ip = str(ipaddress.ip_interface(a["ips"][0]["address"]).ip)
            b_ip = str(ipaddress.ip_interface(b["ips"][0]["address"]).ip)
            tag = pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(container_id(2), "eth0")
            sw_b = next(i.sw_if_index for i in interfaces.dump(h.vpp) if i.tag == tag)

            ping = pods.exec(a_ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", b_ip)
            assert ping.returncode == 0, ping.stdout + ping.stderr
            assert " 0% packet loss" in ping.stdout

            import subprocess
            import sys
            server = subprocess.Popen(["ip", "netns", "exec", os.path.basename(b_ns), sys.executable, "-c",
                                       TCP_SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                import time
                time.sleep(0.5)
                client = pods.exec(a_ns, sys.executable, "-c", TCP_CLIENT, b_ip)
                assert client.returncode == 0, client.stderr
                # The server saw pod a's own address: routed, not NATed.
                assert client.stdout.strip() == f"pong:ping:{a_ip}"
            finally:
                server.wait(timeout=20)
            # The packets crossed VPP: pod b's VPP interface transmitted them.
            out = h.vpp.call("cli_inband", cmd=f"show interface {_name(h.vpp, sw_b)}").reply
            assert "tx packets" in out, out
            hw = h.vpp.call("cli_inband", cmd=f"show hardware-interfaces {_name(h.vpp, sw_b)}").reply
            assert f"Linux PACKET socket interface v{version}" in hw, hw

            assert h.delete(container_id(1), a_ns) is None
            assert h.delete(container_id(2), b_ns) is None
            assert host_links() == set()
    finally:
        pods.close()


def _name(vpp, sw_if_index: int) -> str:
    return next(i.name for i in interfaces.dump(vpp) if i.sw_if_index == sw_if_index)


def test_a_pod_reaches_a_cluster_ip_backed_by_another_pod() -> None:
    import subprocess
    import sys
    import time

    from testbed.fakekube import objects as k
    from testbed.wait import wait_for
    from vppagent.vpp import cnat

    pods = Pods()
    try:
        with running_agent(vpp_bin=os.environ["VPPAGENT_VPP_BIN"], VPPAGENT_SERVICES="true") as h:
            a_ns, b_ns = pods.netns(1), pods.netns(2)
            a, err = h.add(container_id(1), a_ns, pod="client")
            assert err is None, err
            b, err = h.add(container_id(2), b_ns, pod="server")
            assert err is None, err
            a_ip = str(ipaddress.ip_interface(a["ips"][0]["address"]).ip)
            b_ip = str(ipaddress.ip_interface(b["ips"][0]["address"]).ip)
            h.fake.add(k.service("web", cluster_ip="10.96.0.50", ports=[
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 7777}]))
            eps = k.endpointslice("web-a", service="web", addresses=[b_ip], port=7777)
            h.fake.add(eps)
            wait_for(lambda: any(str(t.vip.address) == "10.96.0.50" for t in cnat.dump_translations(h.vpp)),
                     10, "the ClusterIP translation")
            server = subprocess.Popen(["ip", "netns", "exec", os.path.basename(b_ns), sys.executable, "-c",
                                       TCP_SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(0.5)
                client = pods.exec(a_ns, sys.executable, "-c", TCP_CLIENT.replace("7777", "80"), "10.96.0.50")
                assert client.returncode == 0, client.stderr
                # Pod-to-service inside the cluster keeps the client's address.
                assert client.stdout.strip() == f"pong:ping:{a_ip}"
            finally:
                server.kill()
                server.wait(timeout=10)
            assert h.delete(container_id(1), a_ns) is None
            assert h.delete(container_id(2), b_ns) is None
    finally:
        pods.close()
