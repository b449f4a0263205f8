"""NetworkPolicy enforced on pods attached through the CNI backend, with a real VPP and real TCP.

Three pods in their own netns on this node: ``srv`` (namespace default,
app=srv), ``c1`` (namespace web, team=web) and ``c2`` (namespace other). A
policy lets TCP 7777 into srv from team=web namespaces only. c1 connects and
gets the reply; c2 times out and the plugin's counters say default deny;
then namespace other gets team=web and c2 connects, with no policy message
sent by the agent (set membership only). A second policy isolates srv's
egress with no rule, so its replies pass only as part of an admitted
connection (the backend's per-flow state). Run with the kpol plugin
(``testbed.plugins``) and on stock VPP (the ACL fallback), each with VPP's
main thread only and with a worker beside it: then srv is polled by the main
thread and the clients by the worker, so every connection's request and reply
are received on different threads (asserted).

The node's own traffic: a netns holding the node's InternalIP stands in for
the host network namespace (the agent itself makes no host-to-pod path yet),
attached to VPP as a pod is; it reaches the isolated srv from the node's
address, not from another address on the same link, and follows a change of
the Node's InternalIP.
"""
from __future__ import annotations

import ipaddress
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from testbed import netpods, plugins, targets, threads
from testbed.agent_runner import NODE
from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from testbed.podnet import AgentHandle, Pods, container_id, host_links, running_agent
from testbed.wait import wait_for
from vppagent.policy.feature import PolicyFeature
from vppagent.cni import pod_interface_kind
from vppagent.kinds import loopback_kind
from vppagent.vpp import acl, interfaces, kpol

pytestmark = [pytest.mark.real_vpp, pytest.mark.netns]

PORT = 7777
_SERVER = f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT})); s.listen(8); s.settimeout(60)
while True:
    c, peer = s.accept(); data = c.recv(100)
    if data == b"quit":
        break
    c.sendall(b"pong:" + peer[0].encode()); c.close()
"""
_CLIENT = f"""
import socket, sys
try:
    src = (sys.argv[4], 0) if len(sys.argv) > 4 else None
    c = socket.create_connection((sys.argv[1], {PORT}), timeout=float(sys.argv[2]), source_address=src)
    c.sendall(sys.argv[3].encode()); print(c.recv(100).decode())
except socket.timeout:
    print("timeout"); sys.exit(3)
