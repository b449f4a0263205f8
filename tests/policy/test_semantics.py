"""NetworkPolicy semantics, table-driven from the Kubernetes documentation's examples.

Each case installs policies into one small cluster (dual-stack pods on this
node "n1", one pod on "n2"; the nodes' own addresses in ``NODES``), then checks verdicts on new flows
(src -> dst:port/proto must pass src's egress and dst's ingress).
"""
from __future__ import annotations

from ipaddress import ip_address

import pytest

from vppagent.model.k8s import ObjectKey

from .evaluator import SOURCE
from .world import World, np

NAMESPACES = {
    "default": {},
    "myproject": {"project": "myproject"},
    "other": {"project": "other"},
    "alice-ns": {"user": "alice"},
    "bob-ns": {"user": "bob"},
}

# ref: (labels, last octet / hextet, named ports, node)
PODS = {
    "default/db": ({"role": "db"}, 10, {"redis": 6379}, "n1"),
    "default/frontend": ({"role": "frontend"}, 11, {}, "n1"),
    "default/web1": ({"app": "web"}, 12, {"http": 8080, "dns": ("UDP", 53)}, "n1"),
    "default/web2": ({"app": "web"}, 13, {"http": 9090}, "n1"),
    "default/plain": ({}, 14, {"http": 8080}, "n1"),
    "default/remote": ({"role": "frontend"}, 15, {}, "n2"),
    "myproject/any": ({"app": "x"}, 20, {}, "n1"),
    "other/frontend": ({"role": "frontend"}, 30, {}, "n1"),
    "alice-ns/client": ({"role": "client"}, 40, {}, "n1"),
    "alice-ns/server": ({"role": "server"}, 41, {}, "n1"),
    "bob-ns/client": ({"role": "client"}, 50, {}, "n1"),
}


# name: InternalIPs
NODES = {"n1": ("192.168.0.1", "fd00:10::1"), "n2": ("192.168.0.2", "fd00:10::2")}


def build() -> World:
    w = World()
    for name, ips in NODES.items():
        w.node(name, *ips)
    for name, labels in NAMESPACES.items():
        w.namespace(name, **labels)
    for ref, (labels, n, ports, node) in PODS.items():
        w.pod(ref, labels, (f"10.244.0.{n}", f"fd00:244::{n:x}"), node=node, ports=ports)
    return w


TEST_NETWORK_POLICY = np("default", "test-network-policy", {
    "podSelector": {"matchLabels": {"role": "db"}},
    "policyTypes": ["Ingress", "Egress"],
    "ingress": [{
        "from": [
            {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
            {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
            {"podSelector": {"matchLabels": {"role": "frontend"}}},
        ],
        "ports": [{"protocol": "TCP", "port": 6379}],
    }],
    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 5978}]}],
})

