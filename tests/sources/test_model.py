"""The Kubernetes-facing model: conversion, API defaults, validation errors, hashing."""
from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest

from testbed.fakekube import objects as k
from vppagent.model import (
    AddressType,
    ContainerPort,
    Endpoint,
    EndpointPort,
    FrozenMap,
    InvalidObject,
    IPBlock,
    LabelSelector,
    ObjectKey,
    Operator,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    PolicyType,
    Protocol,
    Requirement,
    ServicePort,
    ServiceType,
    SessionAffinity,
    TrafficPolicy,
    from_api,
)

ip = ipaddress.ip_address
net = ipaddress.ip_network


def with_meta(obj: dict, uid: str = "u-1") -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["uid"] = uid
    obj["metadata"]["resourceVersion"] = "42"
    return obj


# -- conversions and defaults ---------------------------------------------------------


def test_node_keeps_cidrs_addresses_and_only_vppagent_annotations() -> None:
    node = from_api("Node", with_meta(k.node(
        "n1", pod_cidrs=["10.244.1.0/24", "fd00:10:244:1::/64"], internal_ip="192.168.0.1",
        labels={"zone": "a"},
        annotations={"vppagent.io/encryption": "ipsec", "kubectl.kubernetes.io/last-applied": "{}"})))
    assert node.pod_cidrs == (net("10.244.1.0/24"), net("fd00:10:244:1::/64"))
    assert node.internal_ips == (ip("192.168.0.1"),)
    assert node.annotations == {"vppagent.io/encryption": "ipsec"}
    assert node.labels == {"zone": "a"}
    assert node.key == ObjectKey("Node", "", "n1")


def test_node_falls_back_to_singular_pod_cidr() -> None:
    obj = {"kind": "Node", "metadata": {"name": "old"}, "spec": {"podCIDR": "10.0.0.0/24"}}
    assert from_api("Node", obj).pod_cidrs == (net("10.0.0.0/24"),)


def test_pod_ips_named_ports_and_lifecycle() -> None:
    obj = k.pod("web", "shop", node="n1", ips=["10.244.1.7", "fd00::7"], labels={"app": "web"},
                ports=[{"name": "http", "containerPort": 8080}, {"containerPort": 9090},
                       {"name": "dns", "containerPort": 53, "protocol": "UDP"}])
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    pod = from_api("Pod", obj)
    assert pod.ips == (ip("10.244.1.7"), ip("fd00::7"))
    assert pod.ports == (ContainerPort("http", Protocol.TCP, 8080), ContainerPort("dns", Protocol.UDP, 53))
    assert pod.named_port("dns", Protocol.UDP) == 53 and pod.named_port("dns", Protocol.TCP) is None
    assert pod.deleted and pod.phase == "Running" and not pod.terminal
    assert pod.key == ObjectKey("Pod", "shop", "web")


def test_service_applies_api_defaults() -> None:
    svc = from_api("Service", k.service("web", ports=[{"port": 80}], sessionAffinity="ClientIP"))
    assert svc.type is ServiceType.CLUSTER_IP
    assert svc.ports == (ServicePort("", Protocol.TCP, 80, 80, None),)  # targetPort defaults to port
    assert svc.session_affinity is SessionAffinity.CLIENT_IP
    assert svc.session_affinity_timeout_s == 10800
    assert svc.external_traffic_policy is TrafficPolicy.CLUSTER
    assert svc.internal_traffic_policy is TrafficPolicy.CLUSTER


def test_service_load_balancer_fields() -> None:
    obj = k.service("lb", type="LoadBalancer", cluster_ip="10.96.0.5",
                    ports=[{"name": "https", "port": 443, "targetPort": "https", "nodePort": 30443,
                            "protocol": "TCP"}],
                    externalIPs=["203.0.113.9"], externalTrafficPolicy="Local",
                    sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}, sessionAffinity="ClientIP")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}, {"hostname": "elb.example"}]}}
    svc = from_api("Service", obj)
    assert svc.ports == (ServicePort("https", Protocol.TCP, 443, "https", 30443),)
    assert svc.external_ips == (ip("203.0.113.9"),)
    assert svc.lb_ingress_ips == (ip("198.51.100.1"),)
    assert svc.external_traffic_policy is TrafficPolicy.LOCAL
    assert svc.session_affinity_timeout_s == 60


def test_headless_and_external_name_services_have_no_cluster_ips() -> None:
    headless = from_api("Service", k.service("h", cluster_ip="None"))
    assert headless.headless and headless.cluster_ips == ()
    ext = from_api("Service", k.service("x", type="ExternalName", cluster_ip="", externalName="db.example"))
    assert ext.type is ServiceType.EXTERNAL_NAME and ext.cluster_ips == () and not ext.headless