"""


@contextmanager
def _policy_agent(with_kpol: bool, workers: int) -> Iterator[tuple[AgentHandle, PolicyFeature]]:
    fake = FakeKube(bookmark_interval=0.2)
    with fake:
        fake.add(k.node(NODE, pod_cidrs=["10.244.1.0/24"], internal_ip="192.168.0.1"))
        for ns, labels in (("default", {}), ("web", {"team": "web"}), ("other", {})):
            fake.add(k.namespace(ns, labels=labels))
        with running_agent(vpp_bin=targets.vpp_binary(), fake=fake, VPPAGENT_POLICIES="true", workers=workers,
                           plugin_dirs=plugins.plugin_dirs("kpol") if with_kpol else ()) as h:
            policy = next(f for f in h.agent.features if f.name == "policies")
            assert isinstance(policy, PolicyFeature)
            yield h, policy


def _connect(pods: Pods, netns: str, ip: str, timeout: float, msg: str = "ping") -> str:
    r = pods.exec(netns, sys.executable, "-c", _CLIENT, ip, str(timeout), msg, timeout=timeout + 15)
    return r.stdout.strip() or r.stderr.strip()


def _connect_from(netns: str, ip: str, src: str, timeout: float) -> str:
    r = netpods.exec_in(netns, sys.executable, "-c", _CLIENT, ip, str(timeout), "ping", src, timeout=timeout + 15)
    return r.stdout.strip() or r.stderr.strip()


def _sw_if_index(h: AgentHandle, n: int) -> int:
    tag = pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(container_id(n), "eth0")
    return next(i.sw_if_index for i in interfaces.dump(h.vpp) if i.tag == tag)


@pytest.mark.parametrize("backend,workers", [("kpol", 0), ("acl", 0), ("kpol", 1), ("acl", 1)],
                         ids=["kpol", "acl", "kpol-two-threads", "acl-two-threads"])
def test_policy_allows_denies_and_follows_namespace_labels(backend: str, workers: int) -> None:
    targets.require_real_vpp(private=True)
    pods = Pods()
    try:
        with _policy_agent(backend == "kpol", workers) as (h, feature):
            ips = {}
            nss = {}
            for n, (name, ns, labels) in enumerate((("srv", "default", {"app": "srv"}), ("c1", "web", {}),
                                                     ("c2", "other", {})), start=1):
                nss[name] = pods.netns(n)
                res, err = h.add(container_id(n), nss[name], pod=name, namespace=ns)
                assert err is None, err
                ips[name] = str(ipaddress.ip_interface(res["ips"][0]["address"]).ip)
                h.fake.add(k.pod(name, ns, node=NODE, ips=[ips[name]], labels=labels))
            sw = {name: _sw_if_index(h, n) for n, name in enumerate(("srv", "c1", "c2"), start=1)}
            placed = {"srv": threads.MAIN, "c1": 1 if workers else threads.MAIN, "c2": 1 if workers else threads.MAIN}
            for name, thread in placed.items():
                if workers:
                    threads.place(h.vpp, sw[name], thread)
            assert {name: threads.thread_of(h.vpp, i) for name, i in sw.items()} == placed
            h.fake.add(k.network_policy("allow-web", "default", pod_selector={"matchLabels": {"app": "srv"}},
                                        ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}],
                                                  "ports": [{"protocol": "TCP", "port": PORT}]}]))
            h.fake.add(k.network_policy("no-egress", "default", pod_selector={"matchLabels": {"app": "srv"}},
                                        policy_types=["Egress"], egress=[]))

            def programmed() -> bool:
                if backend == "kpol":
                    sets = kpol.dump_ipsets(h.vpp)
                    return bool(kpol.attachments(h.vpp)) and any(
                        str(m.addr) == ips["c1"] for s in sets for m in s.members) and any(
                        p.ingress_isolated and p.egress_isolated for p in kpol.dump_policies(h.vpp))
                return any(b.output and b.input for b in acl.interface_acls(h.vpp))

            wait_for(programmed, 20, "the policy to be programmed")
            assert feature.backend() == backend
            server = subprocess.Popen(["ip", "netns", "exec", Path(nss["srv"]).name, sys.executable, "-c",
                                       _SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(0.5)
                # allowed, and the reply passes
                assert _connect(pods, nss["c1"], ips["srv"], 5) == f"pong:{ips['c1']}"
                # denied: the SYN is dropped, the connect times out
                assert _connect(pods, nss["c2"], ips["srv"], 2) == "timeout"
                if backend == "kpol":
                    denied = [c.packets for c in feature.rule_counts() if c.rule_index == -1]
                    allowed = [c for c in feature.rule_counts() if c.rule_index == 0]
                    assert sum(denied) >= 1, feature.rule_counts()
                    assert allowed and allowed[0].packets >= 1 and allowed[0].rule.policy.name == "allow-web"

                # namespace other joins team=web: membership only
                before = h.agent.vpp.calls.copy()
                h.fake.modify(k.namespace("other", labels={"team": "web"}))

                def c2_member() -> bool:
                    if backend == "kpol":
                        return any(str(m.addr) == ips["c2"] for s in kpol.dump_ipsets(h.vpp) for m in s.members)
                    return any(str(r.src) == f"{ips['c2']}/32" for a in acl.dump_acls(h.vpp) for r in a.rules)

                wait_for(c2_member, 20, "c2 to join the allowed set")
                sent = h.agent.vpp.calls - before
                if backend == "kpol":
                    assert sent["kpol_policy_set"] == 0 and sent["kpol_ipset_add"] == 0, sent
                    assert sent["kpol_ipset_members_add_del"] >= 1
                assert _connect(pods, nss["c2"], ips["srv"], 5) == f"pong:{ips['c2']}"
            finally:
                server.kill()
                server.wait(timeout=20)
            for n, name in enumerate(("srv", "c1", "c2"), start=1):
                assert h.delete(container_id(n), nss[name], pod=name) is None
            assert host_links() == set()
    finally:
        pods.close()


@pytest.mark.parametrize("backend", ["kpol", "acl"])
def test_isolated_pod_admits_its_own_node(backend: str) -> None:
    targets.require_real_vpp(private=True)
    pods = Pods()
    try:
        with _policy_agent(backend == "kpol", 0) as (h, feature), ExitStack() as stack:
            ns = pods.netns(1)
            res, err = h.add(container_id(1), ns, pod="srv", namespace="default")
            assert err is None, err
            srv = str(ipaddress.ip_interface(res["ips"][0]["address"]).ip)
            h.fake.add(k.pod("srv", "default", node=NODE, ips=[srv], labels={"app": "srv"}))
            h.fake.add(k.network_policy("allow-web", "default", pod_selector={"matchLabels": {"app": "srv"}},
                                        ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}],
                                                  "ports": [{"protocol": "TCP", "port": PORT}]}]))
            h.fake.add(k.network_policy("no-egress", "default", pod_selector={"matchLabels": {"app": "srv"}},
                                        policy_types=["Egress"], egress=[]))
            # The host side: the node's InternalIP (192.168.0.1, _policy_agent's Node) and another address.
            gateway = next(i.sw_if_index for i in interfaces.dump(h.vpp)
                           if i.tag == loopback_kind.TAG_PREFIX + pod_interface_kind.GATEWAY_NAME)
            host_ns = f"vpa-host-{container_id(1)[:6]}"
            netpods.pod(h.vpp, stack, host_ns, f"vph{container_id(1)[:6]}", ["192.168.0.1", "192.168.0.9"],
                        loopback=gateway, tag="test-host")

            def node_member(addr: str) -> bool:
                if backend == "kpol":
                    return any(str(m.addr) == addr for s in kpol.dump_ipsets(h.vpp) for m in s.members)
                return any(str(r.src) == f"{addr}/32" for a in acl.dump_acls(h.vpp) for r in a.rules)

            wait_for(lambda: node_member("192.168.0.1"), 20, "the node's address in the policy")
            assert feature.backend() == backend
            server = subprocess.Popen(["ip", "netns", "exec", Path(ns).name, sys.executable, "-c", _SERVER],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(0.5)
                assert _connect_from(host_ns, srv, "192.168.0.1", 5) == "pong:192.168.0.1"
                assert _connect_from(host_ns, srv, "192.168.0.9", 2) == "timeout"
                # the Node's address changes: the policy follows it
                h.fake.modify(k.node(NODE, pod_cidrs=["10.244.1.0/24"], internal_ip="192.168.0.9"))
                wait_for(lambda: node_member("192.168.0.9") and not node_member("192.168.0.1"), 20,
                         "the node's new address in the policy")
                assert _connect_from(host_ns, srv, "192.168.0.9", 5) == "pong:192.168.0.9"
                assert _connect_from(host_ns, srv, "192.168.0.1", 2) == "timeout"
                if backend == "kpol":
                    by_origin = {str(c.rule.policy): c.packets for c in feature.rule_counts() if c.rule is not None}
                    assert by_origin[f"Node {NODE}"] >= 2, feature.rule_counts()
            finally:
                server.kill()
                server.wait(timeout=20)
            assert h.delete(container_id(1), ns, pod="srv") is None
    finally:
        pods.close()
