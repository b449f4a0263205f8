"""The agent end to end, in-process: fake API server -> sources -> reconciler -> emulator.

The fake API server and the VPP emulator are test doubles; the kubernetes
client, the sources, the reconciler and the VPP client are the real ones.
"""
from __future__ import annotations

import ipaddress
import time
import urllib.error
import urllib.request
from collections import Counter

from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from testbed.wait import wait_for
from tests.cluster import add_service, mutating, populate, slice_for, vpp_picture
from vppagent.vpp import cnat, interfaces, routes
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppDisconnectedError


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_cold_start_converges_and_only_then_is_ready(fake: FakeKube, vpp: VppClient, start_agent) -> None:
    populate(fake, nodes=3, services=4)
    fake.go_down()  # the API server is not there yet: not ready, nothing programmed
    run = start_agent()
    time.sleep(0.5)
    assert http_status(run.server.port, "/healthz") == 200
    assert http_status(run.server.port, "/readyz") == 503
    assert vpp_picture(vpp) == {"routes": [], "translations": []}

    fake.come_up()
    run.wait_ready()
    assert http_status(run.server.port, "/readyz") == 200
    pic = vpp_picture(vpp)
    assert pic["routes"] == [("10.244.2.0/24", ("192.168.0.2",)), ("10.244.3.0/24", ("192.168.0.3",))]
    assert len(pic["translations"]) == 8
    assert ("10.96.0.10", 53, 17, ("10.244.2.2:5353", "10.244.2.4:5353", "10.244.3.3:5353")) in pic["translations"]
    assert run.agent.stats.failed == 0
    with urllib.request.urlopen(f"http://127.0.0.1:{run.server.port}/metrics", timeout=2) as r:
        metrics = r.read().decode()
    assert 'vppagent_reconcile_operations_total{op="create"} 10.0' in metrics
    assert "vppagent_desired_objects 10.0" in metrics


def test_an_idle_agent_makes_no_call_and_a_change_costs_only_its_difference(
        fake: FakeKube, vpp: VppClient, start_agent) -> None:
    populate(fake, nodes=2, services=3)
    run = start_agent()
    run.wait_ready()
    before = Counter(run.agent.vpp.calls)
    time.sleep(1.5)  # idle loop turns, bookmarks arrive: nothing to do
    assert run.agent.vpp.calls == before

    fake.modify(slice_for(1, endpoints=4))  # s1 gains an endpoint (both ports)
    wait_for(lambda: any(len(t[3]) == 4 for t in vpp_picture(vpp)["translations"]), what="the update")
    assert mutating(run.agent.vpp.calls, before) == {"cnat_translation_update": 2}


def test_api_server_outage_leaves_the_data_plane_alone_then_converges(
        fake: FakeKube, vpp: VppClient, start_agent) -> None:
    populate(fake, nodes=3, services=4)
    run = start_agent()
    run.wait_ready()
    programmed = vpp_picture(vpp)
    before = Counter(run.agent.vpp.calls)

    fake.go_down()
    # While it is down the cluster changes, and its history is compacted.
    fake.delete("Service", "s2", "default", silently=True)
    fake.delete("EndpointSlice", "s2-a", "default", silently=True)
    fake.delete("Node", "node-3", silently=True)
    add_service(fake, 9)
    fake.compact()
    time.sleep(1.5)  # sources fail and back off meanwhile
    assert vpp_picture(vpp) == programmed
    assert mutating(run.agent.vpp.calls, before) == {}
    assert run.agent.ready  # VPP is programmed and connected: serving stays ready

    fake.come_up()
    wait_for(lambda: ("10.96.0.19", 80, 6) in {t[:3] for t in vpp_picture(vpp)["translations"]},
             what="the new service")
    wait_for(lambda: len(vpp_picture(vpp)["routes"]) == 1, what="node-3's route to go")
    pic = vpp_picture(vpp)
    assert {t[0] for t in pic["translations"]} == {"10.96.0.10", "10.96.0.11", "10.96.0.13", "10.96.0.19"}
    assert mutating(run.agent.vpp.calls, before) == {
        "cnat_translation_update": 2, "cnat_translation_del": 2, "ip_route_add_del": 1}


def test_a_watch_expiring_relists_and_programs_only_the_difference(
        fake: FakeKube, vpp: VppClient, start_agent) -> None:
    populate(fake, nodes=2, services=5)
    run = start_agent()
    run.wait_ready()
    wait_for(lambda: fake.open_watches() == 3, what="the watches")
    before = Counter(run.agent.vpp.calls)
    lists_before = len(fake.requests(path="/api/v1/services", watch=False))

    with fake.watches_held():
        fake.disconnect_watches()
        fake.modify(slice_for(3, port=9090), silently=True)  # s3's http backends move to :9090
        fake.delete("Service", "s4", "default", silently=True)
        fake.expire_next_watches(3)
    def converged() -> bool:
        trs = vpp_picture(vpp)["translations"]
        s3 = [t for t in trs if t[0] == "10.96.0.13" and t[1] == 80]
        return (not any(t[0] == "10.96.0.14" for t in trs)
                and bool(s3) and all(b.endswith(":9090") for b in s3[0][3]))
    wait_for(converged, what="s4 to go and s3 to move")  # the sources relist one by one
    assert len(fake.requests(path="/api/v1/services", watch=False)) > lists_before
    time.sleep(0.3)  # anything more would come now
    assert mutating(run.agent.vpp.calls, before) == {"cnat_translation_update": 1, "cnat_translation_del": 2}


