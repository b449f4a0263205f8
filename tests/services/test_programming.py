"""The services feature programmed through the reconciler into the VPP API emulator (a test double
of VPP: real socket protocol, real client), full and incremental paths, counting VPP calls."""
from __future__ import annotations

import ipaddress

from testbed.emulator.handlers.cnat import CnatState
from tests.services.conftest import Driver
from tests.services.helpers import (
    Protocol,
    ServiceType,
    delete,
    ep,
    eps,
    ip,
    node,
    port,
    svc,
    upsert,
)
from vppagent.model.k8s import SessionAffinity, TrafficPolicy
from vppagent.vpp import cnat


def picture(vpp) -> dict[tuple[str, int, int], set[str]]:
    """What VPP holds: (vip, proto, port) -> backends."""
    return {(str(t.vip.address), int(t.proto), t.vip.port): {f"{p.dst.address}:{p.dst.port}" for p in t.paths}
            for t in cnat.dump_translations(vpp)}


def emulated(emulator) -> dict[tuple[str, int, int], tuple[int, int]]:
    """What the emulated VPP keeps that its dump does not show: (lb_type, flow hash) per VIP."""
    st = emulator.state(CnatState)
    return {(str(t.vip.ip), t.proto, t.vip.port): (t.lb_type, t.flow_hash) for t in st.translations.values()}


TCP, UDP, SCTP = int(cnat.Proto.TCP), int(cnat.Proto.UDP), int(cnat.Proto.SCTP)


def a_cluster(d: Driver) -> None:
    upsert(d.cluster, node())
    upsert(d.cluster, svc("web", ports=[port("http", Protocol.TCP, 80), port("dns", Protocol.UDP, 53),
                                        port("sig", Protocol.SCTP, 9000)]))
    upsert(d.cluster, eps("web-a", "web", [ep("10.244.1.5"), ep("10.244.2.6", node="node-2")],
                          ports=(("http", Protocol.TCP, 8080), ("dns", Protocol.UDP, 5353),
                                 ("sig", Protocol.SCTP, 9999))))
    upsert(d.cluster, svc("np", ips=("10.96.0.20", "fd00:96::20"), type=ServiceType.NODE_PORT,
                          ports=[port("http", Protocol.TCP, 80, node_port=30080)],
                          external_traffic_policy=TrafficPolicy.LOCAL,
                          annotations={"vppagent.io/lb": "maglev"}))
    upsert(d.cluster, eps("np-4", "np", [ep("10.244.1.7"), ep("10.244.2.8", node="node-2")]))
    upsert(d.cluster, eps("np-6", "np", [ep("fd00:244::7")], family=eps().address_type.IPV6))
    upsert(d.cluster, svc("lb", ips=("10.96.0.30",), type=ServiceType.LOAD_BALANCER,
                          ports=[port("https", Protocol.TCP, 443, node_port=30443)],
                          lb_ingress_ips=(ip("203.0.113.10"),), external_ips=(ip("203.0.113.11"),),
                          session_affinity=SessionAffinity.CLIENT_IP, session_affinity_timeout_s=600))
    upsert(d.cluster, eps("lb-a", "lb", [ep("10.244.2.9", node="node-2")], ports=(("https", Protocol.TCP, 8443),)))
    upsert(d.cluster, svc("itp", ips=("10.96.0.40",), internal_traffic_policy=TrafficPolicy.LOCAL))
    upsert(d.cluster, eps("itp-a", "itp", [ep("10.244.1.40"), ep("10.244.2.40", node="node-2")]))
    upsert(d.cluster, svc("drain", ips=("10.96.0.50",)))
    upsert(d.cluster, eps("drain-a", "drain", [ep("10.244.1.50", ready=False, serving=True, terminating=True),
                                               ep("10.244.1.51", ready=False, serving=False, terminating=True)]))


