"""The reconciler with the real kinds, against the emulator (a test double of VPP) and a real VPP.

Loopbacks (tag ownership), pod routes through a loopback (a dependency and a
recorded sw_if_index), node routes (prefix ownership) and service
translations (VIP ownership, recorded ids): cold start, zero-call re-apply,
adoption by a restarted agent, stale and foreign objects, VPP restart.
"""
from __future__ import annotations

import ipaddress
import time
from collections import Counter

from tests.cluster import mutating
from vppagent.connectivity.feature import NodeConnectivity
from vppagent.model import Endpoint, EndpointPort, EndpointSlice, Node, Protocol, Service, ServicePort
from vppagent.reconcile import Intent, Key, Reconciler
from vppagent.kinds.loopback_kind import Loopback, LoopbackDescriptor
from vppagent.kinds.route_kind import Hop, OwnedRoute, RouteDescriptor
from vppagent.services import ServiceTranslations
from vppagent.vpp import cnat, interfaces, routes
from vppagent.vpp.client import Connected
from vppagent.vpp.retvals import Retval

ip = ipaddress.ip_address
net = ipaddress.ip_network
CLUSTER = net("10.244.0.0/16")
OWN = net("10.244.1.0/24")


class View:
    """The cluster as the features see it."""

    def __init__(self, n_nodes: int = 3, n_services: int = 4) -> None:
        self.nodes = {"me": Node("me", pod_cidrs=(OWN,), internal_ips=(ip("192.168.0.1"),))}
        for i in range(2, 2 + n_nodes):
            self.nodes[f"n{i}"] = Node(f"n{i}", pod_cidrs=(net(f"10.244.{i}.0/24"),),
                                       internal_ips=(ip(f"192.168.0.{i}"),))
        self.services = {}
        self._slices = {}
        for i in range(n_services):
            s = Service("default", f"s{i}", cluster_ips=(ip(f"10.96.0.{10 + i}"),),
                        ports=(ServicePort("http", Protocol.TCP, 80, 8080),
                               ServicePort("dns", Protocol.UDP, 53, 53)))
            self.services[s.key] = s
            self._slices[s.key] = [EndpointSlice(
                "default", f"s{i}-a", service_name=f"s{i}",
                ports=(EndpointPort("http", Protocol.TCP, 8080), EndpointPort("dns", Protocol.UDP, 53)),
                endpoints=tuple(Endpoint((ip(f"10.244.{2 + j}.{10 + i}"),)) for j in range(3)))]

    def slices_of(self, key):
        return self._slices.get(key, [])


class Agent:
    """A reconciler with every kind, as ``vppagent run`` plus pod routes would set it up."""

    def __init__(self, vpp) -> None:
        self.vpp = vpp
        self.r = Reconciler(vpp, chunk=5)  # small chunks: batching over several bulks is exercised
        self.nodes = NodeConnectivity("me", (CLUSTER,), mode="flat")
        self.services = ServiceTranslations((net("10.96.0.0/12"),))
        self.r.register(LoopbackDescriptor())
        self.r.register(RouteDescriptor(
            "pod-route", lambda t, p: t == 0 and p.prefixlen == 32 and p.subnet_of(OWN),
            lambda: [(0, False)], interface_kinds=("loopback",)))
        for f in (self.nodes, self.services):
            for d in f.descriptors():
                self.r.register(d)

    def want(self, view: View, pods: int = 5) -> None:
        intents = [Intent("loopback", Loopback("pods"))]
        intents += [Intent("pod-route", OwnedRoute(net(f"10.244.1.{10 + i}/32"), (Hop(via=Key("loopback", "pods")),)))
                    for i in range(pods)]
        for f in (self.nodes, self.services):
            fi, problems = f.desired(view)
            assert not problems
            intents += fi
        self.r.set_desired(intents)