def test_endpointslice_condition_defaults_follow_the_api() -> None:
    obj = k.endpointslice("web-1", service="web", addresses=["10.244.1.7"])
    obj["endpoints"] += [
        {"addresses": ["10.244.1.8"]},  # no conditions: ready and serving
        {"addresses": ["10.244.1.9"], "conditions": {"ready": False, "terminating": True},
         "targetRef": {"kind": "Pod", "name": "web-9"}},  # serving defers to ready
    ]
    obj["ports"].append({"name": "any"})
    eps = from_api("EndpointSlice", obj)
    assert eps.service_name == "web" and eps.service_key == ObjectKey("Service", "default", "web")
    assert eps.address_type is AddressType.IPV4
    assert eps.ports == (EndpointPort("http", Protocol.TCP, 8080), EndpointPort("any", Protocol.TCP, None))
    assert eps.endpoints[1] == Endpoint((ip("10.244.1.8"),), ready=True, serving=True, terminating=False)
    assert eps.endpoints[2] == Endpoint((ip("10.244.1.9"),), ready=False, serving=False, terminating=True,
                                        target_ref=ObjectKey("Pod", "default", "web-9"))


def test_network_policy_defaults_and_structure() -> None:
    np = from_api("NetworkPolicy", k.network_policy(
        "p", pod_selector={"matchLabels": {"app": "db"}},
        ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {}}],
                  "ports": [{"port": 5432}, {"protocol": "UDP", "port": 1000, "endPort": 2000}]},
                 {}],
        egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]))
    assert np.policy_types == {PolicyType.INGRESS, PolicyType.EGRESS}  # egress rules present
    assert np.ingress[0] == PolicyRule(
        peers=(PolicyPeer(pod_selector=LabelSelector(FrozenMap({"app": "web"})),
                          namespace_selector=LabelSelector()),),
        ports=(PolicyPort(Protocol.TCP, 5432), PolicyPort(Protocol.UDP, 1000, 2000)))
    assert np.ingress[1] == PolicyRule()  # an empty rule: every peer, every port
    assert np.egress[0].peers[0].ip_block == IPBlock(net("10.0.0.0/8"), (net("10.1.0.0/16"),))

    ingress_only = from_api("NetworkPolicy", k.network_policy("q"))
    assert ingress_only.policy_types == {PolicyType.INGRESS} and ingress_only.pod_selector.matches_everything


def test_equal_objects_are_equal_and_hash_equal_regardless_of_order_and_rv() -> None:
    a = k.network_policy("p", pod_selector={"matchExpressions": [
        {"key": "a", "operator": "In", "values": ["1", "2"]}, {"key": "b", "operator": "Exists"}]})
    b = copy.deepcopy(a)
    b["spec"]["podSelector"]["matchExpressions"].reverse()
    b["spec"]["podSelector"]["matchExpressions"][1]["values"].reverse()
    pa, pb = from_api("NetworkPolicy", with_meta(a)), from_api("NetworkPolicy", with_meta(b))
    assert pa == pb and hash(pa) == hash(pb)
    assert len({pa, pb, from_api("Node", k.node("n"))}) == 2
    with pytest.raises(AttributeError):
        pa.name = "other"  # type: ignore[misc]


# -- validation: table-driven -----------------------------------------------------------


def _set(path: list[Any], value: Any):
    def mutate(obj: dict) -> None:
        cur = obj
        for part in path[:-1]:
            cur = cur[part]
        cur[path[-1]] = value
    return mutate


