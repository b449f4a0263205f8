"""The services feature inside the real agent loop: fake Kubernetes API (real HTTP, real client)
-> sources -> agent -> reconciler -> the VPP API emulator (a test double of VPP)."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from testbed.agent_runner import NODE
from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from testbed.wait import wait_for
from tests.cluster import mutating
from tests.conftest import Running
from vppagent.services import ServiceTranslations
from vppagent.vpp import cnat
from vppagent.vpp.client import VppClient


@pytest.fixture
def start_services_agent(start_agent) -> Callable[..., Running]:  # noqa: F811 - the fixture
    def start(**env_over: str) -> Running:
        return start_agent(features=lambda cfg: [ServiceTranslations.from_config(cfg)],
                           **{"VPPAGENT_SERVICE_EXTERNAL_CIDRS": "203.0.113.0/24", **env_over})

    return start


def picture(vpp: VppClient) -> dict[tuple[str, int], set[str]]:
    return {(str(t.vip.address), t.vip.port): {f"{p.dst.address}:{p.dst.port}" for p in t.paths}
            for t in cnat.dump_translations(vpp)}


def test_node_port_cluster_ip_and_external_ip_from_the_api_and_endpoint_changes(
        fake: FakeKube, vpp: VppClient, start_services_agent) -> None:
    fake.add(k.node(NODE, pod_cidrs=["10.244.1.0/24"], internal_ip="192.168.0.1"))
    fake.add(k.service("np", cluster_ip="10.96.0.20", type="NodePort", externalIPs=["203.0.113.5"],
                       externalTrafficPolicy="Local",
                       ports=[{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080,
                               "nodePort": 30080}]))
    local = k.endpointslice("np-a", service="np", addresses=["10.244.1.5"], node=NODE)
    remote = k.endpointslice("np-b", service="np", addresses=["10.244.2.6"], node="node-2")
    fake.add(local)
    fake.add(remote)
    run = start_services_agent()
    run.wait_ready()
    assert picture(vpp) == {
        ("10.96.0.20", 80): {"10.244.1.5:8080", "10.244.2.6:8080"},
        ("192.168.0.1", 30080): {"10.244.1.5:8080"},  # ETP Local
        ("203.0.113.5", 80): {"10.244.1.5:8080"},
    }
    # One endpoint of the remote slice changes: only the cluster IP's backends change (ETP Local).
    before = run.agent.vpp.calls.copy()
    fake.modify(k.endpointslice("np-b", service="np", addresses=["10.244.2.7"], node="node-2"))
    wait_for(lambda: picture(vpp)[("10.96.0.20", 80)] == {"10.244.1.5:8080", "10.244.2.7:8080"},
             what="the endpoint change")
    assert mutating(run.agent.vpp.calls, before) == {"cnat_translation_update": 1}
    run.stop()


def test_bad_input_becomes_events_and_the_rest_is_served(fake: FakeKube, vpp: VppClient,
                                                         start_services_agent) -> None:
    fake.add(k.node(NODE, pod_cidrs=["10.244.1.0/24"], internal_ip="192.168.0.1"))
    fake.add(k.service("good", cluster_ip="10.96.0.10"))
    fake.add(k.endpointslice("good-a", service="good", addresses=["10.244.1.5"]))
    bad_lb = k.service("badlb", cluster_ip="10.96.0.11")
    bad_lb["metadata"]["annotations"] = {"vppagent.io/lb": "fastest"}
    fake.add(bad_lb)
    fake.add(k.endpointslice("badlb-a", service="badlb", addresses=["10.244.1.6"]))
    fake.add(k.endpointslice("orphan-a", service="ghost", addresses=["10.244.1.7"]))
    fake.add(k.service("port0", cluster_ip="10.96.0.12", ports=[{"name": "x", "protocol": "TCP", "port": 0}]))
    fake.add(k.service("icmp", cluster_ip="10.96.0.13", ports=[{"name": "x", "protocol": "ICMP", "port": 1}]))
    fake.add(k.service("badip", cluster_ip="10.96.0.300"))
    run = start_services_agent()
    run.wait_ready()
    assert picture(vpp) == {("10.96.0.10", 80): {"10.244.1.5:8080"}, ("10.96.0.11", 80): {"10.244.1.6:8080"}}
    run.recorder.flush(5)
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in fake.events()}
    assert {("badlb", "InvalidLoadBalancingMode"), ("orphan-a", "EndpointSliceWithoutService")} <= reasons
    # port 0, an unknown protocol and an invalid IP are refused by the sources' validation already.
    assert {("port0", "InvalidObject"), ("icmp", "InvalidObject"), ("badip", "InvalidObject")} <= reasons
    run.stop()
