"""The fake API server (a test double) behaves like the real one for the official client."""
from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k


@pytest.fixture
def core(api) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def test_get_patch_replace_delete_through_the_client(fake: FakeKube, core: client.CoreV1Api) -> None:
    fake.add(k.node("node-1", labels={"a": "1"}))

    # A dict body is sent as a strategic merge patch: the way the agent publishes its keys.
    core.patch_node("node-1", {"metadata": {"annotations": {"vppagent.io/wireguard-public-key": "abc="}}})
    # A list body is a JSON patch.
    core.patch_node("node-1", [{"op": "add", "path": "/metadata/labels/b", "value": "2"}])
    node = core.read_node("node-1")
    assert node.metadata.annotations == {"vppagent.io/wireguard-public-key": "abc="}
    assert node.metadata.labels == {"a": "1", "b": "2"}
    patches = [r for r in fake.requests(path="/api/v1/nodes/node-1") if r.method == "PATCH"]
    assert [r.status for r in patches] == [200, 200]

    svc = fake.add(k.service("web", "shop"))
    svc["spec"]["ports"][0]["port"] = 8080
    core.replace_namespaced_service("web", "shop", svc)
    assert fake.get("Service", "web", "shop")["spec"]["ports"][0]["port"] == 8080
    core.delete_namespaced_service("web", "shop")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_service("web", "shop")
    assert err.value.status == 404


def test_label_and_field_selectors_and_namespaced_lists(fake: FakeKube, core: client.CoreV1Api) -> None:
    fake.add(k.pod("a", "shop", node="n1", labels={"app": "web"}))
    fake.add(k.pod("b", "shop", node="n2", labels={"app": "api", "canary": "true"}))
    fake.add(k.pod("c", "shop", node="n1", labels={"app": "db"}))
    fake.add(k.pod("d", "other", node="n1", labels={"app": "web"}))

    def names(resp) -> list[str]:
        return [p.metadata.name for p in resp.items]

    assert names(core.list_namespaced_pod("shop")) == ["a", "b", "c"]
    assert names(core.list_namespaced_pod("shop", label_selector="app in (web,api),!canary")) == ["a"]
    assert sorted(names(core.list_pod_for_all_namespaces(label_selector="app notin (db)"))) == ["a", "b", "d"]
    assert names(core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1,metadata.namespace!=other")) \
        == ["a", "c"]
    listed = core.list_namespaced_pod("shop")
    assert int(listed.metadata.resource_version) == fake.resource_version


def test_official_watch_helper_sees_selector_transitions(fake: FakeKube, core: client.CoreV1Api) -> None:
    fake.add(k.pod("p", labels={"app": "web"}))
    rv = core.list_namespaced_pod("default", label_selector="app=web").metadata.resource_version

    def change() -> None:
        time.sleep(0.2)
        fake.patch("Pod", "p", {"metadata": {"labels": {"app": "db"}}}, namespace="default")  # leaves
        fake.patch("Pod", "p", {"metadata": {"labels": {"app": "web"}}}, namespace="default")  # comes back
        fake.delete("Pod", "p", namespace="default")
    t = threading.Thread(target=change)
    t.start()
    seen = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, "default", label_selector="app=web", resource_version=rv,
                       timeout_seconds=2):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    t.join()
    assert seen == [("DELETED", "p"), ("ADDED", "p"), ("DELETED", "p")]


def test_watch_from_a_compacted_rv_is_410_for_the_official_client(
        fake: FakeKube, core: client.CoreV1Api) -> None:
    fake.add(k.node("n1"))
    old_rv = core.list_node().metadata.resource_version
    fake.add(k.node("n2"))
    fake.compact()
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(core.list_node, resource_version=old_rv, timeout_seconds=2):
            pass
    assert err.value.status == 410


def test_watch_replays_the_log_after_an_rv_and_ends_at_its_timeout(
        fake: FakeKube, core: client.CoreV1Api) -> None:
    fake.add(k.node("n1"))
    rv = core.list_node().metadata.resource_version
    fake.add(k.node("n2"))
    fake.patch("Node", "n1", {"metadata": {"labels": {"x": "y"}}})
    started = time.monotonic()
    seen = [(ev["type"], ev["object"].metadata.name)
            for ev in watch.Watch().stream(core.list_node, resource_version=rv, timeout_seconds=1)]
    assert seen == [("ADDED", "n2"), ("MODIFIED", "n1")]
    assert time.monotonic() - started >= 0.9  # the stream stayed open until timeoutSeconds


def test_events_created_by_clients_are_listed(fake: FakeKube, core: client.CoreV1Api) -> None:
    core.create_namespaced_event("default", {
        "metadata": {"name": "n1.1"}, "involvedObject": {"kind": "Node", "name": "n1"},
        "reason": "Test", "message": "hello"})
    assert [(e["reason"], e["metadata"]["namespace"]) for e in fake.events()] == [("Test", "default")]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_event("default", {"metadata": {"name": "n1.1"},
                                                 "involvedObject": {"kind": "Node", "name": "n1"}})
    assert err.value.status == 409
