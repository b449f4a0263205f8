"""The ``policies`` feature end to end on the emulator: cluster state -> compiler -> reconciler -> kpol.

Verdicts come from the emulator's packet hook (the reference evaluator over
what was programmed through the API), so these tests check what VPP would do,
not which calls were made - except where the call count is the point.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import logging

from testbed.emulator.handlers import kpol as emu_kpol
from vppagent.model.k8s import IPBlock, ObjectKey, PolicyPeer
from vppagent.policy.compiler import INVALID_POLICY
from vppagent.policy.ir import Packet
from vppagent.sources import Upsert
from vppagent.vpp import kpol

from .world import Node, converge_delta, desired_now, full_intents, pod_key

A = ipaddress.ip_address
SERVER = "10.0.1.10"


def _allow_web_on_80() -> dict:
    return {"metadata": {"namespace": "app", "name": "allow-web"},
            "spec": {"podSelector": {"matchLabels": {"app": "server"}},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}],
                                  "ports": [{"protocol": "TCP", "port": 80}]}]}}


def _setup(node: Node) -> None:
    node.namespace("app")
    node.namespace("web", team="web")
    node.namespace("other")
    node.pod("app/server", SERVER, app="server")
    node.pod("web/client", "10.0.2.20", node="n2")
    node.pod("other/late", "10.0.3.30", node="n2")
    node.policy(_allow_web_on_80())


def _verdict(node: Node, src: str, dport: int = 80, proto: int = 6):
    sw = node.sw_if_index("app/server")
    return emu_kpol.evaluate(node.vpp_emu, sw, "ingress", Packet(A(src), A(SERVER), proto, 40000, dport))


def _expect(node: Node, src: str, allowed: bool, dport: int = 80) -> None:
    """Verdict checks need the emulator's packet hook; on a real VPP the podnet test sends packets."""
    if node.vpp_emu is not None:
        assert _verdict(node, src, dport).allowed is allowed, (src, dport)


def test_policy_programmed_and_enforced(emu_kpol):
    node = Node(emu_kpol.vpp)
    node.vpp_emu = emu_kpol.emu
    _setup(node)
    node.converge()
    assert node.feature.backend() == "kpol"
    [pol] = kpol.dump_policies(emu_kpol.vpp)
    assert (pol.ingress_isolated, pol.egress_isolated) == (True, False)
    assert kpol.attachments(emu_kpol.vpp) == {node.sw_if_index("app/server"): pol.policy_id}
    members = {m.addr for s in kpol.dump_ipsets(emu_kpol.vpp) for m in s.members}
    assert members == {A("10.0.2.20")}
    assert _verdict(node, "10.0.2.20").allowed
    assert not _verdict(node, "10.0.2.20", dport=81).allowed
    denied = _verdict(node, "10.0.3.30")
    assert not denied.allowed and denied.reason == "default-deny"
    # the counters say why: one default-deny drop per direction evaluated, rule 0 of allow-web allowed one
    # (rule 1 is the node's own traffic, which none of these packets came from)
    counts = {(c.rule_index, c.rule.index if c.rule else None): c.packets for c in node.feature.rule_counts()
              if c.pod == str(pod_key("app/server"))}
    assert counts == {(-1, None): 2, (0, 0): 1, (1, 0): 0}
    assert [str(c.rule.policy) for c in node.feature.rule_counts() if c.rule is not None] == [
        "NetworkPolicy app/allow-web", "Node n1"]

    # a second pass with nothing changed sends nothing
    calls = emu_kpol.vpp.calls.copy()
    assert node.converge().changed == 0
    assert emu_kpol.vpp.calls == calls


def test_namespace_joining_changes_members_only(target):
    node = Node(target.vpp)
    node.vpp_emu = target.emu
    _setup(node)
    node.converge()
    _expect(node, "10.0.3.30", False)
    before = target.vpp.calls.copy()
    node.namespace("other", team="web")  # other/late's namespace is now selected
    node.converge()
    sent = target.vpp.calls - before
    assert dict(sent) == {"kpol_ipset_members_add_del": 1}, sent
    _expect(node, "10.0.3.30", True)
    # and a pod leaving: one member delete, still no policy message
    before = target.vpp.calls.copy()
    node.remove(node.cluster.get(pod_key("web/client")))
    node.converge()
    assert dict(target.vpp.calls - before) == {"kpol_ipset_members_add_del": 1}
    _expect(node, "10.0.2.20", False)


def test_removing_policy_removes_everything(target):
    node = Node(target.vpp)
    node.vpp_emu = target.emu
    _setup(node)
    node.converge()
    node.remove(node.cluster.get(ObjectKey("NetworkPolicy", "app", "allow-web")))
    node.converge()
    vpp = target.vpp
    assert (kpol.dump_ipsets(vpp), kpol.dump_policies(vpp), kpol.attachments(vpp)) == ([], [], {})
    if target.emu is not None:
        assert _verdict(node, "10.0.3.30").reason == "not-isolated"


def test_resync_adopts_without_calls(target):
    node = Node(target.vpp)
    node.vpp_emu = target.emu
    _setup(node)
    node.converge()
    node.reconciler.needs_resync = True
    result = node.converge()
    assert result.changed == 0, result


