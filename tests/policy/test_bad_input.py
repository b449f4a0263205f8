"""Bad input: the invalid part is dropped with a Problem, never widening what is allowed; the rest compiles.

Model objects are built directly here: the API conversion
(``networkpolicy_from_api``) already rejects these, but objects made in code,
or by a future source, bypass it, and the compiler must still fail closed.
"""
from __future__ import annotations

import ipaddress

import pytest

from vppagent.model.k8s import (
    FrozenMap,
    InvalidObject,
    IPBlock,
    LabelSelector,
    NetworkPolicy,
    ObjectKey,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    PolicyType,
    Requirement,
    networkpolicy_from_api,
)

from .world import World, np

DB = ObjectKey("Pod", "default", "db")
DB_SELECTOR = LabelSelector(FrozenMap({"role": "db"}))


def world() -> World:
    w = World()
    w.namespace("default")
    w.pod("default/db", {"role": "db"}, ("10.244.0.10",))
    w.pod("default/fe", {"role": "frontend"}, ("10.244.0.11",))
    return w


def policy(name: str, *rules: PolicyRule, selector: LabelSelector = DB_SELECTOR) -> NetworkPolicy:
    return NetworkPolicy("default", name, pod_selector=selector,
                         policy_types=frozenset({PolicyType.INGRESS}), ingress=rules)


FE_PEER = PolicyPeer(pod_selector=LabelSelector(FrozenMap({"role": "frontend"})))
NET = ipaddress.ip_network

BAD_PEERS = [
    pytest.param(PolicyPeer(ip_block=IPBlock("10.0.0.0/33")), "spec.ingress[0].from[0].ipBlock.cidr", id="bad-cidr"),
    pytest.param(PolicyPeer(ip_block=IPBlock("banana")), "spec.ingress[0].from[0].ipBlock.cidr", id="not-a-cidr"),
    pytest.param(PolicyPeer(ip_block=IPBlock(NET("10.0.0.0/16"), (NET("10.1.0.0/24"),))),
                 "spec.ingress[0].from[0].ipBlock.except[0]", id="except-outside-block"),
    pytest.param(PolicyPeer(ip_block=IPBlock(NET("10.0.0.0/16"), (NET("10.0.0.0/16"),))),
                 "spec.ingress[0].from[0].ipBlock.except[0]", id="except-equals-block"),
    pytest.param(PolicyPeer(pod_selector=LabelSelector(match_expressions=(Requirement("a", "Like"),))),  # type: ignore[arg-type]
                 "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator", id="bad-operator"),
    pytest.param(PolicyPeer(), "spec.ingress[0].from[0]", id="empty-peer"),
    pytest.param(PolicyPeer(pod_selector=LabelSelector(), ip_block=IPBlock(NET("10.0.0.0/8"))),
                 "spec.ingress[0].from[0]", id="ipblock-with-selector"),
]


@pytest.mark.parametrize("peer,field", BAD_PEERS)
def test_bad_peer_is_dropped_and_other_peers_still_match(peer, field):
    w = world()
    delta = w.apply_model(policy("p", PolicyRule(peers=(peer, FE_PEER))))
    assert [(p.origin, p.reason) for p in delta.problems] == [
        (ObjectKey("NetworkPolicy", "default", "p"), "InvalidNetworkPolicy")]
    assert field in delta.problems[0].message
    assert w.allowed("default/fe", "default/db", 80)  # the valid peer
    assert not w.allowed("10.0.0.1", "default/db", 80)  # the bad one allows nothing
    assert not w.allowed("10.1.0.1", "default/db", 80)


@pytest.mark.parametrize("peer,field", BAD_PEERS)
def test_rule_whose_only_peer_is_bad_matches_nothing(peer, field):
    w = world()
    w.apply_model(policy("p", PolicyRule(peers=(peer,))))
    assert DB in w.policies  # still isolated
    assert not w.allowed("default/fe", "default/db", 80)
    assert not w.allowed("10.0.0.1", "default/db", 80)


