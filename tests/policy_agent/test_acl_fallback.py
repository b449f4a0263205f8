"""The ACL fallback: expansion (checked against the reference evaluator) and the feature on a stock VPP."""
from __future__ import annotations

import ipaddress
import random

import pytest

from testbed.policy_reference import net_contains
from vppagent.policy import acl_fallback as aclf, acl_kind
from vppagent.policy.ir import NetSet
from vppagent.vpp import acl
from vppagent.vpp.acl import Action

from .test_feature import _setup
from .world import Node

N = ipaddress.ip_network


@pytest.mark.parametrize("seed", range(40))
def test_net_prefixes_match_longest_prefix_semantics(seed):
    rng = random.Random(seed)

    def rand_net() -> ipaddress.IPv4Network:
        plen = rng.choice([8, 12, 16, 20, 24, 26, 28, 30, 32])
        addr = ipaddress.IPv4Address(rng.choice([0x0A000000, 0x0A010000]) + rng.randrange(1 << 17))
        return N(f"{addr}/{plen}", strict=False)

    include = tuple({rand_net() for _ in range(rng.randrange(1, 5))})
    exclude = tuple({rand_net() for _ in range(rng.randrange(0, 5))})
    prefixes = aclf.net_prefixes(include, exclude)
    for a, b in zip(prefixes, prefixes[1:]):
        assert not a.overlaps(b), (a, b)
    s = NetSet("s", include, exclude)
    probes = [n.network_address + k for n in include + exclude for k in (0, 1, n.num_addresses // 2,
                                                                         n.num_addresses - 1)]
    probes += [ipaddress.IPv4Address(0x0A000000 + rng.randrange(1 << 18)) for _ in range(200)]
    for p in probes:
        assert net_contains(s, p) == any(p in q for q in prefixes), (p, include, exclude, prefixes)


def test_fallback_programs_reflexive_acls(stock):
    vpp = stock.vpp
    node = Node(vpp)
    _setup(node)
    node.converge()
    assert node.feature.backend() == "acl"
    sw = node.sw_if_index("app/server")
    [binding] = [b for b in acl.interface_acls(vpp) if b.sw_if_index == sw]
    acls = {a.index: a for a in acl.dump_acls(vpp)}
    [inp], [out] = binding.input, binding.output
    # egress not isolated: everything permitted with reflect, so replies to accepted flows are tracked
    assert {(r.action, r.src) for r in acls[inp].rules} == {(Action.PERMIT_REFLECT, N("0.0.0.0/0")),
                                                          (Action.PERMIT_REFLECT, N("::/0"))}
    assert [(r.action, r.src, r.proto, r.dport.first, r.dport.last) for r in acls[out].rules] == [
        (Action.PERMIT_REFLECT, N("10.0.2.20/32"), 6, 80, 80)]

    # a pod joining the selected namespace: the output ACL is replaced in place, nothing else
    before = vpp.calls.copy()
    node.namespace("other", team="web")
    node.converge()
    assert dict(vpp.calls - before) == {"acl_add_replace": 1}
    rules = acl.get_acl(vpp, out).rules
    assert {r.src for r in rules} == {N("10.0.2.20/32"), N("10.0.3.30/32")}

    # resync adopts by tag; then the policy goes away and so do the ACLs
    node.reconciler.needs_resync = True
    assert node.converge().changed == 0
    node.remove(node.cluster.get(next(k for k in node.cluster.others if k.kind == "NetworkPolicy")))
    node.converge()
    assert [a for a in acl.dump_acls(vpp) if a.tag.startswith(acl_kind.TAG_PREFIX)] == []
    assert all(not b.input and not b.output for b in acl.interface_acls(vpp))


def test_expansion_of_ports_and_named_ports():
    from vppagent.policy.ir import AddrPortSet, AddrSet, DirectionPolicy, PodPolicy, PortRange, Rule

    sets = {"a": AddrSet("a", frozenset({ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("fd00::1")})),
            "ap": AddrPortSet("ap", frozenset({(ipaddress.ip_address("10.0.0.2"), 6, 8080)}))}
    pol = PodPolicy(None, DirectionPolicy((Rule(("a",), (PortRange(0, 53, 53),)), Rule((), (), ("ap",)))))
    inp, out = aclf.pod_acls(pol, sets)
    got = {(str(r.dst), r.proto, r.dport.first) for r in inp}
    assert got == {("10.0.0.1/32", 6, 53), ("10.0.0.1/32", 17, 53), ("10.0.0.1/32", 132, 53),
                   ("fd00::1/128", 6, 53), ("fd00::1/128", 17, 53), ("fd00::1/128", 132, 53),
                   ("10.0.0.2/32", 6, 8080)}
    assert all(r.action is Action.PERMIT_REFLECT for r in inp + out)
    with pytest.raises(aclf.PolicyExpansionError):
        aclf.pod_acls(PodPolicy(DirectionPolicy((Rule(("missing",), ()),)), None), sets)


def test_fallback_admits_the_own_node(stock):
    vpp = stock.vpp
    node = Node(vpp)
    _setup(node)
    node.node("n1", "192.168.0.1")
    node.converge()
    sw = node.sw_if_index("app/server")
    [binding] = [b for b in acl.interface_acls(vpp) if b.sw_if_index == sw]
    [out] = binding.output  # VPP's "output" ACL of a pod interface filters what goes into the pod
    rules = acl.get_acl(vpp, out).rules
    assert (Action.PERMIT_REFLECT, N("192.168.0.1/32"), 0) in {(r.action, r.src, r.proto) for r in rules}
    # a new node address replaces the ACL in place
    before = vpp.calls.copy()
    node.node("n1", "192.168.0.3")
    node.converge()
    assert dict(vpp.calls - before) == {"acl_add_replace": 1}
    srcs = {r.src for r in acl.get_acl(vpp, out).rules}
    assert N("192.168.0.3/32") in srcs and N("192.168.0.1/32") not in srcs