EXPECTED = {
    ("10.96.0.10", TCP, 80): {"10.244.1.5:8080", "10.244.2.6:8080"},
    ("10.96.0.10", UDP, 53): {"10.244.1.5:5353", "10.244.2.6:5353"},
    ("10.96.0.10", SCTP, 9000): {"10.244.1.5:9999", "10.244.2.6:9999"},
    ("10.96.0.20", TCP, 80): {"10.244.1.7:8080", "10.244.2.8:8080"},
    ("fd00:96::20", TCP, 80): {"fd00:244::7:8080"},
    ("192.168.0.1", TCP, 30080): {"10.244.1.7:8080"},  # ETP Local: this node's endpoint only
    ("fd00:c0::1", TCP, 30080): {"fd00:244::7:8080"},
    ("10.96.0.30", TCP, 443): {"10.244.2.9:8443"},
    ("203.0.113.10", TCP, 443): {"10.244.2.9:8443"},
    ("203.0.113.11", TCP, 443): {"10.244.2.9:8443"},
    ("192.168.0.1", TCP, 30443): {"10.244.2.9:8443"},  # ETP Cluster: the remote backend too
    ("10.96.0.40", TCP, 80): {"10.244.1.40:8080"},  # ITP Local
    ("10.96.0.50", TCP, 80): {"10.244.1.50:8080"},  # no ready endpoint: the serving terminating one
}


def test_every_service_kind_is_programmed_as_translations(driver: Driver, emulator, vpp) -> None:
    a_cluster(driver)
    result = driver.full()
    assert result.failed == 0 and driver.problems == []
    assert picture(vpp) == EXPECTED
    kept = emulated(emulator)
    assert kept[("10.96.0.20", TCP, 80)] == (int(cnat.LbType.MAGLEV), 0x1F)  # vppagent.io/lb: maglev
    assert kept[("203.0.113.10", TCP, 443)] == (int(cnat.LbType.DEFAULT), 0x1)  # ClientIP: source address only
    assert kept[("10.96.0.10", TCP, 80)] == (int(cnat.LbType.DEFAULT), 0x1F)
    assert driver.reconciler.in_sync()


def test_programming_twice_makes_no_call_and_a_restarted_agent_adopts_everything(driver: Driver, vpp) -> None:
    a_cluster(driver)
    driver.full()
    before = driver.calls()
    assert driver.full().calls == 0
    # A new agent (fresh feature and reconciler) reads VPP back and changes nothing.
    again = Driver(vpp)
    again.cluster = driver.cluster
    before = again.calls()
    result = again.full()
    assert result.changed == 0
    assert again.mutating_since(before) == {}
    assert picture(vpp) == EXPECTED


def test_one_endpoint_change_is_one_translation_update_and_nothing_else(driver: Driver, vpp) -> None:
    a_cluster(driver)
    driver.full()
    before = driver.calls()
    key = upsert(driver.cluster, eps("web-a", "web", [ep("10.244.1.5"), ep("10.244.3.3", node="node-3")],
                                     ports=(("http", Protocol.TCP, 8080), ("dns", Protocol.UDP, 5353),
                                            ("sig", Protocol.SCTP, 9999))))
    result = driver.changed(key)
    # The slice carries three ports: three translations change, each one update; no dump, no other call.
    assert driver.all_calls_since(before) == {"cnat_translation_update": 3}
    assert (result.updated, result.created, result.deleted) == (3, 0, 0)
    assert driver.full_passes == 1  # the incremental path was taken
    want = dict(EXPECTED)
    want[("10.96.0.10", TCP, 80)] = {"10.244.1.5:8080", "10.244.3.3:8080"}
    want[("10.96.0.10", UDP, 53)] = {"10.244.1.5:5353", "10.244.3.3:5353"}
    want[("10.96.0.10", SCTP, 9000)] = {"10.244.1.5:9999", "10.244.3.3:9999"}
    assert picture(vpp) == want


