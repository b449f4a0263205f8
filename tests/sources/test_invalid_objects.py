"""Invalid objects are skipped, logged once with structure, reported as Events; the rest flows."""
from __future__ import annotations

import logging

import pytest

from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from testbed.wait import wait_for
from vppagent.sources import NETWORK_POLICIES, NODES, SERVICES, EventRecorder, ObjectRef, Upsert

from .conftest import Events


def bad_operator_policy() -> dict:
    return k.network_policy("np-bad", pod_selector={
        "matchExpressions": [{"key": "app", "operator": "Matches", "values": ["web"]}]})


def test_invalid_objects_are_skipped_reported_and_others_flow(
        fake: FakeKube, events: Events, start_source, recorder: EventRecorder) -> None:
    fake.add(k.node("node-ok", pod_cidrs=["10.244.1.0/24"]))
    fake.add(k.node("node-bad", pod_cidrs=["10.244.2.0/33"]))
    fake.add(k.service("svc-ok"))
    fake.add(k.service("svc-proto", ports=[{"port": 53, "protocol": "DNS"}]))
    fake.add(k.service("svc-port", ports=[{"port": 70000, "protocol": "TCP"}]))
    fake.add(k.network_policy("np-ok", pod_selector={"matchLabels": {"app": "web"}}))
    fake.add(bad_operator_policy())

    for spec in (NODES, SERVICES, NETWORK_POLICIES):
        start_source(spec)

    evs = events.until_synced(3)
    assert sorted(e.obj.name for e in evs if isinstance(e, Upsert)) == ["node-ok", "np-ok", "svc-ok"]

    assert recorder.flush(5)
    posted = {e["involvedObject"]["name"]: e for e in fake.events(reason="InvalidObject")}
    assert sorted(posted) == ["node-bad", "np-bad", "svc-port", "svc-proto"]
    assert "spec.podCIDRs[0]" in posted["node-bad"]["message"]
    assert "'10.244.2.0/33' is not a valid CIDR" in posted["node-bad"]["message"]
    assert "spec.ports[0].protocol" in posted["svc-proto"]["message"]
    assert "spec.ports[0].port: 70000 is out of range 1..65535" in posted["svc-port"]["message"]
    assert "spec.podSelector.matchExpressions[0].operator" in posted["np-bad"]["message"]

    node_event = posted["node-bad"]
    assert node_event["type"] == "Warning"
    assert node_event["metadata"]["namespace"] == "default"  # cluster-scoped: where kubelet posts too
    assert node_event["involvedObject"] == {
        "kind": "Node", "name": "node-bad", "apiVersion": "v1",
        "uid": fake.get("Node", "node-bad")["metadata"]["uid"],
        "resourceVersion": fake.get("Node", "node-bad")["metadata"]["resourceVersion"]}
    assert node_event["source"] == {"component": "vppagent", "host": "node-1"}
    np_event = posted["np-bad"]
    assert np_event["metadata"]["namespace"] == "default"
    assert np_event["involvedObject"]["kind"] == "NetworkPolicy"
    assert np_event["involvedObject"]["apiVersion"] == "networking.k8s.io/v1"


def test_invalid_object_is_logged_once_with_structured_fields(
        fake: FakeKube, events: Events, start_source, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="vppagent.sources")
    fake.add(k.node("node-bad", pod_cidrs=["nope"]))
    src = start_source(NODES)
    events.until_synced()
    # The same problem again (a status update of the bad node): not a second warning.
    fake.patch("Node", "node-bad", {"status": {"phase": "Running"}})
    wait_for(lambda: src.stats.invalid == 2, what="the second sighting")

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and hasattr(r, "invalid_field")]
    assert len(warnings) == 1
    rec = warnings[0]
    assert (rec.k8s_kind, rec.k8s_name, rec.invalid_field, rec.source) == (
        "Node", "node-bad", "spec.podCIDRs[0]", "nodes")
    assert "not a valid CIDR" in rec.invalid_reason


def test_object_turning_invalid_keeps_its_last_valid_version_until_fixed(
        fake: FakeKube, events: Events, start_source, recorder: EventRecorder) -> None:
    fake.add(k.node("node-1", pod_cidrs=["10.244.1.0/24"]))
    src = start_source(NODES)
    events.until_synced()
    good = src.snapshot()

    fake.modify(k.node("node-1", pod_cidrs=["10.244.1.0/99"]))
    fake.add(k.node("marker"))
    assert [e.key.name for e in events.until_upsert_of("marker")] == ["marker"]
    assert src.snapshot()[next(iter(good))] == next(iter(good.values()))  # still the valid one
    assert recorder.flush(5) and len(fake.events(reason="InvalidObject")) == 1

    # A relist while it is still invalid neither deletes nor re-emits it.
    fake.expire_next_watches(1)
    fake.disconnect_watches()
    wait_for(lambda: src.stats.lists == 2, what="the relist")
    fake.add(k.node("marker-2"))
    assert [e.key.name for e in events.until_upsert_of("marker-2")] == ["marker-2"]
    assert recorder.flush(5) and len(fake.events(reason="InvalidObject")) == 1  # deduplicated

    fake.modify(k.node("node-1", pod_cidrs=["10.244.7.0/24"]))
    ev = events.next()
    assert isinstance(ev, Upsert) and str(ev.obj.pod_cidrs[0]) == "10.244.7.0/24"


def test_recorder_posts_identical_events_once_and_different_ones_again(
        fake: FakeKube, recorder: EventRecorder) -> None:
    fake.add(k.pod("web", node="node-1"))
    ref = ObjectRef.from_api(fake.get("Pod", "web", "default"), kind="Pod", api_version="v1")

    assert recorder.record(ref, "InterfaceFailed", "veth creation failed: EEXIST")
    assert not recorder.record(ref, "InterfaceFailed", "veth creation failed: EEXIST")
    assert recorder.record(ref, "InterfaceFailed", "veth creation failed: ENOMEM")
    assert recorder.record(ref, "InterfaceReady", "ok", type="Normal")
    assert recorder.flush(5)

    posted = fake.events()
    assert sorted(e["message"] for e in posted) == [
        "ok", "veth creation failed: EEXIST", "veth creation failed: ENOMEM"]
    assert all(e["metadata"]["namespace"] == "default" for e in posted)
    assert recorder.stats.posted == 3 and recorder.stats.suppressed == 1


def test_recorder_survives_an_api_server_that_refuses_events(fake: FakeKube, api) -> None:
    rec = EventRecorder(api, dedup_window_s=0.0)
    try:
        fake.fail_next(1, status=500, path="/api/v1/namespaces/default/events")
        ref = ObjectRef(kind="Node", name="node-1")
        assert rec.record(ref, "X", "first")
        assert rec.flush(5)
        assert rec.record(ref, "X", "second")
        assert rec.flush(5)
        assert [e["message"] for e in fake.events()] == ["second"]
        assert (rec.stats.failed, rec.stats.posted) == (1, 1)
    finally:
        rec.stop()


def test_recorder_duplicate_window_expires(fake: FakeKube, api) -> None:
    now = [100.0]
    rec = EventRecorder(api, dedup_window_s=60.0, clock=lambda: now[0])
    try:
        ref = ObjectRef(kind="Node", name="node-1")
        assert rec.record(ref, "X", "same")
        now[0] += 30
        assert not rec.record(ref, "X", "same")
        now[0] += 31
        assert rec.record(ref, "X", "same")
        assert rec.flush(5)
        assert len(fake.events()) == 2
    finally:
        rec.stop()
