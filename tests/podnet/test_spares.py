"""Spare veth + af_packet pod interfaces (``vppagent/cni/pool.py``), end to end through the agent.

Checked where it lands: which VPP interface a pod gets (one made before the
ADD), the veth ends on the node and in the pod, what is left after DEL, a
failed ADD and a restart, and (with a real VPP) that pods on spares talk.
Also: a pod ADD recomputes the pod features only, not the services.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from testbed import payload
from testbed.emulator.handlers import feature as emu_feature
from testbed.podnet import Pods, container_id, host_links, running_agent, vpp_binary
from testbed.targets import emulator_and_private_vpp, real_vpp_reason
from testbed.wait import wait_for
from vppagent.cni import linux, pod_interface_kind, pool
from vppagent.vpp import af_packet, features, interfaces

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]

SPARES = {"VPPAGENT_POD_SPARE_INTERFACES": "3"}


@pytest.fixture
def pods():
    p = Pods()
    yield p
    p.close()


def spare_interfaces(vpp) -> dict[str, int]:
    """VPP's spare interfaces: host ifname -> sw_if_index."""
    return {i.tag[len(pool.TAG_PREFIX):]: i.sw_if_index for i in interfaces.dump(vpp)
            if i.tag.startswith(pool.TAG_PREFIX)}


def pod_interfaces(vpp) -> dict[str, int]:
    return {i.tag: i.sw_if_index for i in interfaces.dump(vpp) if i.tag.startswith(pod_interface_kind.TAG_PREFIX)}


def full_pool(h, n: int = 3) -> dict[str, int]:
    """Wait until the pool holds ``n`` ready spares and VPP has exactly them; return VPP's view."""
    wait_for(lambda: h.agent.pod_network.pool.counts() == (n, 0) and len(spare_interfaces(h.vpp)) == n,
             20, f"{n} spare interfaces")
    return spare_interfaces(h.vpp)


def test_an_add_takes_a_spare_and_the_pool_refills(pods: Pods) -> None:
    with running_agent(**SPARES) as h:
        spares = full_pool(h)
        assert host_links(pool.HOST_IFNAME) == set(spares)
        assert host_links(pool.SPARE_IFNAME) == {pool.parent_of(n) for n in spares}
        ns, cid = pods.netns(1), container_id(1)
        result, err = h.add(cid, ns, pod="web")
        assert err is None, err
        # The pod's VPP interface is one of the spares, re-tagged; its veth is that spare's.
        tag = pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(cid, "eth0")
        sw = pod_interfaces(h.vpp)[tag]
        host = next(name for name, idx in spares.items() if idx == sw)
        assert (sw, host) in {(a.sw_if_index, a.host_if_name) for a in af_packet.dump(h.vpp)}
        attachment = h.agent.pod_network.attachments()[0]
        assert attachment.host_ifname == host
        # The pod's interface: a macvlan made in the pod on the spare's other veth end.
        pod_link = json.loads(pods.exec(ns, "ip", "-d", "-j", "link", "show", "eth0").stdout)[0]
        assert pod_link["linkinfo"]["info_kind"] == "macvlan"
        parent = pool.parent_of(host)
        parent_index = json.loads(subprocess.run(["ip", "-j", "link", "show", parent], capture_output=True,
                                                 text=True, check=True).stdout)[0]["ifindex"]
        assert pod_link["link_index"] == parent_index
        assert result["interfaces"][result["ips"][0]["interface"]]["mac"] == pod_link["address"]
        assert attachment.pod_mac == pod_link["address"]
        # The macvlan's frames leave through the parent with its offloads (pod_offloads, the default):
        # TCP/UDP partial checksums kept as offload metadata for VPP, SCTP's off.
        offloads = linux.checksum_offloads("/proc/self/ns/net", parent)
        assert offloads.get("tx-checksum-ip-generic") is True and offloads.get("tx-checksum-sctp") is False, offloads
        assert result["interfaces"][0]["name"] == host

        # The pool makes a new spare once the CNI is idle; the pod's interface stays the pod's.
        after = full_pool(h)
        assert host not in after and len(set(after) - set(spares)) == 1
        assert pod_interfaces(h.vpp)[tag] == sw

        assert h.delete(cid, ns, pod="web") is None
        assert pod_interfaces(h.vpp) == {}
        assert host not in host_links(pool.HOST_IFNAME)
        assert sw not in {a.sw_if_index for a in af_packet.dump(h.vpp)}
        final = full_pool(h)
        assert host_links(pool.HOST_IFNAME) == set(final)
        assert host_links(pool.SPARE_IFNAME) == {pool.parent_of(n) for n in final}
        assert h.agent.pod_network.ipam.allocations() == {}