def picture(vpp) -> dict:
    """What VPP holds, comparably (ids and indexes left out)."""
    loops = sorted((i.name, i.tag, i.admin_up) for i in interfaces.dump(vpp) if i.name.startswith("loop"))
    # A real VPP reports a host route through an interface with the host as
    # next hop; the emulator reports none. Both mean the same route.
    def nh(r, p):
        same = r.prefix.prefixlen == r.prefix.max_prefixlen and p.next_hop == r.prefix.network_address
        return "None" if same else str(p.next_hop)
    rts = sorted((str(r.prefix), tuple(sorted((nh(r, p), p.sw_if_index) for p in r.paths)))
                 for r in routes.dump(vpp) if r.prefix.prefixlen not in (0,) and r.paths
                 and all(p.type == routes.PathType.NORMAL for p in r.paths))
    trs = sorted((str(t.vip.address), t.vip.port, int(t.proto), tuple(sorted(str(p.dst.address) for p in t.paths)))
                 for t in cnat.dump_translations(vpp))
    return {"loopbacks": loops, "routes": rts, "translations": trs}


def test_cold_start_programs_everything_and_reapplying_makes_no_call(connect) -> None:
    vpp = connect()
    a = Agent(vpp)
    a.want(View())
    res = a.r.converge()
    assert res.failed == 0 and res.waiting == 0
    assert res.created == 1 + 5 + 3 + 8  # loopback, pod routes, node routes, 4 services x 2 ports
    p = picture(vpp)
    assert [t for t in p["loopbacks"] if t[1] == "vppagent:lo:pods"] == [("loop3000", "vppagent:lo:pods", True)]
    lo = a.r.applied.handle(Key("loopback", "pods"))
    assert ("10.244.1.10/32", (("None", lo),)) in p["routes"]
    assert ("10.244.2.0/24", (("192.168.0.2", 0xFFFFFFFF),)) in p["routes"]
    assert len(p["translations"]) == 8
    # Recorded what VPP returned: the translation ids.
    ids = {t.id for t in cnat.dump_translations(vpp)}
    recorded = {a.r.applied.get(k).handle for k in a.r.applied if k.kind == "cnat-translation"}
    assert recorded == ids

    before = Counter(vpp.calls)
    a.want(View())
    res = a.r.converge()
    assert res.calls == 0 and vpp.calls == before


def test_restarted_agent_adopts_what_matches_without_a_mutating_call(connect) -> None:
    first = Agent(connect())
    first.want(View())
    first.r.converge()
    expected = picture(first.vpp)

    vpp = connect()
    second = Agent(vpp)
    second.want(View())
    before = Counter(vpp.calls)
    res = second.r.converge()
    assert mutating(vpp.calls, before) == {}
    assert res.created == res.updated == res.deleted == 0
    assert second.r.in_sync()
    assert picture(vpp) == expected
    # Handles were learnt from the dumps: a change now goes to the right objects.
    view = View()
    svc = next(iter(view.services))
    view._slices[svc] = []  # s0 lost its endpoints
    second.want(view)
    res = second.r.converge()
    assert res.deleted == 2 and res.created == 0


