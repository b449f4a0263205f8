"""Service expansion: every service type and policy, as pure functions of model objects (no VPP)."""
from __future__ import annotations

import pytest

from tests.services.helpers import (
    AddressType,
    Protocol,
    ServiceType,
    ep,
    eps,
    ip,
    port,
    scope,
    svc,
)
from vppagent.model.k8s import SessionAffinity, TrafficPolicy
from vppagent.services import Backend, flow_hash_of
from vppagent.services import expand_service as expand
from vppagent.vpp.cnat import LbType, Proto


def by_vip(translations):
    return {(str(t.vip), t.proto, t.port): t for t in translations}


def backends(t):
    return {(str(b.address), b.port) for b in t.backends}


def test_cluster_ip_every_port_and_protocol_at_the_slice_port() -> None:
    s = svc(ports=[port("http", Protocol.TCP, 80), port("dns", Protocol.UDP, 53), port("sig", Protocol.SCTP, 9000)])
    sl = eps(endpoints=[ep("10.244.1.5"), ep("10.244.2.6", node="node-2")],
             ports=(("http", Protocol.TCP, 8080), ("dns", Protocol.UDP, 5353), ("sig", Protocol.SCTP, 9999)))
    out, problems = expand(s, [sl], scope())
    assert problems == []
    got = by_vip(out)
    assert set(got) == {("10.96.0.10", Proto.TCP, 80), ("10.96.0.10", Proto.UDP, 53), ("10.96.0.10", Proto.SCTP, 9000)}
    assert backends(got[("10.96.0.10", Proto.UDP, 53)]) == {("10.244.1.5", 5353), ("10.244.2.6", 5353)}
    assert all(not t.is_real_ip and t.flow_hash == 0x1F and t.lb_type is LbType.DEFAULT for t in out)


def test_named_target_port_resolves_per_endpoint_through_its_slice() -> None:
    # Two pods number the named port differently: the controller puts them in two slices.
    s = svc(ports=[port("web", Protocol.TCP, 80, target="web-port")])
    a = eps("web-a", endpoints=[ep("10.244.1.5")], ports=(("web", Protocol.TCP, 8080),))
    b = eps("web-b", endpoints=[ep("10.244.1.6")], ports=(("web", Protocol.TCP, 9090),))
    out, _ = expand(s, [a, b], scope())
    assert backends(out[0]) == {("10.244.1.5", 8080), ("10.244.1.6", 9090)}


def test_node_port_on_every_address_of_this_node_and_the_cluster_ip() -> None:
    s = svc(type=ServiceType.NODE_PORT, ports=[port("http", Protocol.TCP, 80, node_port=30080)])
    sc = scope(node_ips=(ip("192.168.0.1"), ip("198.51.100.7")))
    out, problems = expand(s, [eps(endpoints=[ep("10.244.1.5")])], sc)
    assert problems == []
    got = by_vip(out)
    assert set(got) == {("10.96.0.10", Proto.TCP, 80), ("192.168.0.1", Proto.TCP, 30080),
                        ("198.51.100.7", Proto.TCP, 30080)}
    assert got[("192.168.0.1", Proto.TCP, 30080)].is_real_ip
    assert not got[("10.96.0.10", Proto.TCP, 80)].is_real_ip
    assert all(sc.owns(t.vip, t.port) for t in out)


def test_node_port_outside_the_range_is_a_problem_and_the_cluster_ip_still_served() -> None:
    s = svc(type=ServiceType.NODE_PORT, ports=[port("http", Protocol.TCP, 80, node_port=8080)])
    out, problems = expand(s, [eps(endpoints=[ep("10.244.1.5")])], scope())
    assert [(str(t.vip), t.port) for t in out] == [("10.96.0.10", 80)]
    assert [p.reason for p in problems] == ["NodePortOutsideRange"]


def test_load_balancer_ingress_and_external_ips_at_the_service_port() -> None:
    s = svc(type=ServiceType.LOAD_BALANCER, ports=[port("http", Protocol.TCP, 80, node_port=30080)],
            lb_ingress_ips=(ip("203.0.113.10"),), external_ips=(ip("203.0.113.11"), ip("198.18.0.1")))
    out, problems = expand(s, [eps(endpoints=[ep("10.244.1.5")])], scope())
    got = by_vip(out)
    assert ("203.0.113.10", Proto.TCP, 80) in got and ("203.0.113.11", Proto.TCP, 80) in got
    assert ("192.168.0.1", Proto.TCP, 30080) in got  # LoadBalancer services have node ports too
    assert not any(v == "198.18.0.1" for v, _, _ in got)
    assert [p.reason for p in problems] == ["ExternalIPOutsideExternalCIDRs"]
    assert "198.18.0.1" in problems[0].message