INVALID = [
    ("Node", k.node("n", pod_cidrs=["10.0.0.0/24"]), ["spec", "podCIDRs", 0], "10.0.0.0/33",
     "spec.podCIDRs[0]", "not a valid CIDR"),
    ("Node", k.node("n", pod_cidrs=["10.0.0.0/24"]), ["spec", "podCIDRs", 0], "10.0.0.0",
     "spec.podCIDRs[0]", "not a valid CIDR"),
    ("Node", k.node("n", internal_ip="10.0.0.1"), ["status", "addresses", 0, "address"], "10.0.0.256",
     "status.addresses[0].address", "not a valid IP address"),
    ("Node", k.node("n"), ["metadata", "labels"], {"a": 1}, "metadata.labels['a']", "expected a string"),
    ("Node", k.node("n"), ["metadata", "name"], "", "metadata.name", "is required"),
    ("Pod", k.pod("p"), ["metadata", "namespace"], None, "metadata.namespace", "is required"),
    ("Pod", k.pod("p", ips=["10.0.0.1"]), ["status", "podIPs", 0, "ip"], "nope", "status.podIPs[0].ip",
     "not a valid IP"),
    ("Pod", k.pod("p", ports=[{"name": "http", "containerPort": 80}]),
     ["spec", "containers", 0, "ports", 0, "containerPort"], 0,
     "spec.containers[0].ports[0].containerPort", "out of range 1..65535"),
    ("Pod", k.pod("p", ports=[{"name": "http", "containerPort": 80}]),
     ["spec", "containers", 0, "ports", 0, "name"], "Not_A_Name",
     "spec.containers[0].ports[0].name", "not a valid port name"),
    ("Service", k.service("s"), ["spec", "ports", 0, "port"], 70000, "spec.ports[0].port",
     "70000 is out of range 1..65535"),
    ("Service", k.service("s"), ["spec", "ports", 0, "port"], "80", "spec.ports[0].port", "expected an integer"),
    ("Service", k.service("s"), ["spec", "ports", 0, "protocol"], "ICMP", "spec.ports[0].protocol",
     "not one of TCP, UDP, SCTP"),
    ("Service", k.service("s"), ["spec", "ports", 0, "targetPort"], 65536, "spec.ports[0].targetPort",
     "out of range"),
    ("Service", k.service("s"), ["spec", "ports", 0, "targetPort"], "8080", "spec.ports[0].targetPort",
     "not a valid port name"),
    ("Service", k.service("s"), ["spec", "ports", 0, "nodePort"], -1, "spec.ports[0].nodePort", "out of range"),
    ("Service", k.service("s"), ["spec", "clusterIPs", 0], "10.96.0.300", "spec.clusterIPs[0]", "not a valid IP"),
    ("Service", k.service("s"), ["spec", "type"], "Magic", "spec.type", "not one of"),
    ("Service", k.service("s", sessionAffinity="ClientIP"), ["spec", "sessionAffinityConfig"],
     {"clientIP": {"timeoutSeconds": 86401}}, "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
     "out of range 1..86400"),
    ("Service", k.service("s"), ["spec", "externalTrafficPolicy"], "Nearest", "spec.externalTrafficPolicy",
     "not one of Cluster, Local"),
    ("EndpointSlice", k.endpointslice("e", service="s", addresses=["10.0.0.1"]),
     ["endpoints", 0, "addresses", 0], "fd00::1", "endpoints[0].addresses[0]", "not an IPv4 address"),
    ("EndpointSlice", k.endpointslice("e", service="s", addresses=["10.0.0.1"]),
     ["ports", 0, "port"], 0, "ports[0].port", "out of range"),
    ("EndpointSlice", k.endpointslice("e", service="s", addresses=["10.0.0.1"]),
     ["addressType"], "IPv5", "addressType", "not one of IPv4, IPv6, FQDN"),
    ("EndpointSlice", k.endpointslice("e", service="s", addresses=["10.0.0.1"]),
     ["endpoints", 0, "conditions", "ready"], "yes", "endpoints[0].conditions.ready", "expected true or false"),
    ("NetworkPolicy", k.network_policy("p", pod_selector={"matchExpressions": [
        {"key": "a", "operator": "Exists"}]}), ["spec", "podSelector", "matchExpressions", 0, "operator"],
     "Matches", "spec.podSelector.matchExpressions[0].operator", "not one of In, NotIn, Exists, DoesNotExist"),
    ("NetworkPolicy", k.network_policy("p", pod_selector={"matchExpressions": [
        {"key": "a", "operator": "In", "values": ["x"]}]}),
     ["spec", "podSelector", "matchExpressions", 0, "values"], [], "spec.podSelector.matchExpressions[0].values",
     "must be non-empty for operator In"),
    ("NetworkPolicy", k.network_policy("p", pod_selector={"matchExpressions": [
        {"key": "a", "operator": "Exists"}]}),
     ["spec", "podSelector", "matchExpressions", 0, "values"], ["x"],
     "spec.podSelector.matchExpressions[0].values", "must be empty for operator Exists"),
    ("NetworkPolicy", k.network_policy("p", ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]),
     ["spec", "ingress", 0, "from", 0, "ipBlock", "except"], ["11.0.0.0/16"],
     "spec.ingress[0].from[0].ipBlock.except[0]", "not strictly within"),
    ("NetworkPolicy", k.network_policy("p", ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]),
     ["spec", "ingress", 0, "from", 0, "podSelector"], {}, "spec.ingress[0].from[0]",
     "ipBlock cannot be combined"),
    ("NetworkPolicy", k.network_policy("p", ingress=[{"from": [{"podSelector": {}}]}]),
     ["spec", "ingress", 0, "from", 0], {}, "spec.ingress[0].from[0]", "must specify"),
    ("NetworkPolicy", k.network_policy("p", egress=[{"ports": [{"port": 80}]}]),
     ["spec", "egress", 0, "ports", 0, "endPort"], 79, "spec.egress[0].ports[0].endPort", "below port 80"),
    ("NetworkPolicy", k.network_policy("p", egress=[{"ports": [{"port": "http"}]}]),
     ["spec", "egress", 0, "ports", 0, "endPort"], 90, "spec.egress[0].ports[0].endPort",
     "requires a numeric port"),
    ("NetworkPolicy", k.network_policy("p", egress=[{"ports": [{"port": 80}]}]),
     ["spec", "egress", 0, "ports", 0, "protocol"], "tcp", "spec.egress[0].ports[0].protocol", "not one of"),
    ("NetworkPolicy", k.network_policy("p"), ["spec", "policyTypes"], ["Sideways"], "spec.policyTypes[0]",
     "not one of Ingress, Egress"),
    ("NetworkPolicy", k.network_policy("p"), ["spec", "ingress"], {"from": []}, "spec.ingress",
     "expected a list"),
]