@pytest.mark.parametrize("vpp_bin", emulator_and_private_vpp())
def test_a_failed_add_on_a_spare_leaves_nothing(pods: Pods, vpp_bin: str | None) -> None:
    with running_agent(vpp_bin=vpp_bin, **SPARES) as h:
        full_pool(h)
        ns, cid = pods.netns(1), container_id(1)
        # The runtime's netns already has an eth0: making the pod's interface there fails.
        assert pods.exec(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other0").returncode == 0
        _, err = h.add(cid, ns, pod="web")
        assert err is not None and "eth0 already exists" in err.msg + err.details
        assert pod_interfaces(h.vpp) == {}
        assert h.agent.pod_network.ipam.allocations() == {}
        assert h.agent.pod_network.store.all() == []
        # The taken spare is deleted (VPP and veth), and a new one takes its place.
        final = full_pool(h)
        assert {a.host_if_name for a in af_packet.dump(h.vpp)} == set(final)
        assert host_links(pool.HOST_IFNAME) == set(final)
        assert len(host_links(pool.SPARE_IFNAME)) == 3


def test_a_pod_with_its_own_mtu_gets_a_new_interface(pods: Pods) -> None:
    from testbed import podnet as harness

    with running_agent(**SPARES) as h:
        spares = full_pool(h)
        ns, cid = pods.netns(1), container_id(1)
        req = h.request(cid, ns)
        req.config = json.dumps({**harness.NETCONF, "mtu": 1400}).encode()
        reply = h.stub().Add(req, timeout=30)
        assert not reply.HasField("error"), reply.error
        assert h.agent.pod_network.attachments()[0].host_ifname == pod_interface_kind.host_ifname(cid, "eth0")
        assert spare_interfaces(h.vpp) == spares  # untouched


def test_a_restarted_agent_replaces_the_spares_and_keeps_the_pods(pods: Pods, tmp_path) -> None:
    state = str(tmp_path / "state")
    ns, cid = pods.netns(1), container_id(1)
    with running_agent(state_dir=state, **SPARES) as h:
        full_pool(h)
        _, err = h.add(cid, ns, pod="web")
        assert err is None, err
        pod_host = h.agent.pod_network.attachments()[0].host_ifname
        old = full_pool(h)
    # The VPP (emulator) went with the first agent; the veths are the node's.
    assert host_links(pool.HOST_IFNAME) == set(old) | {pod_host}
    with running_agent(state_dir=state, **SPARES) as h:
        new = full_pool(h)
        assert not set(new) & set(old)
        assert host_links(pool.HOST_IFNAME) == set(new) | {pod_host}  # the old spares' veths are gone
        assert host_links(pool.SPARE_IFNAME) == {pool.parent_of(n) for n in set(new) | {pod_host}}
        assert h.agent.pod_network.attachments()[0].host_ifname == pod_host
        assert h.delete(cid, ns, pod="web") is None
    for name in host_links(pool.HOST_IFNAME):
        subprocess.run(["ip", "link", "del", name], check=False)


def test_a_pod_add_recomputes_the_pod_features_only(pods: Pods) -> None:
    with running_agent(VPPAGENT_SERVICES="true", **SPARES) as h:
        full_pool(h)
        services = next(f for f in h.agent.features if f.name == "services")
        calls = []
        original = services.desired
        services.desired = lambda cluster: (calls.append(1), original(cluster))[1]
        ns = pods.netns(1)
        _, err = h.add(container_id(1), ns, pod="web")
        assert err is None, err
        tag_key = pod_interface_kind.interface_name(container_id(1), "eth0")
        assert any(k.kind == pod_interface_kind.KIND and k.id == tag_key for k in h.agent.reconciler.desired)
        assert calls == []
        assert h.delete(container_id(1), ns, pod="web") is None
        assert not any(k.kind == pod_interface_kind.KIND for k in h.agent.reconciler.desired)
        assert calls == []


@pytest.mark.real_vpp
@pytest.mark.skipif(bool(real_vpp_reason()), reason=real_vpp_reason() or "")
def test_pods_on_spares_ping_through_a_real_vpp(pods: Pods) -> None:
    with running_agent(vpp_bin=vpp_binary(), **SPARES) as h:
        full_pool(h)
        a, b = pods.netns(1), pods.netns(2)
        ra, err = h.add(container_id(1), a, pod="a")
        assert err is None, err
        rb, err = h.add(container_id(2), b, pod="b")
        assert err is None, err
        spare_hosts = {x.host_ifname for x in h.agent.pod_network.attachments()}
        assert all(pool.HOST_IFNAME.fullmatch(n) for n in spare_hosts)
        ip_b = rb["ips"][0]["address"].split("/")[0]
        ping = pods.exec(a, "ping", "-c", "3", "-i", "0.2", "-W", "2", ip_b)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        # TCP, whose checksums the macvlans leave to their parents.
        import sys
        import time

        from testbed.netpods import TCP_CLIENT, TCP_SERVER
        server = subprocess.Popen(["ip", "netns", "exec", os.path.basename(b), sys.executable, "-c", TCP_SERVER],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            client = pods.exec(a, sys.executable, "-c", TCP_CLIENT, ip_b)
            assert client.returncode == 0, client.stderr
            assert client.stdout.strip() == f"pong:ping:{ra['ips'][0]['address'].split('/')[0]}"
        finally:
            server.wait(timeout=20)
        for n, ns in ((1, a), (2, b)):
            assert h.delete(container_id(n), ns) is None
        assert pod_interfaces(h.vpp) == {}
        final = full_pool(h)
        assert {x.host_if_name for x in af_packet.dump(h.vpp)} == set(final)


def _kept_for_vpp(feats: dict[str, str], *, udp: bool = True) -> None:
    """TCP's offloads on; what VPP 26.06 cannot take (UDP segmentation, fraglist GSO, SCTP's
    checksum) off.

    ``udp`` False for a macvlan: its UDP segmentation is fixed on, and its parent, whose
    features the kernel applies on the way out, has it off."""
    assert feats["tx-checksumming"] == "on" and feats["tcp-segmentation-offload"] == "on", feats
    assert feats["generic-segmentation-offload"] == "on", feats
    if udp:
        assert feats["tx-udp-segmentation"] == "off" and feats["tx-gso-list"] == "off", feats
        assert feats["tx-checksum-sctp"] == "off", feats


@pytest.mark.parametrize("spares", ["0", "3"], ids=["own-veth", "spare"])
def test_pod_offloads_keeps_tcp_offloads_and_turns_off_what_vpp_cannot_take(spares: str) -> None:
    pods = Pods()
    try:
        with running_agent(VPPAGENT_POD_SPARE_INTERFACES=spares, VPPAGENT_POD_OFFLOADS="true") as h:
            if spares != "0":
                full_pool(h)
            ns, cid = pods.netns(1), container_id(1)
            _, err = h.add(cid, ns, pod="web")
            assert err is None, err
            _kept_for_vpp(payload.ethtool_features(os.path.basename(ns), "eth0"), udp=spares == "0")
            # VPP side: kpod's IPv4 GSO fix-up is on the pod's interface
            tag = pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(cid, "eth0")
            sw = next(i.sw_if_index for i in interfaces.dump(h.vpp) if i.tag == tag)
            assert h.target is not None and h.target.emu is not None
            assert emu_feature.enabled(h.target.emu, sw) == {features.KPOD_GSO_FIX}
            if spares != "0":  # the macvlan's frames leave through its parent: the parent keeps them too
                parent = pool.parent_of(h.agent.pod_network.attachments()[0].host_ifname)
                _kept_for_vpp(payload.ethtool_features(None, parent))
            assert h.delete(cid, ns, pod="web") is None
    finally:
        pods.close()


@pytest.mark.parametrize("where", ["emulator", pytest.param("real", marks=pytest.mark.real_vpp)])
def test_pod_interfaces_are_polled_by_the_worker_owning_their_state(where: str, pods: Pods) -> None:
    """kpol and ksvc keep a pod interface's state on worker ``sw_if_index % workers``; the agent
    polls the interface there, so its packets need no handoff on input. The emulator runs two
    workers and starts every queue on the first; this machine's real VPP fits one worker, where
    the check is that placing keeps the interrupt mode."""
    if where == "real" and vpp_binary() is None:
        pytest.skip(real_vpp_reason())
    workers = 2 if where == "emulator" else 1
    with running_agent(vpp_bin=vpp_binary() if where == "real" else None, workers=workers,
                       VPPAGENT_POD_SPARE_INTERFACES="2") as h:
        full_pool(h, 2)
        sws, nss = [], {n: pods.netns(n) for n in range(1, 5)}
        for n in range(1, 5):  # two from spares, two made for the pod after the pool ran dry
            cid = container_id(n)
            _, err = h.add(cid, nss[n], pod=f"p{n}")
            assert err is None, err
            tag = pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(cid, "eth0")
            sws.append(next(i.sw_if_index for i in interfaces.dump(h.vpp) if i.tag == tag))
        assert len({sw % 2 for sw in sws}) == 2 or workers == 1, sws  # both workers are owners
        for sw in sws:
            assert interfaces.rx_queues(h.vpp, sw) == [
                interfaces.RxQueue(0, 1 + sw % workers, interfaces.RxMode.INTERRUPT)], sw
        for n in range(1, 5):
            assert h.delete(container_id(n), nss[n], pod=f"p{n}") is None