def test_dual_stack_each_family_gets_its_own_endpoints_and_node_address() -> None:
    s = svc(ips=("10.96.0.10", "fd00:96::10"), type=ServiceType.NODE_PORT,
            ports=[port("http", Protocol.TCP, 80, node_port=30080)])
    v4 = eps("web-4", endpoints=[ep("10.244.1.5")])
    v6 = eps("web-6", endpoints=[ep("fd00:244::5")], family=AddressType.IPV6)
    out, _ = expand(s, [v4, v6], scope())
    got = {(str(t.vip), t.port): backends(t) for t in out}
    assert got == {("10.96.0.10", 80): {("10.244.1.5", 8080)}, ("fd00:96::10", 80): {("fd00:244::5", 8080)},
                   ("192.168.0.1", 30080): {("10.244.1.5", 8080)}, ("fd00:c0::1", 30080): {("fd00:244::5", 8080)}}


def test_ready_endpoints_only_and_terminating_ones_only_when_none_is_ready() -> None:
    s = svc()
    mixed = eps(endpoints=[ep("10.244.1.5"), ep("10.244.1.6", ready=False, serving=True, terminating=True),
                           ep("10.244.1.7", ready=False, serving=False)])
    out, _ = expand(s, [mixed], scope())
    assert backends(out[0]) == {("10.244.1.5", 8080)}
    draining = eps(endpoints=[ep("10.244.1.6", ready=False, serving=True, terminating=True),
                              ep("10.244.1.7", ready=False, serving=False, terminating=True),
                              ep("10.244.1.8", ready=False, serving=False)])
    out, _ = expand(s, [draining], scope())
    assert backends(out[0]) == {("10.244.1.6", 8080)}  # serving + terminating (KEP-1669)
    out, _ = expand(s, [eps(endpoints=[ep("10.244.1.8", ready=False, serving=False)])], scope())
    assert out == []  # nothing to send to: no translation (VPP 26.06 cannot hold a path-less one)


def test_external_traffic_policy_local_keeps_local_endpoints_on_external_vips_only() -> None:
    s = svc(type=ServiceType.NODE_PORT, ports=[port("http", Protocol.TCP, 80, node_port=30080)],
            external_ips=(ip("203.0.113.11"),), external_traffic_policy=TrafficPolicy.LOCAL)
    sl = eps(endpoints=[ep("10.244.1.5"), ep("10.244.2.6", node="node-2")])
    got = by_vip(expand(s, [sl], scope())[0])
    assert backends(got[("10.96.0.10", Proto.TCP, 80)]) == {("10.244.1.5", 8080), ("10.244.2.6", 8080)}
    assert backends(got[("192.168.0.1", Proto.TCP, 30080)]) == {("10.244.1.5", 8080)}
    assert backends(got[("203.0.113.11", Proto.TCP, 80)]) == {("10.244.1.5", 8080)}
    # No local endpoint: the external VIPs get no translation; the cluster IP still does.
    remote_only = eps(endpoints=[ep("10.244.2.6", node="node-2")])
    assert {k[0] for k in by_vip(expand(s, [remote_only], scope())[0])} == {"10.96.0.10"}


def test_internal_traffic_policy_local_keeps_local_endpoints_on_cluster_ips_only() -> None:
    s = svc(type=ServiceType.NODE_PORT, ports=[port("http", Protocol.TCP, 80, node_port=30080)],
            internal_traffic_policy=TrafficPolicy.LOCAL)
    sl = eps(endpoints=[ep("10.244.1.5"), ep("10.244.2.6", node="node-2")])
    got = by_vip(expand(s, [sl], scope())[0])
    assert backends(got[("10.96.0.10", Proto.TCP, 80)]) == {("10.244.1.5", 8080)}
    assert backends(got[("192.168.0.1", Proto.TCP, 30080)]) == {("10.244.1.5", 8080), ("10.244.2.6", 8080)}


def test_client_ip_affinity_hashes_on_the_source_address_only() -> None:
    s = svc(session_affinity=SessionAffinity.CLIENT_IP, session_affinity_timeout_s=600)
    out, _ = expand(s, [eps(endpoints=[ep("10.244.1.5")])], scope())
    assert out[0].flow_hash == flow_hash_of(["src-ip"]) == 0x1


