"""Service expansion and node routes: pure functions of model objects (no VPP)."""
from __future__ import annotations

import ipaddress

from vppagent.connectivity.route_scope import KIND as NODE_ROUTE
from vppagent.connectivity.feature import NodeConnectivity
from vppagent.model import Endpoint, EndpointPort, EndpointSlice, Node, Protocol, Service, ServicePort, ServiceType
from vppagent.model.k8s import AddressType
from vppagent.kinds.route_kind import Hop, OwnedRoute
from vppagent.services import Backend, Scope, ServiceTranslation, ServiceTranslations
from vppagent.services import expand_service as expand
from vppagent.vpp.cnat import Proto

ip = ipaddress.ip_address
net = ipaddress.ip_network
SVC_CIDRS = (net("10.96.0.0/12"), net("fd00:96::/108"))


SCOPE = Scope(tuple(SVC_CIDRS))


def svc(name="web", ips=("10.96.0.10",), ports=(("http", Protocol.TCP, 80),), **kw) -> Service:
    return Service("default", name, cluster_ips=tuple(ip(i) for i in ips),
                   ports=tuple(ServicePort(n, p, port, port) for n, p, port in ports), **kw)


def eps(name="web-1", service="web", addrs=("10.244.1.5",), ports=(("http", Protocol.TCP, 8080),),
        family=AddressType.IPV4, ready=True) -> EndpointSlice:
    return EndpointSlice("default", name, service_name=service, address_type=family,
                         ports=tuple(EndpointPort(n, p, port) for n, p, port in ports),
                         endpoints=tuple(Endpoint((ip(a),), ready=ready) for a in addrs))


def test_each_port_and_protocol_gets_a_translation_to_ready_endpoints_at_the_slice_port() -> None:
    s = svc(ports=(("http", Protocol.TCP, 80), ("dns", Protocol.UDP, 53), ("sig", Protocol.SCTP, 9000)))
    slices = [
        eps("a", addrs=("10.244.1.5", "10.244.2.6"),
            ports=(("http", Protocol.TCP, 8080), ("dns", Protocol.UDP, 5353), ("sig", Protocol.SCTP, 9999))),
        eps("b", addrs=("10.244.3.7",), ports=(("http", Protocol.TCP, 8080),)),
        eps("c", addrs=("10.244.4.8",), ports=(("http", Protocol.TCP, 8080),), ready=False),
    ]
    out, problems = expand(s, slices, SCOPE)
    assert not problems
    by_port = {(t.proto, t.port): t for t in out}
    assert by_port[(Proto.TCP, 80)].backends == (
        Backend(ip("10.244.1.5"), 8080), Backend(ip("10.244.2.6"), 8080), Backend(ip("10.244.3.7"), 8080))
    assert by_port[(Proto.UDP, 53)].backends == (Backend(ip("10.244.1.5"), 5353), Backend(ip("10.244.2.6"), 5353))
    assert by_port[(Proto.SCTP, 9000)].backends == (Backend(ip("10.244.1.5"), 9999), Backend(ip("10.244.2.6"), 9999))


def test_dual_stack_service_gets_one_translation_per_family_with_that_familys_endpoints() -> None:
    s = svc(ips=("10.96.0.10", "fd00:96::10"))
    out, _ = expand(s, [eps("v4"), eps("v6", addrs=("fd00:244::5",), family=AddressType.IPV6)], SCOPE)
    assert {(str(t.vip), t.backends[0].address.version) for t in out} == {("10.96.0.10", 4), ("fd00:96::10", 6)}


def test_no_translation_without_ready_endpoints_headless_or_external_name() -> None:
    assert expand(svc(), [eps(ready=False)], SCOPE) == ([], [])
    assert expand(svc(), [], SCOPE) == ([], [])
    assert expand(svc(ips=(), headless=True), [eps()], SCOPE) == ([], [])
    assert expand(svc(ips=(), type=ServiceType.EXTERNAL_NAME), [eps()], SCOPE) == ([], [])


def test_cluster_ip_outside_the_service_cidrs_is_a_problem_not_a_translation() -> None:
    out, problems = expand(svc(ips=("192.168.7.7",)), [eps()], SCOPE)
    assert out == []
    assert [p.reason for p in problems] == ["ClusterIPOutsideServiceCIDRs"]
    assert "192.168.7.7" in problems[0].message


