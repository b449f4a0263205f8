"""The standard set of sources: every kind through the real client paths, one queue."""
from __future__ import annotations

from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from vppagent.model import EndpointSlice, Namespace, NetworkPolicy, Node, Pod, Service
from vppagent.sources import SourceGroup, Synced, Upsert

from .conftest import FAST, Events


def _one_of_each(fake: FakeKube) -> None:
    fake.add(k.node("node-1", pod_cidrs=["10.244.1.0/24"], internal_ip="192.168.0.1"))
    fake.add(k.namespace("shop", labels={"team": "a"}))
    fake.add(k.pod("web-1", "shop", node="node-1", ips=["10.244.1.7"], labels={"app": "web"},
                   ports=[{"name": "http", "containerPort": 8080}]))
    fake.add(k.pod("web-2", "shop", node="node-2", ips=["10.244.2.7"], labels={"app": "web"}))
    fake.add(k.service("web", "shop", cluster_ip="10.96.0.20",
                       ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    fake.add(k.endpointslice("web-abc", "shop", service="web", addresses=["10.244.1.7"]))
    fake.add(k.network_policy("allow-web", "shop", pod_selector={"matchLabels": {"app": "web"}},
                              ingress=[{"from": [{"namespaceSelector": {}}], "ports": [{"port": "http"}]}]))


def test_group_watches_every_kind_into_one_queue(fake: FakeKube, api, events: Events, recorder) -> None:
    _one_of_each(fake)
    group = SourceGroup.for_node(api, events.queue, node_name="node-1", recorder=recorder, options=FAST)
    try:
        group.start()
        assert group.wait_synced(5)
        evs = events.until_synced(6)
    finally:
        assert group.stop(5)

    synced = {e.source for e in evs if isinstance(e, Synced)}
    assert synced == {"nodes", "namespaces", "pods", "services", "endpointslices", "networkpolicies"}
    by_type = {}
    for e in evs:
        if isinstance(e, Upsert):
            by_type.setdefault(type(e.obj), []).append(e.obj.name)
    assert by_type == {Node: ["node-1"], Namespace: ["shop"], Pod: ["web-1", "web-2"], Service: ["web"],
                       EndpointSlice: ["web-abc"], NetworkPolicy: ["allow-web"]}
    paths = {r.path for r in fake.requests()}
    assert paths == {"/api/v1/nodes", "/api/v1/namespaces", "/api/v1/pods", "/api/v1/services",
                     "/apis/discovery.k8s.io/v1/endpointslices",
                     "/apis/networking.k8s.io/v1/networkpolicies"}


def test_group_with_local_pods_only_selects_this_nodes_pods(fake: FakeKube, api, events: Events) -> None:
    _one_of_each(fake)
    with SourceGroup.for_node(api, events.queue, node_name="node-1", local_pods_only=True,
                              options=FAST) as group:
        assert group.wait_synced(5)
        evs = events.until_synced(6)
    pods = [e.obj.name for e in evs if isinstance(e, Upsert) and isinstance(e.obj, Pod)]
    assert pods == ["web-1"]
    assert {e.source for e in evs if isinstance(e, Synced) and e.kind == "Pod"} == {"pods@node-1"}