@pytest.mark.parametrize("kind,base,path,value,field,reason", INVALID,
                         ids=[f"{row[0]}:{row[4]}={row[3]!r}" for row in INVALID])
def test_invalid_field_raises_typed_error_naming_the_field(
        kind: str, base: dict, path: list, value: Any, field: str, reason: str) -> None:
    obj = copy.deepcopy(base)
    from_api(kind, obj)  # the base object is valid
    _set(path, value)(obj)
    with pytest.raises(InvalidObject) as err:
        from_api(kind, obj)
    e = err.value
    assert (e.kind, e.field) == (kind, field)
    assert reason in e.reason
    name = base["metadata"]["name"]
    if field != "metadata.name":
        assert e.name == name
    assert field in str(e) and kind in str(e)


def test_invalid_object_error_carries_namespace_and_pickles() -> None:
    import pickle

    with pytest.raises(InvalidObject) as err:
        from_api("Service", k.service("s", "shop", ports=[{"port": 0}]))
    assert err.value.object_name == "shop/s"
    again = pickle.loads(pickle.dumps(err.value))
    assert str(again) == str(err.value) == "Service shop/s: spec.ports[0].port: 0 is out of range 1..65535"


# -- selectors --------------------------------------------------------------------------

SELECTOR_CASES = [
    # (selector, labels, matches)
    ({}, {}, True),
    ({}, {"app": "web"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "fe"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
    ({"matchLabels": {"app": "web"}}, {}, False),
    ({"matchLabels": {"app": ""}}, {"app": ""}, True),
    ({"matchLabels": {"app": ""}}, {}, False),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, {"app": "api"}, True),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, {"app": "db"}, False),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, {}, False),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {"app": "db"}, True),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {"app": "web"}, False),
    # NotIn matches objects that lack the key altogether (apimachinery semantics).
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {}, True),
    ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"app": ""}, True),
    ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"other": "x"}, False),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {}, True),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {"app": "x"}, False),
    # Everything is ANDed.
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "In",
                                                            "values": ["prod"]}]},
     {"app": "web", "env": "prod"}, True),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "In",
                                                            "values": ["prod"]}]},
     {"app": "web", "env": "dev"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "DoesNotExist"}]},
     {"a": "1", "b": "2"}, False),
]


@pytest.mark.parametrize("selector,labels,expected", SELECTOR_CASES)
def test_selector_matching_follows_apimachinery(selector: dict, labels: dict, expected: bool) -> None:
    assert LabelSelector.from_api(selector).matches(labels) is expected
    assert LabelSelector.from_api(selector).matches(FrozenMap(labels)) is expected


def test_selector_string_form_is_the_query_syntax() -> None:
    sel = LabelSelector.from_api({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "env", "operator": "NotIn", "values": ["dev", "ci"]},
        {"key": "gpu", "operator": "DoesNotExist"}, {"key": "tier", "operator": "Exists"}]})
    assert str(sel) == "app=web,env notin (ci,dev),!gpu,tier"
    assert sel.match_expressions[0] == Requirement("env", Operator.NOT_IN, frozenset({"dev", "ci"}))


def test_selector_alone_reports_its_own_path() -> None:
    with pytest.raises(InvalidObject) as err:
        LabelSelector.from_api({"matchExpressions": [{"key": "a", "operator": "Like"}]})
    assert err.value.kind == "LabelSelector" and err.value.field == "selector.matchExpressions[0].operator"


def test_frozen_map_is_a_read_only_hashable_mapping() -> None:
    m = FrozenMap({"b": "2", "a": "1"})
    assert list(m) == ["a", "b"] and m == {"a": "1", "b": "2"} and hash(m) == hash(FrozenMap([("a", "1"),
                                                                                              ("b", "2")]))
    with pytest.raises(TypeError):
        m["c"] = "3"  # type: ignore[index]