def test_configured_hash_fields_become_the_flow_hash() -> None:
    assert flow_hash_of(["src-ip", "dst-ip", "src-port", "dst-port", "proto"]) == 0x1F
    sc = scope(flow_hash=flow_hash_of(["src-ip", "dst-port"]))
    out, _ = expand(svc(), [eps(endpoints=[ep("10.244.1.5")])], sc)
    assert out[0].flow_hash == 0x9
    with pytest.raises(ValueError, match="unknown hash field"):
        flow_hash_of(["src-mac"])


@pytest.mark.parametrize("value,want", [("maglev", LbType.MAGLEV), ("hash", LbType.DEFAULT), ("Maglev", LbType.MAGLEV)])
def test_lb_annotation_selects_the_load_balancing_type(value, want) -> None:
    out, problems = expand(svc(annotations={"vppagent.io/lb": value}), [eps(endpoints=[ep("10.244.1.5")])], scope())
    assert problems == [] and out[0].lb_type is want


def test_invalid_lb_annotation_is_a_problem_and_falls_back_to_hash() -> None:
    out, problems = expand(svc(annotations={"vppagent.io/lb": "round-robin"}), [eps(endpoints=[ep("10.244.1.5")])],
                           scope())
    assert out[0].lb_type is LbType.DEFAULT
    assert [p.reason for p in problems] == ["InvalidLoadBalancingMode"] and "round-robin" in problems[0].message


@pytest.mark.parametrize("bad", [
    dict(ports=[port(number=0)]),
    dict(ports=[port(number=70000)]),
    dict(ports=[port(proto="ICMP")]),
    dict(ips=("not-an-ip",)),
    dict(type=ServiceType.NODE_PORT, ports=[port(node_port=0)]),
])
def test_invalid_service_is_skipped_whole_with_a_problem(bad) -> None:
    out, problems = expand(svc(**bad), [eps(endpoints=[ep("10.244.1.5")])], scope())
    assert out == []
    assert [p.reason for p in problems] == ["InvalidService"]


def test_invalid_endpoint_is_skipped_alone() -> None:
    sl = eps(endpoints=[ep("10.244.1.5"), ep("fd00:244::9")])  # an IPv6 address in an IPv4 slice
    out, problems = expand(svc(), [sl], scope())
    assert backends(out[0]) == {("10.244.1.5", 8080)}
    assert [p.reason for p in problems] == ["InvalidEndpointAddress"]
    assert problems[0].origin == sl.key
    bad_port = eps("web-b", endpoints=[ep("10.244.1.6")], ports=(("http", Protocol.TCP, 0),))
    out, problems = expand(svc(), [eps(endpoints=[ep("10.244.1.5")]), bad_port], scope())
    assert backends(out[0]) == {("10.244.1.5", 8080)}
    assert [p.reason for p in problems] == ["InvalidEndpointPort"]


def test_cluster_ip_outside_the_service_cidrs_is_a_problem() -> None:
    out, problems = expand(svc(ips=("192.168.7.7",)), [eps(endpoints=[ep("10.244.1.5")])], scope())
    assert out == [] and [p.reason for p in problems] == ["ClusterIPOutsideServiceCIDRs"]


def test_headless_and_external_name_have_no_translation() -> None:
    assert expand(svc(ips=(), headless=True), [eps(endpoints=[ep("10.244.1.5")])], scope()) == ([], [])
    assert expand(svc(ips=(), type=ServiceType.EXTERNAL_NAME), [], scope()) == ([], [])


def test_ownership_covers_node_ports_only_in_range_on_node_addresses() -> None:
    sc = scope()
    assert sc.owns(ip("10.96.1.1"), 80) and sc.owns(ip("203.0.113.9"), 443)
    assert sc.owns(ip("192.168.0.1"), 30000) and sc.owns(ip("192.168.0.1"), 32767)
    assert not sc.owns(ip("192.168.0.1"), 80)  # the node's own services are not ours
    assert not sc.owns(ip("192.168.0.2"), 30080)  # another node's address
    assert not sc.owns(ip("8.8.8.8"), 53)


def test_backend_sets_compare_as_sets() -> None:
    out1, _ = expand(svc(), [eps(endpoints=[ep("10.244.1.6"), ep("10.244.1.5")])], scope())
    out2, _ = expand(svc(), [eps(endpoints=[ep("10.244.1.5"), ep("10.244.1.6"), ep("10.244.1.5")])], scope())
    assert out1 == out2
    assert out1[0].backends == (Backend(ip("10.244.1.5"), 8080), Backend(ip("10.244.1.6"), 8080))
