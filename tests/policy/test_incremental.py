"""Incremental ipsets: pod, namespace and policy changes yield only the deltas they must.

Every step also goes through World's mirror, which applies the delta and
checks it against the compiler's full snapshot.
"""
from __future__ import annotations

import ipaddress
import random

import pytest

from vppagent.model.k8s import LabelSelector, ObjectKey
from vppagent.policy.ipsets import PodScope, SetDelta, set_name

from .world import World, np

ip = ipaddress.ip_address
DB = ObjectKey("Pod", "default", "db")

FROM_FRONTEND = np("default", "from-frontend", {
    "podSelector": {"matchLabels": {"role": "db"}},
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}},
                          {"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]})


def world() -> World:
    w = World()
    w.namespace("default")
    w.namespace("blue", team="blue")
    w.namespace("red", team="red")
    w.pod("default/db", {"role": "db"}, ("10.244.0.10", "fd00::10"))
    w.pod("default/fe", {"role": "frontend"}, ("10.244.0.11", "fd00::11"))
    w.pod("default/other", {"role": "other"}, ("10.244.0.12",), node="n2")
    w.pod("red/r1", {"role": "frontend"}, ("10.244.1.1",), node="n2")
    w.policy(FROM_FRONTEND)
    return w


def peer_sets(w: World) -> tuple[str, str]:
    rule = w.compiler.pod_policy(DB).ingress.rules[0]
    return rule.peers  # (podSelector set, namespaceSelector set)


def test_remote_pod_label_change_is_one_member_add_and_no_rule_change():
    w = world()
    pods_set, _ = peer_sets(w)
    assert not w.allowed("default/other", "default/db", 80)
    delta = w.pod("default/other", {"role": "frontend"}, ("10.244.0.12",), node="n2")
    assert delta.members == (SetDelta(pods_set, frozenset({ip("10.244.0.12")}), frozenset()),)
    assert not delta.pods and not delta.sets_created and not delta.sets_deleted
    assert w.allowed("default/other", "default/db", 80)
    delta = w.pod("default/other", {"role": "other"}, ("10.244.0.12",), node="n2")
    assert delta.members == (SetDelta(pods_set, frozenset(), frozenset({ip("10.244.0.12")})),)
    assert not w.allowed("default/other", "default/db", 80)


def test_namespace_label_change_moves_its_pods_only():
    w = world()
    _, ns_set = peer_sets(w)
    assert not w.allowed("red/r1", "default/db", 80)
    delta = w.namespace("red", team="blue")
    assert delta.members == (SetDelta(ns_set, frozenset({ip("10.244.1.1")}), frozenset()),)
    assert not delta.pods and not delta.sets_created
    assert w.allowed("red/r1", "default/db", 80)
    delta = w.namespace("red", team="red")
    assert delta.members == (SetDelta(ns_set, frozenset(), frozenset({ip("10.244.1.1")})),)
    assert not w.allowed("red/r1", "default/db", 80)


def test_pod_joining_a_selected_namespace_is_a_member_add_only():
    w = world()
    _, ns_set = peer_sets(w)
    rules_before = w.compiler.pod_policy(DB)
    delta = w.pod("blue/newcomer", {"any": "thing"}, ("10.244.2.7", "fd00::2:7"), node="n3")
    assert delta.members == (SetDelta(ns_set, frozenset({ip("10.244.2.7"), ip("fd00::2:7")}), frozenset()),)
    assert not delta.pods and not delta.sets_created and not delta.sets_deleted
    assert w.compiler.pod_policy(DB) == rules_before
    assert w.allowed("blue/newcomer", "default/db", 80)
    assert w.allowed("blue/newcomer", "default/db", 80, family=6)


def test_pod_ip_change_swaps_members_in_one_delta():
    w = world()
    pods_set, _ = peer_sets(w)
    delta = w.pod("default/fe", {"role": "frontend"}, ("10.244.0.99", "fd00::11"))
    assert delta.members == (SetDelta(pods_set, frozenset({ip("10.244.0.99")}), frozenset({ip("10.244.0.11")})),)
    assert not delta.pods  # fe is local but not selected by any policy


def test_unchanged_inputs_give_empty_deltas():
    w = world()
    assert w.policy(FROM_FRONTEND).empty
    assert w.pod("default/fe", {"role": "frontend"}, ("10.244.0.11", "fd00::11")).empty
    assert w.namespace("blue", team="blue").empty


def test_pod_removal_and_shared_ip_reference_counting():
    w = world()
    pods_set, _ = peer_sets(w)
    # A terminating pod and its successor may briefly share an IP.
    w.pod("default/fe2", {"role": "frontend"}, ("10.244.0.11",))
    delta = w.remove_pod("default/fe")
    assert delta.members == (SetDelta(pods_set, frozenset(), frozenset({ip("fd00::11")})),)
    assert ip("10.244.0.11") in w.sets[pods_set].members
    delta = w.remove_pod("default/fe2")
    assert delta.members == (SetDelta(pods_set, frozenset(), frozenset({ip("10.244.0.11")})),)


def test_pod_going_terminal_leaves_sets_and_local_policy():
    w = world()
    pods_set, _ = peer_sets(w)
    delta = w.pod("default/fe", {"role": "frontend"}, ("10.244.0.11", "fd00::11"), phase="Failed")
    assert delta.members == (SetDelta(pods_set, frozenset(), frozenset({ip("10.244.0.11"), ip("fd00::11")})),)
    delta = w.pod("default/db", {"role": "db"}, ("10.244.0.10", "fd00::10"), phase="Succeeded")
    assert dict(delta.pods) == {DB: None}


def test_policy_delete_detaches_pods_and_deletes_only_unshared_sets():
    w = world()
    pods_set, ns_set = peer_sets(w)
    w.policy(np("default", "also-frontend", {"podSelector": {"matchLabels": {"role": "frontend"}}, "ingress": [{
        "from": [{"podSelector": {"matchExpressions": [], "matchLabels": {"role": "frontend"}}}]}]}))
    delta = w.remove_policy("default", "from-frontend")
    assert dict(delta.pods) == {DB: None}
    assert delta.sets_deleted == (ns_set,)  # the podSelector set is still used by also-frontend
    assert pods_set in w.sets
    assert w.allowed("red/r1", "default/db", 80)  # not isolated any more
    assert w.remove_policy("default", "from-frontend").empty


def test_local_pod_relabel_attaches_and_detaches_policy_without_set_changes():
    w = world()
    delta = w.pod("default/fe", {"role": "db"}, ("10.244.0.11", "fd00::11"))
    fe = ObjectKey("Pod", "default", "fe")
    assert set(delta.pods) == {fe} and delta.pods[fe] is not None
    assert not delta.sets_created and not delta.sets_deleted
    delta = w.pod("default/fe", {"role": "frontend"}, ("10.244.0.11", "fd00::11"))
    assert dict(delta.pods) == {fe: None}


def test_policy_peer_change_creates_new_set_before_deleting_old():
    w = world()
    pods_set, ns_set = peer_sets(w)
    changed = np("default", "from-frontend", {
        "podSelector": {"matchLabels": {"role": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "other"}}},
                              {"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]})
    delta = w.policy(changed)
    assert [s.name for s in delta.sets_created] != [pods_set]
    assert delta.sets_created[0].members == frozenset({ip("10.244.0.12")})
    assert delta.sets_deleted == (pods_set,)
    assert set(delta.pods) == {DB}
    assert ns_set in w.sets
    assert w.allowed("default/other", "default/db", 80) and not w.allowed("default/fe", "default/db", 80)


def test_set_names_are_stable_and_ignore_term_order():
    sel1 = {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "y"]},
                                 {"key": "b", "operator": "Exists"}]}
    sel2 = {"matchExpressions": [{"key": "b", "operator": "Exists"},
                                 {"key": "a", "operator": "In", "values": ["y", "x"]}]}
    names = []
    for ns, sel in (("ns", sel1), ("ns", sel2), ("ns2", sel2)):
        w = World()
        w.pod(f"{ns}/local", {}, ("10.244.0.1",))
        d = w.policy(np(ns, "p", {"podSelector": {}, "ingress": [{"from": [{"podSelector": sel}]}]}))
        names.append([s.name for s in d.sets_created if not s.name.startswith("node-")])
    assert names[0] == names[1] and len(names[0]) == 1
    assert names[2] != names[0]  # another namespace is another set
    # Fixed across processes and releases: the agent adopts sets in VPP by these names after a restart.
    scope = PodScope("ns", None, LabelSelector.from_api(sel1))
    assert set_name(scope) == names[0][0] == set_name(PodScope("ns", None, LabelSelector.from_api(sel2)))
    assert set_name(scope).startswith("pod-") and len(set_name(scope)) == 24