# (src, dst, port, proto, family, allowed)
CASES = [
    pytest.param([], [
        ("default/frontend", "default/db", 6379, "TCP", 4, True),
        ("8.8.8.8", "default/db", 1, "UDP", 4, True),
        ("default/db", "1.1.1.1", 443, "TCP", 4, True),
    ], id="no-policy-allows-all"),
    pytest.param([TEST_NETWORK_POLICY], [
        ("default/frontend", "default/db", 6379, "TCP", 4, True),
        ("default/frontend", "default/db", 6379, "TCP", 6, True),
        ("default/frontend", "default/db", 6380, "TCP", 4, False),
        ("default/frontend", "default/db", 6379, "UDP", 4, False),
        ("default/remote", "default/db", 6379, "TCP", 4, True),  # pod on another node: set member
        ("myproject/any", "default/db", 6379, "TCP", 4, True),
        ("other/frontend", "default/db", 6379, "TCP", 4, False),  # podSelector alone: own namespace
        ("default/web1", "default/db", 6379, "TCP", 4, False),
        ("172.17.0.5", "default/db", 6379, "TCP", 4, True),
        ("172.17.1.5", "default/db", 6379, "TCP", 4, False),  # except
        ("172.18.0.5", "default/db", 6379, "TCP", 4, False),
        ("default/db", "10.0.0.5", 5978, "TCP", 4, True),
        ("default/db", "10.0.0.5", 5979, "TCP", 4, False),
        ("default/db", "10.0.1.5", 5978, "TCP", 4, False),
        ("default/db", "default/frontend", 80, "TCP", 4, False),  # egress isolated
        ("default/frontend", "default/web1", 80, "TCP", 4, True),  # web1 not selected
    ], id="docs-test-network-policy"),
    pytest.param([np("default", "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})], [
        ("default/frontend", "default/db", 6379, "TCP", 4, False),
        ("myproject/any", "default/web1", 8080, "TCP", 6, False),
        ("default/web1", "myproject/any", 80, "TCP", 4, True),  # egress not isolated, target in other ns
        ("8.8.8.8", "default/db", 0, "ICMP", 4, False),
        ("other/frontend", "alice-ns/server", 80, "TCP", 4, True),  # other namespaces unaffected
    ], id="docs-default-deny-ingress"),
    pytest.param([np("default", "allow-all-ingress", {"podSelector": {}, "ingress": [{}]})], [
        ("8.8.8.8", "default/db", 1234, "UDP", 4, True),
        ("other/frontend", "default/db", 0, "ICMP", 4, True),
        ("2001:db8::1", "default/db", 22, "TCP", 6, True),
    ], id="docs-allow-all-ingress"),
    pytest.param([np("default", "default-deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})], [
        ("default/db", "8.8.8.8", 53, "UDP", 4, False),
        ("default/db", "default/frontend", 80, "TCP", 4, False),
        ("myproject/any", "default/db", 6379, "TCP", 4, True),  # ingress not isolated
    ], id="docs-default-deny-egress"),
    pytest.param([np("default", "allow-all-egress", {"podSelector": {}, "egress": [{}],
                                                      "policyTypes": ["Egress"]})], [
        ("default/db", "8.8.8.8", 53, "UDP", 4, True),
        ("default/db", "2001:db8::1", 443, "TCP", 6, True),
    ], id="docs-allow-all-egress"),
    pytest.param([np("default", "default-deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})], [
        ("default/db", "8.8.8.8", 53, "UDP", 4, False),
        ("8.8.8.8", "default/db", 53, "UDP", 4, False),
        ("default/db", "default/frontend", 80, "TCP", 4, False),
        ("alice-ns/client", "alice-ns/server", 80, "TCP", 4, True),
    ], id="docs-default-deny-all"),
    pytest.param([np("alice-ns", "and", {"podSelector": {"matchLabels": {"role": "server"}}, "ingress": [{
        "from": [{"namespaceSelector": {"matchLabels": {"user": "alice"}},
                  "podSelector": {"matchLabels": {"role": "client"}}}]}]})], [
        ("alice-ns/client", "alice-ns/server", 80, "TCP", 4, True),
        ("bob-ns/client", "alice-ns/server", 80, "TCP", 4, False),
        ("default/frontend", "alice-ns/server", 80, "TCP", 4, False),
    ], id="docs-namespace-and-pod-selector-one-peer"),
    pytest.param([np("alice-ns", "or", {"podSelector": {"matchLabels": {"role": "server"}}, "ingress": [{
        "from": [{"namespaceSelector": {"matchLabels": {"user": "alice"}}},
                 {"podSelector": {"matchLabels": {"role": "client"}}}]}]})], [
        ("alice-ns/client", "alice-ns/server", 80, "TCP", 4, True),
        ("bob-ns/client", "alice-ns/server", 80, "TCP", 4, False),  # role=client, but only in alice-ns
        ("default/frontend", "alice-ns/server", 80, "TCP", 4, False),
    ], id="docs-namespace-or-pod-selector-two-peers"),
    pytest.param([np("alice-ns", "or-any-ns", {"podSelector": {"matchLabels": {"role": "server"}}, "ingress": [{
        "from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}]}]})], [
        ("bob-ns/client", "alice-ns/server", 80, "TCP", 6, True),  # empty nsSelector: all namespaces
        ("alice-ns/client", "alice-ns/server", 80, "TCP", 4, True),
        ("default/frontend", "alice-ns/server", 80, "TCP", 4, False),
    ], id="empty-namespace-selector-all-namespaces"),
    pytest.param([np("alice-ns", "all-in-any-ns", {"podSelector": {}, "ingress": [{
        "from": [{"namespaceSelector": {}}]}]})], [
        ("bob-ns/client", "alice-ns/server", 80, "TCP", 4, True),
        ("default/remote", "alice-ns/server", 80, "TCP", 4, True),
        ("8.8.8.8", "alice-ns/server", 80, "TCP", 4, False),  # not a pod
    ], id="namespace-selector-empty-alone-all-pods"),
    pytest.param([np("default", "end-port", {"podSelector": {"matchLabels": {"role": "db"}},
                                              "policyTypes": ["Egress"], "egress": [{
        "to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
        "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}]}]})], [
        ("default/db", "10.0.0.9", 32000, "TCP", 4, True),
        ("default/db", "10.0.0.9", 32768, "TCP", 4, True),
        ("default/db", "10.0.0.9", 32500, "TCP", 4, True),
        ("default/db", "10.0.0.9", 31999, "TCP", 4, False),
        ("default/db", "10.0.0.9", 32769, "TCP", 4, False),
        ("default/db", "10.0.0.9", 32500, "UDP", 4, False),
    ], id="docs-end-port"),
    pytest.param([np("default", "named-ingress", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{
        "ports": [{"port": "http"}]}]})], [
        ("default/frontend", "default/web1", 8080, "TCP", 4, True),
        ("default/frontend", "default/web1", 9090, "TCP", 4, False),
        ("default/frontend", "default/web2", 9090, "TCP", 6, True),  # resolved per target pod
        ("default/frontend", "default/web2", 8080, "TCP", 4, False),
        ("default/frontend", "default/web1", 8080, "UDP", 4, False),
    ], id="named-port-ingress-per-target-pod"),
    pytest.param([np("default", "named-ingress-udp", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{
        "ports": [{"port": "dns", "protocol": "UDP"}]}]})], [
        ("default/frontend", "default/web1", 53, "UDP", 4, True),
        ("default/frontend", "default/web1", 53, "TCP", 4, False),
        ("default/frontend", "default/web2", 53, "UDP", 4, False),  # web2 has no port "dns": nothing
    ], id="named-port-ingress-missing-matches-nothing"),
    pytest.param([np("default", "named-egress", {"podSelector": {"matchLabels": {"role": "frontend"}},
                                                  "policyTypes": ["Egress"], "egress": [{
        "to": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": "http"}]}]})], [
        ("default/frontend", "default/web1", 8080, "TCP", 4, True),
        ("default/frontend", "default/web2", 9090, "TCP", 4, True),  # resolved per peer pod
        ("default/frontend", "default/web2", 9090, "TCP", 6, True),
        ("default/frontend", "default/web2", 8080, "TCP", 4, False),
        ("default/frontend", "default/plain", 8080, "TCP", 4, False),  # has "http" but not selected
        ("default/frontend", "default/web1", 8080, "UDP", 4, False),
    ], id="named-port-egress-per-peer-pod"),
    pytest.param([np("default", "named-egress-any", {"podSelector": {"matchLabels": {"role": "frontend"}},
                                                      "policyTypes": ["Egress"], "egress": [{
        "ports": [{"port": "http"}, {"port": 443}]}]})], [
        ("default/frontend", "default/plain", 8080, "TCP", 4, True),  # no peers: any pod with "http"
        ("default/frontend", "default/web2", 9090, "TCP", 4, True),
        ("default/frontend", "default/web2", 8080, "TCP", 4, False),
        ("default/frontend", "8.8.8.8", 443, "TCP", 4, True),  # numeric port: any peer
        ("default/frontend", "8.8.8.8", 8080, "TCP", 4, False),  # not a pod: no named ports
    ], id="named-and-numeric-port-egress-no-peers"),
    pytest.param([np("default", "implicit-types", {"podSelector": {"matchLabels": {"role": "db"}},
                                                    "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})], [
        ("default/db", "8.8.8.8", 53, "UDP", 4, True),
        ("default/db", "8.8.8.8", 53, "TCP", 4, False),  # egress isolated: egress rules present
        ("default/frontend", "default/db", 6379, "TCP", 4, False),  # ingress always isolated
    ], id="policy-types-absent-egress-rules-present"),
    pytest.param([np("default", "implicit-ingress", {"podSelector": {"matchLabels": {"role": "db"}},
                                                      "ingress": [{"from": [{"podSelector": {}}]}]})], [
        ("default/frontend", "default/db", 6379, "TCP", 4, True),
        ("other/frontend", "default/db", 6379, "TCP", 4, False),
        ("default/db", "8.8.8.8", 53, "UDP", 4, True),  # egress not isolated
    ], id="policy-types-absent-ingress-only"),
    pytest.param([np("default", "egress-type-only", {"podSelector": {"matchLabels": {"role": "db"}},
                                                      "policyTypes": ["Egress"],
                                                      "ingress": [{"from": [{"ipBlock": {"cidr": "1.2.3.0/24"}}]}]})], [
        ("8.8.8.8", "default/db", 6379, "TCP", 4, True),  # ingress rules ignored: not isolated
        ("default/db", "8.8.8.8", 53, "UDP", 4, False),
    ], id="policy-types-egress-only-ignores-ingress"),
    pytest.param([np("default", "ingress-empty-list", {"podSelector": {"matchLabels": {"role": "db"}},
                                                        "ingress": []})], [
        ("default/frontend", "default/db", 6379, "TCP", 4, False),
    ], id="ingress-empty-list-denies"),
    pytest.param([np("default", "a", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{
        "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}),
        np("default", "b", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{
            "from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 6379}]}]})], [
        ("default/frontend", "default/db", 1, "TCP", 4, True),
        ("default/web1", "default/db", 6379, "TCP", 4, True),
        ("default/web1", "default/db", 6380, "TCP", 4, False),
        ("default/plain", "default/db", 6379, "TCP", 4, False),
    ], id="union-of-policies"),
    pytest.param([np("default", "protocols", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{
        "ports": [{"protocol": "UDP"}, {"protocol": "SCTP", "port": 9}]}]})], [
        ("8.8.8.8", "default/db", 4444, "UDP", 4, True),
        ("8.8.8.8", "default/db", 9, "SCTP", 4, True),
        ("8.8.8.8", "default/db", 10, "SCTP", 4, False),
        ("8.8.8.8", "default/db", 9, "TCP", 4, False),
        ("8.8.8.8", "default/db", 0, "ICMP", 4, False),  # ports listed: ICMP never matches
    ], id="protocols-and-port-less-ports"),
    pytest.param([np("default", "icmp", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{
        "from": [{"ipBlock": {"cidr": "8.8.8.0/24"}}]}]})], [
        ("8.8.8.8", "default/db", 0, "ICMP", 4, True),  # no ports: every protocol
        ("9.9.9.9", "default/db", 0, "ICMP", 4, False),
    ], id="no-ports-allows-icmp"),
    pytest.param([np("default", "v6-block", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{
        "from": [{"ipBlock": {"cidr": "2001:db8::/32", "except": ["2001:db8:1::/48"]}},
                 {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]})], [
        ("2001:db8::5", "default/db", 80, "TCP", 6, True),
        ("2001:db8:1::5", "default/db", 80, "TCP", 6, False),
        ("2001:db9::5", "default/db", 80, "TCP", 6, False),
        ("8.8.8.8", "default/db", 80, "TCP", 4, True),
        ("default/frontend", "default/db", 80, "TCP", 4, False),  # 10.244.0.11 is in the except
        ("default/frontend", "default/db", 80, "TCP", 6, False),  # fd00:: not in the v6 block
    ], id="ip-block-v6-and-v4-except"),
    pytest.param([np("default", "exprs", {"podSelector": {"matchExpressions": [
        {"key": "role", "operator": "In", "values": ["db", "frontend"]}]}, "ingress": [{
        "from": [{"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"},
                                                        {"key": "app", "operator": "NotIn", "values": ["x"]}]}},
                 {"namespaceSelector": {"matchExpressions": [
                     {"key": "user", "operator": "DoesNotExist"},
                     {"key": "project", "operator": "In", "values": ["myproject"]}]}}]}]})], [
        ("default/web1", "default/db", 80, "TCP", 4, True),
        ("default/web2", "default/frontend", 80, "TCP", 4, True),
        ("myproject/any", "default/db", 80, "TCP", 4, True),  # app=x, but second peer matches ns
        ("default/plain", "default/db", 80, "TCP", 4, False),
        ("alice-ns/client", "default/db", 80, "TCP", 4, False),
        ("default/plain", "default/web1", 80, "TCP", 4, True),  # web1 not selected
    ], id="match-expressions"),
    # "When a pod is isolated for ingress, the only allowed connections into the pod are those from
    # the pod's node and those allowed by the ingress list": any port, either family. Egress has no
    # such exception, and another node is just another peer.
    pytest.param([TEST_NETWORK_POLICY, np("default", "default-deny-ingress", {"podSelector": {}})], [
        ("192.168.0.1", "default/db", 22, "TCP", 4, True),
        ("fd00:10::1", "default/db", 10250, "TCP", 6, True),
        ("192.168.0.1", "default/frontend", 53, "UDP", 4, True),
        ("192.168.0.1", "default/web1", 0, "ICMP", 4, True),
        ("192.168.0.2", "default/db", 6379, "TCP", 4, False),
        ("192.168.0.2", "default/frontend", 80, "TCP", 4, False),
        ("default/db", "192.168.0.1", 22, "TCP", 4, False),
        ("default/frontend", "192.168.0.1", 22, "TCP", 4, True),  # frontend's egress is not isolated
    ], id="own-node-always-admitted"),
]


@pytest.mark.parametrize("policies,checks", CASES)
def test_semantics(policies, checks):
    w = build()
    for p in policies:
        delta = w.policy(p)
        assert not [q for q in delta.problems if q.reason != "NamedPortUnresolved"], delta.problems
    failures = [(src, dst, port, proto, fam, want) for src, dst, port, proto, fam, want in checks
                if w.allowed(src, dst, port, proto, fam) != want]
    assert not failures, f"wrong verdicts (evaluator: {SOURCE}): {failures}"


def test_only_local_pods_get_policies_but_sets_hold_the_cluster():
    w = build()
    w.policy(TEST_NETWORK_POLICY)
    w.policy(np("default", "frontends", {"podSelector": {"matchLabels": {"role": "frontend"}}}))
    snap = w.compiler.snapshot()
    assert ObjectKey("Pod", "default", "remote") not in snap.pods
    assert ObjectKey("Pod", "default", "frontend") in snap.pods
    members = set().union(*(s.members for s in snap.sets.values() if hasattr(s, "members")))
    assert {ip_address("10.244.0.15"), ip_address("fd00:244::f")} <= members  # default/remote, on n2


def test_rule_origins_name_the_policy_rule():
    w = build()
    w.policy(np("default", "a", {"podSelector": {"matchLabels": {"role": "db"}},
                                 "ingress": [{"ports": [{"port": 1}]}, {"ports": [{"port": 2}]}]}))
    w.policy(np("default", "b", {"podSelector": {}, "ingress": [{"ports": [{"port": 3}]}]}))
    db = ObjectKey("Pod", "default", "db")
    refs = w.compiler.rule_origins(db, "ingress")
    # The last rule is the node's own traffic; its origin is the Node.
    assert [(r.policy.kind, r.policy.name, r.index) for r in refs] == [
        ("NetworkPolicy", "a", 0), ("NetworkPolicy", "a", 1), ("NetworkPolicy", "b", 0), ("Node", "n1", 0)]
    rules = w.compiler.pod_policy(db).ingress.rules
    assert [r.ports[0].lo for r in rules[:3]] == [1, 2, 3]
    assert rules[3].ports == () and rules[3].peers[0].startswith("node-")


def test_pods_without_ips_terminal_or_host_network_are_not_members():
    w = build()
    w.policy(np("default", "p", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{
        "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}))
    name = w.compiler.pod_policy(ObjectKey("Pod", "default", "db")).ingress.rules[0].peers[0]
    before = w.sets[name].members
    w.pod("default/noip", {"role": "frontend"}, ())
    w.pod("default/done", {"role": "frontend"}, ("10.244.0.90",), phase="Succeeded")
    w.pod("default/hostnet", {"role": "frontend"}, ("192.168.0.1",), host_network=True)
    assert w.sets[name].members == before
    w.pod("default/pending", {"role": "frontend"}, ("10.244.0.91",), phase="Pending")
    assert w.sets[name].members == before | {ip_address("10.244.0.91")}


def test_evaluator_in_use_is_reported():
    # Not an assertion on behaviour: records in the test log which evaluator judged the verdicts.
    print(f"policy verdicts evaluated by {SOURCE}")
    assert SOURCE


def test_named_port_missing_on_a_target_pod_is_reported_for_that_pod():
    w = build()
    delta = w.policy(np("default", "dns", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{
        "ports": [{"port": "dns", "protocol": "UDP"}]}]}))
    assert [(p.origin.name, p.reason) for p in delta.problems] == [("web2", "NamedPortUnresolved")]
    assert "UDP/dns" in delta.problems[0].message


def test_egress_named_port_to_ip_block_resolves_against_pods_inside_the_block():
    w = build()
    w.policy(np("default", "to-block-http", {"podSelector": {"matchLabels": {"role": "frontend"}},
                                             "policyTypes": ["Egress"], "egress": [{
        "to": [{"ipBlock": {"cidr": "10.244.0.0/28", "except": ["10.244.0.14/32"]}}],
        "ports": [{"port": "http"}]}]}))
    assert w.allowed("default/frontend", "default/web1", 8080)  # .12 in block, http=8080
    assert w.allowed("default/frontend", "default/web2", 9090)  # .13
    assert not w.allowed("default/frontend", "default/plain", 8080)  # .14 is excepted
    assert not w.allowed("default/frontend", "default/web1", 8080, family=6)  # v6 not in block
    assert not w.allowed("default/frontend", "10.244.0.1", 8080)  # not a pod