def test_stale_owned_objects_are_deleted_and_foreign_ones_kept(connect) -> None:
    other = connect()  # "someone else" (an operator, another controller)
    foreign_lo = interfaces.create_loopback(other)
    tagged_lo = interfaces.create_loopback(other)
    interfaces.set_tag(other, tagged_lo, "someone:else")
    routes.add(other, routes.Route.of("192.168.50.0/24", routes.Path(next_hop=ip("192.168.0.1"))))
    routes.add(other, routes.Route.of("10.244.1.0/24", routes.Path(next_hop=ip("192.168.0.1"))))  # our own CIDR
    foreign_tr = cnat.update_translation(other, cnat.TranslationSpec(
        cnat.Endpoint.of("172.30.0.1", 80), cnat.Proto.TCP, (cnat.Path(cnat.Endpoint.of("10.0.0.1", 80)),)))
    # What a previous agent left: ours, no longer wanted.
    stale_lo = interfaces.create_loopback(other)
    interfaces.set_tag(other, stale_lo, "vppagent:lo:old")
    crashed_lo = interfaces.create_loopback(other, instance=3007)  # created, then killed before tagging
    routes.add(other, routes.Route.of("10.244.77.0/24", routes.Path(next_hop=ip("192.168.0.77"))))
    cnat.update_translation(other, cnat.TranslationSpec(
        cnat.Endpoint.of("10.96.5.5", 80), cnat.Proto.TCP, (cnat.Path(cnat.Endpoint.of("10.0.0.1", 80)),)))

    names = {i.sw_if_index: i.name for i in interfaces.dump(other)}

    a = Agent(connect())
    a.want(View())
    res = a.r.converge()
    assert res.deleted == 4 and res.failed == 0

    loops = {i.name: i.tag for i in interfaces.dump(other)}
    assert names[foreign_lo] in loops and loops[names[tagged_lo]] == "someone:else"
    # (VPP reuses sw_if_indexes: compare by name)
    assert names[stale_lo] not in loops and names[crashed_lo] == "loop3007"
    assert sorted(n for n, tag in loops.items() if tag.startswith("vppagent:")) == ["loop3000"]
    prefixes = {str(r.prefix) for r in routes.dump(other)}
    assert {"192.168.50.0/24", "10.244.1.0/24"} <= prefixes
    assert "10.244.77.0/24" not in prefixes
    vips = {(str(t.vip.address), t.id) for t in cnat.dump_translations(other)}
    assert ("172.30.0.1", foreign_tr) in vips
    assert not any(v == "10.96.5.5" for v, _ in vips)


def test_vpp_restart_triggers_a_full_reprogram(backend, connect) -> None:
    vpp = connect(auto_reconnect=True)
    events: list = []
    vpp.subscribe(events.append)
    a = Agent(vpp)
    a.want(View())
    a.r.converge()
    expected = picture(vpp)

    backend.restart()
    deadline = time.monotonic() + 30
    while not any(isinstance(e, Connected) and e.reconnect for e in events):
        assert time.monotonic() < deadline, "client did not reconnect"
        time.sleep(0.01)
    assert picture(vpp)["translations"] == []  # VPP came back empty

    a.r.needs_resync = True  # what the agent does on Connected(reconnect=True)
    res = a.r.converge()
    assert res.created == 1 + 5 + 3 + 8 and res.failed == 0
    assert picture(vpp) == expected
    assert a.r.in_sync()


def test_an_object_vpp_refuses_is_recorded_and_the_rest_converges(connect) -> None:
    vpp = connect()
    now = [0.0]
    r = Reconciler(vpp, clock=lambda: now[0])
    r.register(RouteDescriptor("r", lambda t, p: p.subnet_of(CLUSTER), lambda: [(0, False), (42, False)]))
    good = OwnedRoute(net("10.244.5.0/24"), (Hop(ip("192.168.0.5")),))
    bad = OwnedRoute(net("10.244.6.0/24"), (Hop(ip("192.168.0.6")),), table_id=42)  # no table 42
    r.set_desired([Intent("r", good), Intent("r", bad)])
    res = r.converge()
    assert res.created == 1 and res.failed == 1
    f = r.failures[Key("r", (42, bad.prefix))]
    assert f.error.retval == Retval.NO_SUCH_FIB and f.retriable and f.op == "create"
    assert routes.lookup(vpp, "10.244.5.0/24") is not None

    routes.add_table(vpp, 42)  # what was missing appears: the retry succeeds
    try:
        now[0] = r.next_retry_at()
        assert r.converge().created == 1
        assert r.in_sync() and not r.failures
    finally:
        r.set_desired([])
        r.converge()
        routes.delete_table(vpp, 42)