def test_backends_compare_as_sets() -> None:
    a = ServiceTranslation(ip("10.96.0.1"), Proto.TCP, 80, (Backend(ip("10.0.0.2"), 1), Backend(ip("10.0.0.1"), 1)))
    b = ServiceTranslation(ip("10.96.0.1"), Proto.TCP, 80, (Backend(ip("10.0.0.1"), 1), Backend(ip("10.0.0.2"), 1),
                                                            Backend(ip("10.0.0.1"), 1)))
    assert a == b


class View:
    def __init__(self, services=(), slices=(), nodes=()):
        self.services = {s.key: s for s in services}
        self._slices = list(slices)
        self.nodes = {n.name: n for n in nodes}

    def slices_of(self, key):
        return [s for s in self._slices if s.service_key == key]


def test_service_feature_memoizes_unchanged_services() -> None:
    f = ServiceTranslations(SVC_CIDRS)
    view = View([svc("a", ips=("10.96.0.1",)), svc("b", ips=("10.96.0.2",))],
                [eps("a1", service="a"), eps("b1", service="b")])
    first, _ = f.desired(view)
    second, _ = f.desired(view)
    assert [i.value for i in first] == [i.value for i in second]
    assert all(x is y for x, y in zip(first, second))  # not recomputed
    assert {i.origin.name for i in first} == {"a", "b"}


def node(name, cidrs, ips=()) -> Node:
    return Node(name, pod_cidrs=tuple(net(c) for c in cidrs), internal_ips=tuple(ip(i) for i in ips))


def test_a_route_per_other_nodes_pod_cidr_via_its_internal_ip_of_that_family() -> None:
    f = NodeConnectivity("me", (net("10.244.0.0/16"), net("fd00:244::/56")), mode="flat")
    view = View(nodes=[node("me", ["10.244.1.0/24"], ["192.168.0.1"]),
                       node("b", ["10.244.2.0/24", "fd00:244:0:2::/64"], ["192.168.0.2", "fd00::2"]),
                       node("c", ["10.244.3.0/24"], ["192.168.0.3"])])
    intents, problems = f.desired(view)
    assert not problems
    assert {i.value for i in intents} == {
        OwnedRoute(net("10.244.2.0/24"), (Hop(ip("192.168.0.2")),)),
        OwnedRoute(net("fd00:244:0:2::/64"), (Hop(ip("fd00::2")),)),
        OwnedRoute(net("10.244.3.0/24"), (Hop(ip("192.168.0.3")),)),
    }
    assert all(i.kind == NODE_ROUTE for i in intents)


def test_node_routes_report_nodes_they_cannot_route_to() -> None:
    f = NodeConnectivity("me", (net("10.244.0.0/16"),), mode="flat")
    view = View(nodes=[node("me", ["10.244.1.0/24"]),
                       node("outside", ["172.16.0.0/24"], ["192.168.0.9"]),
                       node("overlap", ["10.244.1.0/25"], ["192.168.0.8"]),
                       node("no-ip", ["10.244.5.0/24"])])
    intents, problems = f.desired(view)
    assert intents == []
    assert sorted((p.origin.name, p.reason) for p in problems) == [
        ("no-ip", "NoInternalIP"), ("outside", "PodCIDROutsideClusterCIDRs"), ("overlap", "PodCIDROverlap")]


def test_node_routes_own_cluster_prefixes_but_not_this_nodes_or_host_routes() -> None:
    f = NodeConnectivity("me", (net("10.244.0.0/16"),), mode="flat")
    f.desired(View(nodes=[node("me", ["10.244.1.0/24"])]))
    assert f.owns(0, net("10.244.9.0/24"))
    assert not f.owns(0, net("10.244.1.0/24"))  # this node's: CNI's
    assert not f.owns(0, net("10.244.9.5/32"))  # a host route: a pod's
    assert not f.owns(0, net("192.168.0.0/24"))  # outside the cluster
    assert not f.owns(7, net("10.244.9.0/24"))  # another table


def test_bulk_request_fields_are_what_the_vpp_layer_sends() -> None:
    from types import SimpleNamespace

    from vppagent.vpp import cnat
    from vppagent.vpp.cnat import translation_fields

    class Capture:
        def call(self, name, **fields):
            self.sent = (name, fields)
            return SimpleNamespace(id=7)

    for vip, backends in (("10.96.0.1", ("10.244.1.1", "10.244.2.2")), ("fd00:96::1", ("fd00:244::1",))):
        t = ServiceTranslation(ip(vip), Proto.UDP, 53, tuple(Backend(ip(b), 5353) for b in backends))
        vpp = Capture()
        assert cnat.update_translation(vpp, t.spec()) == 7
        assert vpp.sent == ("cnat_translation_update", t.request_fields())
        assert translation_fields(t.spec()) == t.request_fields()
