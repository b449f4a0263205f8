"""List, watch, resourceVersion tracking: the real kubernetes client against the fake API server."""
from __future__ import annotations

import ipaddress

from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from testbed.wait import wait_for
from vppagent.model import Node, ObjectKey
from vppagent.sources import NODES, PODS, Delete, Synced, Upsert

from .conftest import Events


def names(evs: list) -> list[tuple[str, str]]:
    out = []
    for ev in evs:
        if isinstance(ev, Upsert):
            out.append(("upsert", ev.obj.name))
        elif isinstance(ev, Delete):
            out.append(("delete", ev.key.name))
        else:
            out.append(("synced", ev.kind))
    return out


def test_initial_list_emits_upserts_then_synced(fake: FakeKube, events: Events, start_source) -> None:
    for i in range(1, 4):
        fake.add(k.node(f"node-{i}", pod_cidrs=[f"10.244.{i}.0/24"], internal_ip=f"192.168.0.{i}"))

    start_source(NODES)

    evs = events.until_synced()
    assert names(evs) == [("upsert", "node-1"), ("upsert", "node-2"), ("upsert", "node-3"), ("synced", "Node")]
    assert evs[0].obj == Node(
        name="node-1", uid=fake.get("Node", "node-1")["metadata"]["uid"],
        pod_cidrs=(ipaddress.ip_network("10.244.1.0/24"),),
        internal_ips=(ipaddress.ip_address("192.168.0.1"),),
    )
    assert evs[-1] == Synced("Node", "nodes")
    # page_size=2: the list took two pages, the second one with the continue token.
    lists = fake.requests(path="/api/v1/nodes", watch=False)
    assert [r.query.get("limit") for r in lists] == ["2", "2"]
    assert "continue" not in lists[0].query and lists[1].query["continue"]


def test_watch_delivers_adds_updates_and_deletes(fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("node-1"))
    start_source(NODES)
    events.until_synced()

    fake.add(k.node("node-2"))
    fake.patch("Node", "node-1", {"metadata": {"annotations": {"vppagent.io/encryption": "wireguard"}}})
    fake.delete("Node", "node-2")

    evs = events.take(3)
    assert names(evs) == [("upsert", "node-2"), ("upsert", "node-1"), ("delete", "node-2")]
    assert evs[1].obj.annotations == {"vppagent.io/encryption": "wireguard"}
    assert evs[2].key == ObjectKey("Node", "", "node-2") and evs[2].last.name == "node-2"
    watch = fake.requests(path="/api/v1/nodes", watch=True)[0]
    assert watch.query["allowWatchBookmarks"] == "true" and watch.query["timeoutSeconds"] == "5"


def test_changes_the_model_does_not_see_emit_nothing(fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("node-1", pod_cidrs=["10.244.1.0/24"]))
    start_source(NODES)
    events.until_synced()

    # A kubelet heartbeat and an unrelated annotation: new resourceVersions, same model object.
    fake.patch("Node", "node-1", {"status": {"conditions": [{"type": "Ready", "status": "True"}]},
                                  "metadata": {"annotations": {"node.alpha.kubernetes.io/ttl": "0"}}})
    fake.add(k.node("marker"))

    assert names(events.until_upsert_of("marker")) == [("upsert", "marker")]


def test_local_pod_source_sees_only_this_nodes_pods(fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.pod("here", node="node-1", ips=["10.244.1.5"]))
    fake.add(k.pod("elsewhere", node="node-2", ips=["10.244.2.5"]))
    fake.add(k.pod("pending"))  # not scheduled yet

    start_source(PODS, name="pods@node-1", field_selector="spec.nodeName=node-1")
    assert names(events.until_synced()) == [("upsert", "here"), ("synced", "Pod")]

    # Scheduling the pending pod onto this node makes it enter the selection.
    fake.patch("Pod", "pending", {"spec": {"nodeName": "node-1"}}, namespace="default")
    ev = events.next()
    assert isinstance(ev, Upsert) and ev.obj.name == "pending" and ev.obj.node_name == "node-1"
    for req in fake.requests(path="/api/v1/pods"):
        assert req.query["fieldSelector"] == "spec.nodeName=node-1"


def test_watch_resumes_from_last_resource_version_after_disconnect(
        fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("node-1"))
    src = start_source(NODES)
    events.until_synced()
    fake.add(k.node("node-2"))
    events.until_upsert_of("node-2")
    last_rv = fake.get("Node", "node-2")["metadata"]["resourceVersion"]
    wait_for(lambda: src.resource_version == last_rv, what="the source to reach the last RV")

    fake.disconnect_watches()
    fake.add(k.node("node-3"))

    assert names(events.until_upsert_of("node-3")) == [("upsert", "node-3")]
    watches = fake.requests(path="/api/v1/nodes", watch=True)
    assert len(watches) >= 2
    assert int(watches[-1].query["resourceVersion"]) >= int(last_rv)
    assert src.stats.lists == 1  # resumed, not relisted


def test_bookmark_advances_resource_version_and_rewatch_resumes_from_it(
        fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("node-1"))
    src = start_source(NODES)
    events.until_synced()
    node_rv = fake.get("Node", "node-1")["metadata"]["resourceVersion"]

    # Other kinds move the global RV; only a bookmark tells the Node watch about it.
    for i in range(5):
        fake.add(k.namespace(f"ns-{i}"))
    bookmark_rv = str(fake.resource_version)
    assert int(bookmark_rv) > int(node_rv)
    fake.send_bookmarks()
    wait_for(lambda: src.resource_version == bookmark_rv, what="the bookmark's RV")

    before = len(fake.requests(path="/api/v1/nodes", watch=True))
    fake.disconnect_watches(abrupt=False)
    wait_for(lambda: len(fake.requests(path="/api/v1/nodes", watch=True)) > before, what="a re-watch")

    rewatch = fake.requests(path="/api/v1/nodes", watch=True)[before]
    assert rewatch.query["resourceVersion"] == bookmark_rv
    assert events.pending() == []  # bookmarks are not events for the agent


def test_stop_ends_the_thread_promptly_while_watching(fake: FakeKube, events: Events, start_source) -> None:
    src = start_source(NODES)
    events.until_synced()
    wait_for(lambda: fake.open_watches() == 1, what="an open watch")

    assert src.stop(timeout=2)
    wait_for(lambda: fake.open_watches() == 0, what="the watch to close")