def test_single_port_endpoint_change_is_exactly_one_call(driver: Driver) -> None:
    upsert(driver.cluster, node())
    for i in range(50):
        upsert(driver.cluster, svc(f"s{i}", ips=(f"10.96.1.{i + 1}",)))
        upsert(driver.cluster, eps(f"s{i}-a", f"s{i}", [ep(f"10.244.1.{i + 1}")]))
    driver.full()
    before = driver.calls()
    key = upsert(driver.cluster, eps("s7-a", "s7", [ep("10.244.1.8"), ep("10.244.2.200", node="node-2")]))
    driver.changed(key)
    assert driver.all_calls_since(before) == {"cnat_translation_update": 1}


def test_incremental_path_ends_where_a_full_recompute_ends(driver: Driver, vpp) -> None:
    a_cluster(driver)
    driver.full()
    # A series of changes through the incremental path...
    keys = [
        delete(driver.cluster, eps("lb-a", "lb", [])),  # the last endpoint of lb goes: its VIPs go
        upsert(driver.cluster, svc("new", ips=("10.96.0.60",))),
        upsert(driver.cluster, eps("new-a", "new", [ep("10.244.1.40")])),
        upsert(driver.cluster, svc("web", ports=[port("http", Protocol.TCP, 81)])),  # port 80 -> 81
    ]
    before = driver.calls()
    result = driver.changed(*keys)
    assert result.failed == 0
    assert driver.full_passes == 1
    lb_vips = {k for k in EXPECTED if k[2] in (443, 30443)}
    assert driver.all_calls_since(before) == {"cnat_translation_del": len(lb_vips) + 3,
                                              "cnat_translation_update": 2}
    incremental = picture(vpp)
    # ...ends where a fresh agent's full path ends (which then has nothing to do).
    fresh = Driver(vpp)
    fresh.cluster = driver.cluster
    assert fresh.full().changed == 0
    assert picture(vpp) == incremental
    assert ("10.96.0.10", TCP, 81) in incremental and ("10.96.0.60", TCP, 80) in incremental
    assert not lb_vips & set(incremental)


def test_lb_mode_change_replaces_the_translation(driver: Driver, emulator, vpp) -> None:
    upsert(driver.cluster, svc("web"))
    upsert(driver.cluster, eps("web-a", "web", [ep("10.244.1.5")]))
    driver.full()
    before = driver.calls()
    driver.changed(upsert(driver.cluster, svc("web", annotations={"vppagent.io/lb": "maglev"})))
    # VPP keeps the type of the first add: delete, then add.
    assert driver.mutating_since(before) == {"cnat_translation_del": 1, "cnat_translation_update": 1}
    assert emulated(emulator)[("10.96.0.10", TCP, 80)][0] == int(cnat.LbType.MAGLEV)


def test_node_address_change_moves_the_node_ports(driver: Driver, vpp) -> None:
    upsert(driver.cluster, node())
    upsert(driver.cluster, svc("np", type=ServiceType.NODE_PORT, ports=[port("http", Protocol.TCP, 80,
                                                                             node_port=30080)]))
    upsert(driver.cluster, eps("np-a", "np", [ep("10.244.1.5")]))
    driver.full()
    assert ("192.168.0.1", TCP, 30080) in picture(vpp)
    driver.changed(upsert(driver.cluster, node(ips=(ip("192.168.0.99"),))))
    got = picture(vpp)
    assert ("192.168.0.99", TCP, 30080) in got and ("192.168.0.1", TCP, 30080) not in got
    # Another node's change is not ours: nothing happens.
    before = driver.calls()
    driver.changed(upsert(driver.cluster, node("node-2", ips=(ip("192.168.0.2"),))))
    assert driver.mutating_since(before) == {}


