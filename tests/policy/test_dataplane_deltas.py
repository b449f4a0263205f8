"""Compiler deltas drive the reference data-plane model (``testbed.policy_reference``) in order,
without errors, and its stateful verdicts follow the policy: what the agent will do against the plugin.
"""
from __future__ import annotations

import ipaddress

import pytest

reference = pytest.importorskip("testbed.policy_reference", reason="reference evaluator not present")

from vppagent.model.k8s import ObjectKey  # noqa: E402
from vppagent.policy.compiler import PolicyDelta  # noqa: E402
from vppagent.policy.ir import AddrPortSet, AddrSet, NetSet, Packet  # noqa: E402

from .world import World, np  # noqa: E402


def apply(dp, delta: PolicyDelta) -> None:
    for s in delta.sets_created:
        dp.set_add(s.name, s.kind)
        if isinstance(s, NetSet):
            dp.members_add(s.name, [(n, False) for n in s.include] + [(n, True) for n in s.exclude])
        elif isinstance(s, (AddrSet, AddrPortSet)) and s.members:
            dp.members_add(s.name, s.members)
    for d in delta.members:
        if d.removed:
            dp.members_del(d.name, d.removed)
        if d.added:
            dp.members_add(d.name, d.added)
    for key, pp in delta.pods.items():
        iface, name = f"if-{key.name}", str(key)
        if pp is None:
            dp.detach(iface)
            dp.policy_del(name)
        else:
            dp.policy_set(name, pp)
            dp.attach(iface, name)
    for name in delta.sets_deleted:
        dp.set_del(name)


def test_deltas_program_the_reference_dataplane_and_a_namespace_join_is_a_member_add():
    dp = reference.ReferenceDataplane()
    w = World()
    steps = [
        w.namespace("default"), w.namespace("blue"),
        w.pod("default/db", {"role": "db"}, ("10.244.0.10",)),
        w.pod("default/fe", {"role": "frontend"}, ("10.244.0.11",)),
        w.pod("blue/b1", {}, ("10.244.1.1",), node="n2"),
        w.policy(np("default", "db", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}], "ports": [{"port": 5432}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}},
                      {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.9.0/24"]}}]}]})),
    ]
    for d in steps:
        apply(dp, d)
    ip = ipaddress.ip_address
    db_if = "if-db"
    syn = Packet(ip("10.244.0.11"), ip("10.244.0.10"), 6, 40000, 5432)
    assert dp.process(db_if, "ingress", syn, 0) == reference.Verdict(True, 0, "rule")
    reply = Packet(syn.dst, syn.src, 6, 5432, 40000)
    assert dp.process(db_if, "egress", reply, 1).reason in ("reply", "not-isolated")
    assert not dp.process(db_if, "ingress", Packet(syn.src, syn.dst, 6, 40001, 80), 1).allowed
    assert dp.process(db_if, "ingress", Packet(ip("192.168.1.1"), syn.dst, 17, 1, 53), 1).rule_index == 1
    assert not dp.process(db_if, "ingress", Packet(ip("192.168.9.1"), syn.dst, 17, 1, 53), 1).allowed

    from_blue = Packet(ip("10.244.1.1"), syn.dst, 6, 40000, 80)
    assert not dp.process(db_if, "ingress", from_blue, 2).allowed
    policies_before = dict(dp.policies)
    delta = w.namespace("blue", team="blue")
    assert not delta.pods and not delta.sets_created and len(delta.members) == 1
    apply(dp, delta)
    assert dp.policies == policies_before  # no rule rewrite
    assert dp.process(db_if, "ingress", from_blue, 3) == reference.Verdict(True, 1, "rule")

    apply(dp, w.remove_policy("default", "db"))
    assert dp.sets == {} and dp.policies == {} and dp.attached == {}
    assert w.compiler.snapshot().pods == {} and ObjectKey("Pod", "default", "db") not in w.policies