def test_only_sets_named_by_local_pods_reach_the_data_plane():
    w = World()
    w.namespace("default")
    w.pod("default/db", {"role": "db"}, ("10.244.0.10",), node="n2")
    w.pod("default/fe", {"role": "frontend"}, ("10.244.0.11",), node="n2")
    delta = w.policy(FROM_FRONTEND)
    assert not delta.sets_created and not delta.pods and w.compiler.snapshot().sets == {}
    assert w.pod("default/fe2", {"role": "frontend"}, ("10.244.0.12",), node="n2").empty
    # A pod of this node gets selected: its sets arrive whole, with current members.
    delta = w.pod("default/db2", {"role": "db"}, ("10.244.0.20",))
    # Its peers' set, the empty named-port-less peers set, and the node's own addresses.
    assert len(delta.sets_created) == 3 and set(delta.pods) == {ObjectKey("Pod", "default", "db2")}
    assert {ip("10.244.0.11"), ip("10.244.0.12")} in [s.members for s in delta.sets_created]
    assert w.allowed("default/fe2", "default/db2", 80)
    # ... and leave with the last local pod naming them.
    delta = w.remove_pod("default/db2")
    assert sorted(delta.sets_deleted) == sorted(s.name for s in w.deltas[-2].sets_created)
    assert w.sets == {}