def test_bad_input_is_skipped_with_problems_and_disturbs_nothing(driver: Driver, vpp) -> None:
    # A translation VPP holds that is not ours (VIP outside every owned range) stays untouched.
    foreign = cnat.TranslationSpec(cnat.Endpoint.of("172.16.0.1", 80), cnat.Proto.TCP,
                                   (cnat.Path(cnat.Endpoint.of("10.0.0.1", 80)),))
    foreign_id = cnat.update_translation(vpp, foreign)
    upsert(driver.cluster, node())
    upsert(driver.cluster, svc("good"))
    upsert(driver.cluster, eps("good-a", "good", [ep("10.244.1.5")]))
    driver.full()
    good = picture(vpp)
    before = driver.calls()
    keys = [
        upsert(driver.cluster, svc("port0", ips=("10.96.0.50",), ports=[port(number=0)])),
        upsert(driver.cluster, eps("port0-a", "port0", [ep("10.244.1.6")])),
        upsert(driver.cluster, svc("icmp", ips=("10.96.0.51",), ports=[port(proto="ICMP")])),
        upsert(driver.cluster, svc("badip", ips=("10.96.0.999",))),
        upsert(driver.cluster, svc("outside", ips=("192.168.50.1",))),
        upsert(driver.cluster, eps("outside-a", "outside", [ep("10.244.1.7")])),
        upsert(driver.cluster, svc("badlb", ips=("10.96.0.52",), annotations={"vppagent.io/lb": "random"})),
        upsert(driver.cluster, eps("badlb-a", "badlb", [ep("10.244.1.8")])),
        upsert(driver.cluster, eps("orphan-a", "missing", [ep("10.244.1.9")])),
    ]
    result = driver.changed(*keys)
    assert result.failed == 0
    reasons = sorted((p.origin.name, p.reason) for p in driver.problems)
    assert reasons == [("badip", "InvalidService"), ("badlb", "InvalidLoadBalancingMode"),
                       ("icmp", "InvalidService"), ("orphan-a", "EndpointSliceWithoutService"),
                       ("outside", "ClusterIPOutsideServiceCIDRs"), ("port0", "InvalidService")]
    # Only the one valid (if oddly annotated) service was added; the rest of VPP is as it was.
    assert driver.mutating_since(before) == {"cnat_translation_update": 1}
    got = picture(vpp)
    assert got == {**good, ("172.16.0.1", TCP, 80): {"10.0.0.1:80"}, ("10.96.0.52", TCP, 80): {"10.244.1.8:8080"}}
    # A resync and a full pass leave the foreign translation alone too.
    driver.reconciler.needs_resync = True
    driver.full()
    assert any(t.id == foreign_id for t in cnat.dump_translations(vpp))
    # The orphan's Service appears: the problem goes and the slice is served.
    driver.changed(upsert(driver.cluster, svc("missing", ips=("10.96.0.53",))))
    assert "EndpointSliceWithoutService" not in {p.reason for p in driver.problems}
    assert picture(vpp)[("10.96.0.53", TCP, 80)] == {"10.244.1.9:8080"}


def test_snat_entry_addresses_policy_and_exclusions(vpp, emulator) -> None:
    d = Driver(vpp, snat=True)
    upsert(d.cluster, node())
    d.full()
    got = cnat.get_snat_addresses(vpp)
    assert (str(got.ip4), str(got.ip6)) == ("192.168.0.1", "fd00:c0::1")
    entry = emulator.state(CnatState).snat
    assert entry.policy == int(cnat.SnatPolicy.K8S)
    assert entry.excluded == {ipaddress.ip_network(n) for n in
                              ("10.244.0.0/16", "fd00:244::/56", "10.96.0.0/12", "fd00:96::/108")}
    # A node address change moves the SNAT address; the exclusions stay.
    d.changed(upsert(d.cluster, node(ips=(ip("192.168.0.99"),))))
    assert str(cnat.get_snat_addresses(vpp).ip4) == "192.168.0.99"
    assert len(emulator.state(CnatState).snat.excluded) == 4
    # A restarted agent re-applies what VPP cannot dump (idempotent), and the result is the same.
    again = Driver(vpp, snat=True)
    again.cluster = d.cluster
    again.full()
    assert emulator.state(CnatState).snat.policy == int(cnat.SnatPolicy.K8S)
    assert len(emulator.state(CnatState).snat.excluded) == 4