def test_invalid_objects_are_skipped_with_an_event_while_the_rest_converges(
        fake: FakeKube, vpp: VppClient, start_agent) -> None:
    populate(fake, nodes=2, services=2)
    bad_port = k.service("bad-port", cluster_ip="10.96.1.1",
                         ports=[{"name": "x", "protocol": "TCP", "port": 70000}])
    outside = k.service("outside", cluster_ip="192.168.99.1")
    fake.add(bad_port)
    fake.add(outside)
    fake.add(k.endpointslice("outside-a", service="outside", addresses=["10.244.2.9"]))
    fake.add(k.node("no-ip", pod_cidrs=["10.244.7.0/24"]))
    run = start_agent()
    run.wait_ready()
    assert len(vpp_picture(vpp)["translations"]) == 4
    assert len(vpp_picture(vpp)["routes"]) == 1

    run.recorder.flush(5)
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in fake.events()}
    assert ("bad-port", "InvalidObject") in reasons  # the source's check
    assert ("outside", "ClusterIPOutsideServiceCIDRs") in reasons  # the service feature's
    assert ("no-ip", "NoInternalIP") in reasons  # the connectivity feature's
    ev = next(e for e in fake.events() if e["reason"] == "ClusterIPOutsideServiceCIDRs")
    assert ev["involvedObject"]["namespace"] == "default" and "192.168.99.1" in ev["message"]


def test_vpp_restart_triggers_a_full_reprogram(fake: FakeKube, emulator, vpp: VppClient, start_agent) -> None:
    populate(fake, nodes=3, services=4)
    run = start_agent()
    run.wait_ready()
    programmed = vpp_picture(vpp)
    emulator.restart()

    def reprogrammed() -> bool:
        try:
            return vpp.connected and vpp_picture(vpp) == programmed
        except VppDisconnectedError:  # our own client may learn of the restart by a failed send
            return False

    wait_for(reprogrammed, what="the re-program")
    # The loop counts the pass once converge returns, just after VPP has the last object.
    wait_for(lambda: run.agent.stats.resyncs >= 2, what="the resync counted")
    assert run.agent.stats.resyncs == 2
    wait_for(lambda: run.agent.ready, what="ready again")


def test_agent_restart_adopts_without_mutating_and_removes_what_went_away_meanwhile(
        fake: FakeKube, vpp: VppClient, start_agent) -> None:
    populate(fake, nodes=3, services=4)
    foreign = interfaces.create_loopback(vpp)  # someone else's objects must survive all of this
    routes.add(vpp, routes.Route.of("192.168.50.0/24", routes.Path(next_hop=ipaddress.ip_address("192.168.0.9"))))
    first = start_agent()
    first.wait_ready()
    programmed = vpp_picture(vpp)
    first.stop()  # as on SIGTERM: nothing is deleted
    assert vpp_picture(vpp) == programmed

    second = start_agent()
    second.wait_ready()
    assert mutating(second.agent.vpp.calls) == {}
    assert vpp_picture(vpp) == programmed
    second.stop()

    fake.delete("Service", "s1", "default")
    fake.delete("Node", "node-2")
    third = start_agent()
    third.wait_ready()
    assert mutating(third.agent.vpp.calls) == {"cnat_translation_del": 2, "ip_route_add_del": 1}
    assert foreign in {i.sw_if_index for i in interfaces.dump(vpp)}
    assert "192.168.50.0/24" in {str(r.prefix) for r in routes.dump(vpp)}
    assert len(cnat.dump_translations(vpp)) == 6


def test_drift_behind_the_agents_back_is_repaired_by_the_periodic_resync(
        fake: FakeKube, vpp: VppClient, start_agent) -> None:
    populate(fake, nodes=2, services=2)
    run = start_agent(VPPAGENT_RESYNC_INTERVAL_S="0.3")
    run.wait_ready()
    programmed = vpp_picture(vpp)
    victim = cnat.dump_translations(vpp)[0]
    cnat.delete_translation(vpp, victim.id)  # someone meddles with VPP
    routes.delete(vpp, routes.Route.of("10.244.2.0/24"))
    wait_for(lambda: vpp_picture(vpp) == programmed, what="the drift to be repaired")
    assert run.agent.stats.resyncs >= 2