def test_bad_policy_is_reported_and_never_widens(target):
    node = Node(target.vpp)
    node.vpp_emu = target.emu
    _setup(node)
    # The model validates API objects; a model built otherwise (another source) can still be bad.
    good = node.cluster.get(ObjectKey("NetworkPolicy", "app", "allow-web"))
    bad_peer = PolicyPeer(ip_block=IPBlock("10.0.0.0/33"))  # type: ignore[arg-type]
    bad = dataclasses.replace(good, ingress=(dataclasses.replace(good.ingress[0], peers=(bad_peer,)),))
    node.cluster.apply(Upsert(bad, "test"))
    node.converge()
    assert [p.reason for p in node.problems] == [INVALID_POLICY]
    assert "spec.ingress[0].from[0].ipBlock.cidr" in node.problems[0].message
    _expect(node, "10.0.2.20", False)  # the only peer was invalid: matches nothing


def test_restart_replaces_objects_once(target):
    first = Node(target.vpp)
    first.vpp_emu = target.emu
    _setup(first)
    first.converge()
    # a new agent process: no memory of ids; it must end with exactly one copy of everything
    second = Node(target.vpp)
    second.vpp_emu = target.emu
    _setup(second)
    second.converge()
    vpp = target.vpp
    assert len(kpol.dump_policies(vpp)) == 1 and len(kpol.dump_ipsets(vpp)) == 2  # the peers, the node
    assert len(kpol.attachments(vpp)) == 1
    _expect(second, "10.0.2.20", True)
    _expect(second, "10.0.3.30", False)


def test_backend_warning_once(emu_stock, caplog):
    node = Node(emu_stock.vpp)
    _setup(node)
    with caplog.at_level(logging.WARNING, logger="vppagent.policy.feature"):
        node.converge()
        node.converge()
    warnings = [r for r in caplog.records if "ACL plugin" in r.getMessage()]
    assert len(warnings) == 1


def test_delta_path_matches_full_path(target):
    node = Node(target.vpp)
    node.vpp_emu = target.emu
    _setup(node)
    node.converge()
    # a namespace joins: one member message, and the patched intents equal a full recompute
    before = target.vpp.calls.copy()
    node.namespace("other", team="web")
    converge_delta(node, {ObjectKey("Namespace", "", "other")})
    assert dict(target.vpp.calls - before) == {"kpol_ipset_members_add_del": 1}
    _expect(node, "10.0.3.30", True)
    assert desired_now(node) == full_intents(node)
    # a new policy isolating egress too, then both policies gone: all through the delta path
    egress = {"metadata": {"namespace": "app", "name": "egress-dns"},
              "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                       "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}]}}
    node.policy(egress)
    converge_delta(node, {ObjectKey("NetworkPolicy", "app", "egress-dns")})
    [pol] = kpol.dump_policies(target.vpp)
    assert (pol.ingress_isolated, pol.egress_isolated) == (True, True)
    assert desired_now(node) == full_intents(node)
    for name in ("egress-dns", "allow-web"):
        node.remove(node.cluster.get(ObjectKey("NetworkPolicy", "app", name)))
        converge_delta(node, {ObjectKey("NetworkPolicy", "app", name)})
    vpp = target.vpp
    assert (kpol.dump_ipsets(vpp), kpol.dump_policies(vpp), kpol.attachments(vpp)) == ([], [], {})
    assert desired_now(node) == full_intents(node) == set()


def test_traffic_from_the_own_node_is_allowed_and_follows_its_addresses(target):
    """Kubernetes always admits the pod's own node (kubelet probes): its addresses, any port."""
    node = Node(target.vpp)
    node.vpp_emu = target.emu
    _setup(node)
    node.node("n1", "192.168.0.1", "2001:db8::1")
    node.node("n2", "192.168.0.2")  # another node's address is no exception
    node.converge()
    _expect(node, "192.168.0.1", True, dport=81)
    _expect(node, "192.168.0.2", False)
    _expect(node, "10.0.3.30", False)
    members = {str(m.addr) for s in kpol.dump_ipsets(target.vpp) for m in s.members}
    assert members == {"10.0.2.20", "192.168.0.1", "2001:db8::1"}
    if target.emu is not None:
        allowed = _verdict(node, "192.168.0.1", dport=81)
        assert (allowed.reason, allowed.rule_index) == ("rule", 1)
    # the node's address changes: the node set gets one member and loses one, nothing else
    before = target.vpp.calls.copy()
    node.node("n1", "192.168.0.3")
    converge_delta(node, {ObjectKey("Node", "", "n1")})
    assert dict(target.vpp.calls - before) == {"kpol_ipset_members_add_del": 2}
    assert desired_now(node) == full_intents(node)
    _expect(node, "192.168.0.3", True)
    _expect(node, "192.168.0.1", False)
    # the Node gone: nothing is the node's own any more, and still only members change
    node.remove(node.cluster.get(ObjectKey("Node", "", "n1")))
    node.converge()
    _expect(node, "192.168.0.3", False)
    assert len(kpol.dump_policies(target.vpp)) == 1
