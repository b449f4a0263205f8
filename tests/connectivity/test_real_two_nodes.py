"""Two real VPPs, one pod behind each: pods ping and talk TCP across the nodes in every mode, and
the underlay carries ESP / WireGuard (never the pods' payload) when the pair is encrypted.

The pods keep their offloads (TSO, GSO, TX checksum), as with the agent's ``pod_offloads``, and
VPP loads our kpod plugin: 8 MB of TCP and UDP datagrams up to beyond the MTU arrive whole in
every mode, with no checksum error in the receiving pod and no drop in either VPP.

Skipped, with the reason, without VPPAGENT_VPP_BIN or root.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from testbed import payload, plugins
from testbed.netpods import TCP_CLIENT, TCP_SERVER
from testbed.realnet import RealTopology, UplinkCapture, have_real_vpp, wait_until
from testbed.targets import api_dir
from tests.connectivity.conftest import Clock, ClusterView, Side, _feature, _reconciler, make_node
from vppagent.vpp import ipsec

pytestmark = [pytest.mark.real_vpp, pytest.mark.netns,
              pytest.mark.skipif(have_real_vpp() is not None, reason=have_real_vpp() or "")]

MARKER = "5ec7e7da7a5ec7e7"  # ping -p pattern: 8 bytes the pods send, never to be seen in clear


@pytest.fixture(scope="module")
def topo():
    import os
    try:
        kpod = plugins.plugin_dirs("kpod")
    except plugins.Unavailable as e:
        pytest.skip(f"the kpod plugin cannot be built here: {e}")
    t = RealTopology(api_dir(), os.environ["VPPAGENT_VPP_BIN"], plugin_dirs=kpod, pod_gso_fix=True).start()
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def agents(topo, tmp_path):
    made: list[Side] = []

    def make(mode: str, **annotations: str) -> tuple[list[Side], ClusterView]:
        clock = Clock()
        cluster = ClusterView({n: make_node(n, **annotations) for n in ("node-a", "node-b")})
        for name in ("node-a", "node-b"):
            node = topo.nodes[name]
            feature = _feature(name, tmp_path, mode, clock, real=True)
            made.append(Side(name, None, node.vpp, feature, _reconciler(node.vpp, feature)))
        return made[-2:], cluster

    yield make
    for side in made:  # remove everything the agents made
        side.rec.set_desired([])
        side.rec.converge()


def program(sides, cluster) -> None:
    import dataclasses

    from tests.connectivity.conftest import GATEWAY
    from vppagent.model.k8s.fields import FrozenMap
    from vppagent.reconcile import Intent
    from vppagent.kinds.loopback_kind import KIND as LOOPBACK_KIND
    for _ in range(2):  # compute, publish keys, compute again
        for s in sides:
            intents, problems = s.feature.desired(cluster)
            s.rec.set_desired([Intent(LOOPBACK_KIND, GATEWAY, None)] + intents)
            s.rec.converge()
            assert not s.rec.failures, {str(k): str(f.error) for k, f in s.rec.failures.items()}
        for s in sides:
            node = cluster.nodes[s.name]
            ann = dict(node.annotations)
            ann.update(s.feature.annotations())
            cluster.nodes[s.name] = dataclasses.replace(node, annotations=FrozenMap(ann))


def ping(topo, count: int = 5):
    return topo.exec("node-a", "ping", "-c", str(count), "-i", "0.2", "-W", "2", "-p", MARKER,
                     topo.nodes["node-b"].pod_ip)


def tcp(topo) -> str:
    b_ns = topo.nodes["node-b"].pod_ns
    server = subprocess.Popen(["ip", "netns", "exec", b_ns, sys.executable, "-c", TCP_SERVER],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        client = topo.exec("node-a", sys.executable, "-c", TCP_CLIENT, topo.nodes["node-b"].pod_ip)
        assert client.returncode == 0, client.stderr
        return client.stdout.strip()
    finally:
        server.wait(timeout=20)


@pytest.mark.parametrize("mode,encryption,proto", [
    ("flat", "none", 1), ("ipip", "none", 4), ("vxlan", "none", 17),
    ("ipip", "ipsec", 50), ("ipip", "wireguard", 17),
])
def test_pods_talk_across_nodes(topo, agents, mode, encryption, proto):
    sides, cluster = agents(mode, encryption=encryption)
    program(sides, cluster)
    assert sides[0].feature.pairs == {"node-b": encryption}
    # The first packets wait for ARP (pod and underlay) and, for WireGuard, the handshake.
    assert wait_until(lambda: topo.exec("node-a", "ping", "-c", "1", "-W", "1",
                                        topo.nodes["node-b"].pod_ip).returncode == 0, timeout=15), \
        f"pods never reached each other ({mode}, {encryption})"
    links = [n.uplink for n in topo.nodes.values()]
    with UplinkCapture(links) as cap:
        p = ping(topo)
        assert p.returncode == 0 and " 0% packet loss" in p.stdout, p.stdout + p.stderr
        assert tcp(topo) == f"pong:ping:{topo.nodes['node-a'].pod_ip}"
    protos = cap.ip_protocols()
    assert protos.get(proto, 0) >= 10, protos
    if encryption != "none":
        assert 1 not in protos and 6 not in protos, protos  # no ICMP or TCP in clear
        assert not cap.contains(bytes.fromhex(MARKER)), "pod payload seen in clear on the underlay"
    if encryption == "wireguard":
        assert 51820 in cap.udp_ports()
    assert_payload_whole(topo)
    if encryption == "wireguard":
        # kpod completed the pods' checksums that WireGuard would have sealed in unfinished
        shown = topo.nodes["node-a"].vpp.call("cli_inband", cmd="show errors").reply
        assert re.search(r"[1-9]\d*\s+kpod-csum-ip4\s+offloaded checksums", shown), shown


def assert_payload_whole(topo) -> None:
    a, b = topo.nodes["node-a"], topo.nodes["node-b"]
    errors = payload.csum_errors(b.pod_ns)
    with payload.vpp_drops(a.vpp, "a") as a_drops, payload.vpp_drops(b.vpp, "b") as b_drops:
        # 3000 and 8000 bytes: beyond the pods' 1400-byte MTU, sent as IP fragments.
        for proto in ("tcp", "udp"):
            sent, got = payload.exchange(a.pod_ns, b.pod_ns, proto, b.pod_ip, bind=b.pod_ip, port=7070,
                                         udp_sizes=(200, 1300, 3000, 8000))
            assert sent == got, (proto, sent[:80], got[:80])
    assert payload.csum_errors(b.pod_ns) == errors
    assert (a_drops, b_drops) == ([], []), (a_drops[:5], b_drops[:5])


def test_ipsec_rekey_under_traffic_loses_nothing(topo, agents):
    """An epoch rekey (make before break) under a 100 Hz ping: not one packet lost."""
    sides, cluster = agents("ipip", encryption="ipsec")
    program(sides, cluster)
    assert wait_until(lambda: topo.exec("node-a", "ping", "-c", "1", "-W", "1",
                                        topo.nodes["node-b"].pod_ip).returncode == 0, timeout=15)
    ping = subprocess.Popen(["ip", "netns", "exec", topo.nodes["node-a"].pod_ns, "ping", "-i", "0.01", "-c", "500",
                             "-W", "1", topo.nodes["node-b"].pod_ip], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        spis_before = {s.spi for s in ipsec.dump_sas(topo.nodes["node-a"].vpp)}
        sides[1].feature._epochs.advance()  # node-b's lifetime is up
        clock = sides[0].feature._clock
        for step in (0, 5, 30):  # add inbound, switch outbound, drop the old inbound
            clock.now += step
            program(sides, cluster)
            time.sleep(1.0)
        spis_after = {s.spi for s in ipsec.dump_sas(topo.nodes["node-a"].vpp)}
        out, _ = ping.communicate(timeout=30)
    finally:
        if ping.poll() is None:
            ping.kill()
    assert spis_after and not (spis_after & spis_before)  # really rekeyed
    assert " 0% packet loss" in out, out[-300:]