BAD_PORTS = [
    pytest.param(PolicyPort(port=70000), "ports[0].port", id="port-out-of-range"),
    pytest.param(PolicyPort(port=0), "ports[0].port", id="port-zero"),
    pytest.param(PolicyPort(port=100, end_port=99), "ports[0].endPort", id="end-below-port"),
    pytest.param(PolicyPort(port=100, end_port=65536), "ports[0].endPort", id="end-out-of-range"),
    pytest.param(PolicyPort(port="http", end_port=90), "ports[0].endPort", id="end-with-named"),
    pytest.param(PolicyPort(protocol="ICMP", port=80), "ports[0].protocol", id="unknown-protocol"),  # type: ignore[arg-type]
    pytest.param(PolicyPort(port="a-name-that-is-far-too-long"), "ports[0].port", id="long-port-name"),
]


@pytest.mark.parametrize("port,field", BAD_PORTS)
def test_bad_port_never_widens_to_any_port(port, field):
    w = world()
    delta = w.apply_model(policy("p", PolicyRule(peers=(FE_PEER,), ports=(port,))))
    assert len(delta.problems) == 1 and field in delta.problems[0].message
    for dport in (80, 99, 100, 70000 % 65536):
        assert not w.allowed("default/fe", "default/db", dport)


@pytest.mark.parametrize("port,field", BAD_PORTS)
def test_bad_port_is_dropped_and_other_ports_still_match(port, field):
    w = world()
    w.apply_model(policy("p", PolicyRule(peers=(FE_PEER,), ports=(port, PolicyPort(port=443)))))
    assert w.allowed("default/fe", "default/db", 443)
    assert not w.allowed("default/fe", "default/db", 80)


def test_policy_with_bad_pod_selector_is_skipped_and_the_rest_compiled():
    w = world()
    bad_sel = LabelSelector(match_expressions=(Requirement("role", "Like", frozenset({"db"})),))  # type: ignore[arg-type]
    delta = w.apply_model(policy("bad", selector=bad_sel))
    assert [p.reason for p in delta.problems] == ["InvalidNetworkPolicy"]
    assert "spec.podSelector.matchExpressions[0].operator" in delta.problems[0].message
    assert DB not in w.policies
    good = w.apply_model(policy("good", PolicyRule(peers=(FE_PEER,), ports=(PolicyPort(port=5432),))))
    assert not good.problems and DB in w.policies
    assert w.allowed("default/fe", "default/db", 5432) and not w.allowed("default/fe", "default/db", 80)


def test_good_policy_turned_bad_drops_its_state_and_turned_good_again_restores_it():
    w = world()
    w.apply_model(policy("p", PolicyRule(peers=(FE_PEER,))))
    sets_before = dict(w.sets)
    bad_sel = LabelSelector(match_expressions=(Requirement("role", "In"),))  # In without values
    delta = w.apply_model(policy("p", selector=bad_sel))
    assert delta.problems and dict(delta.pods) == {DB: None} and set(delta.sets_deleted) == set(sets_before)
    w.apply_model(policy("p", PolicyRule(peers=(FE_PEER,))))
    assert w.sets == sets_before


def test_api_conversion_rejects_what_the_api_server_would():
    # Layering check: these never reach the compiler from the watch path.
    for spec in ({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]},
                 {"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]},
                 {"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]}):
        with pytest.raises(InvalidObject):
            networkpolicy_from_api(np("default", "x", spec))


def test_problems_lists_what_is_still_wrong():
    w = world()
    w.apply_model(policy("p", PolicyRule(peers=(PolicyPeer(ip_block=IPBlock("300.0.0.0/8")), FE_PEER))))
    w.policy(np("default", "named", {"podSelector": {"matchLabels": {"role": "db"}},
                                     "ingress": [{"ports": [{"port": "metrics"}]}]}))
    assert sorted(p.reason for p in w.compiler.problems()) == ["InvalidNetworkPolicy", "NamedPortUnresolved"]
    w.pod("default/db", {"role": "db"}, ("10.244.0.10",), ports={"metrics": 9100})
    assert [p.reason for p in w.compiler.problems()] == ["InvalidNetworkPolicy"]
    assert w.allowed("default/fe", "default/db", 9100)
    w.apply_model(policy("p", PolicyRule(peers=(FE_PEER,))))
    assert w.compiler.problems() == []