def test_egress_named_port_follows_peer_pod_port_changes():
    w = world()
    w.pod("default/web", {"app": "web"}, ("10.244.0.20",), ports={"http": 8080}, node="n2")
    w.policy(np("default", "to-web", {"podSelector": {"matchLabels": {"role": "frontend"}}, "policyTypes": ["Egress"],
                                      "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                                  "ports": [{"port": "http"}]}]}))
    assert w.allowed("default/fe", "default/web", 8080)
    delta = w.pod("default/web", {"app": "web"}, ("10.244.0.20",), ports={"http": 8081}, node="n2")
    (d,) = delta.members
    assert d.added == {(ip("10.244.0.20"), 6, 8081)} and d.removed == {(ip("10.244.0.20"), 6, 8080)}
    assert not delta.pods
    assert w.allowed("default/fe", "default/web", 8081) and not w.allowed("default/fe", "default/web", 8080)


def test_ingress_named_port_change_on_local_pod_updates_its_rules():
    w = world()
    w.policy(np("default", "http-in", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{
        "ports": [{"port": "http"}]}]}))
    assert not w.allowed("red/r1", "default/db", 8080)
    delta = w.pod("default/db", {"role": "db"}, ("10.244.0.10", "fd00::10"), ports={"http": 8080})
    assert set(delta.pods) == {DB} and not delta.members
    assert w.allowed("red/r1", "default/db", 8080)


def test_namespace_removal_drops_its_pods_from_namespace_selected_sets():
    w = world()
    w.pod("blue/b1", {}, ("10.244.3.1",), node="n2")
    _, ns_set = peer_sets(w)
    delta = w.remove_namespace("blue")
    assert delta.members == (SetDelta(ns_set, frozenset(), frozenset({ip("10.244.3.1")})),)


@pytest.mark.parametrize("seed", range(6))
def test_random_churn_matches_a_compile_from_scratch(seed):
    """After any sequence of changes, the incremental state equals a fresh compile of the final inputs."""
    rnd = random.Random(seed)
    w = World()
    labels = [{}, {"role": "db"}, {"role": "frontend"}, {"app": "web"}, {"role": "db", "app": "web"}]
    ns_labels = [{}, {"team": "blue"}, {"team": "red"}]
    namespaces = ["a", "b", "c"]
    policies = [
        np("a", "p1", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{"from": [
            {"podSelector": {"matchLabels": {"role": "frontend"}}},
            {"namespaceSelector": {"matchLabels": {"team": "blue"}}, "podSelector": {"matchLabels": {"app": "web"}}}]}]}),
        np("a", "p2", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [
            {"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": "http"}, {"port": 53, "protocol": "UDP"}]}]}),
        np("b", "p3", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": "http"}]},
                                                                                   {"from": [{"namespaceSelector": {}}]}]}),
        np("c", "p4", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.0.0/16",
                                                                             "except": ["10.244.1.0/24"]}}]}]}),
    ]
    ns_state: dict[str, dict] = {}
    live_policies: dict[str, dict] = {}
    for step in range(300):
        op = rnd.random()
        if op < 0.15:
            n = rnd.choice(namespaces)
            ns_state[n] = rnd.choice(ns_labels)
            w.namespace(n, **ns_state[n])
        elif op < 0.6:
            ref = f"{rnd.choice(namespaces)}/p{rnd.randrange(8)}"
            i = rnd.randrange(1, 20)
            ips = rnd.choice([(), (f"10.244.{rnd.randrange(2)}.{i}",), (f"10.244.0.{i}", f"fd00::{i}")])
            w.pod(ref, rnd.choice(labels), ips, node=rnd.choice(["n1", "n2"]),
                  ports=rnd.choice([{}, {"http": 8080}, {"http": 9090}]),
                  phase=rnd.choice(["Running", "Running", "Pending", "Failed"]))
        elif op < 0.75 and w.pods:
            w.remove_pod(rnd.choice(sorted(w.pods)))
        elif op < 0.9:
            p = rnd.choice(policies)
            live_policies[p["metadata"]["namespace"] + "/" + p["metadata"]["name"]] = p
            w.policy(p)
        elif live_policies:
            key = rnd.choice(sorted(live_policies))
            del live_policies[key]
            w.remove_policy(*key.split("/"))
    fresh = World()
    for n, lab in ns_state.items():
        fresh.namespace(n, **lab)
    for ref, pod in w.pods.items():
        fresh._apply(fresh.compiler.update_pod(pod))
        fresh.pods[ref] = pod
    for p in live_policies.values():
        fresh.policy(p)
    a, b = w.compiler.snapshot(), fresh.compiler.snapshot()
    assert dict(a.sets) == dict(b.sets)
    assert dict(a.pods) == dict(b.pods)
    assert dict(a.origins) == dict(b.origins)


def test_policy_updates_and_removal_release_every_set_reference():
    w = world()
    for k in range(5):
        w.policy(np("default", "churn", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{
            "from": [{"podSelector": {"matchLabels": {"v": str(k)}}}, {"ipBlock": {"cidr": f"10.{k}.0.0/16"}}],
            "ports": [{"port": "http"}]}], "egress": [{"ports": [{"port": "http"}]}]}))
    w.remove_policy("default", "churn")
    w.remove_policy("default", "from-frontend")
    stats = w.compiler.stats()
    # The node's own set stays tracked for the compiler's life, live only while a pod is isolated.
    assert stats["sets_tracked"] == 1 and stats["sets_live"] == 0 and stats["policies"] == 0
    assert w.sets == {} and w.policies == {}
