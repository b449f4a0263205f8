"""410 Gone: the source relists and emits only the difference from what it knew."""
from __future__ import annotations

import time

import pytest

from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from testbed.wait import wait_for
from vppagent.model import ObjectKey
from vppagent.sources import NODES, SERVICES, Delete, Upsert

from .conftest import Events


def _start_with_three_nodes(fake: FakeKube, events: Events, start_source):
    for name in ("node-a", "node-b", "node-c"):
        fake.add(k.node(name, pod_cidrs=["10.244.0.0/24"]))
    src = start_source(NODES)
    events.until_synced()
    wait_for(lambda: fake.open_watches() == 1, what="the watch")
    return src


@pytest.mark.parametrize("gone_as", ["error_event", "http_status"])
def test_410_relists_and_emits_exactly_the_difference(
        fake: FakeKube, events: Events, start_source, gone_as: str) -> None:
    src = _start_with_three_nodes(fake, events, start_source)

    # While the agent is cut off, the cluster changes and the server compacts
    # its history past those changes: the agent's RV is gone.
    with fake.watches_held():
        fake.disconnect_watches()
        fake.modify(k.node("node-b", pod_cidrs=["10.244.9.0/24"]), silently=True)
        fake.delete("Node", "node-c", silently=True)
        fake.add(k.node("node-d"), silently=True)
        if gone_as == "http_status":
            fake.fail_next(1, status=410, watch=True)
        # (otherwise the re-watch from the compacted RV gets an ERROR event with code 410)
    wait_for(lambda: src.stats.lists == 2, what="the relist")
    fake.add(k.node("marker"))

    evs = events.until_upsert_of("marker")[:-1]
    assert [(type(e).__name__, e.key.name) for e in evs] == [
        ("Delete", "node-c"), ("Upsert", "node-b"), ("Upsert", "node-d")]
    assert str(evs[1].obj.pod_cidrs[0]) == "10.244.9.0/24"
    assert evs[0].last.name == "node-c"
    assert src.stats.expired == 1
    # The relist was a fresh list (no RV), and the watch after it starts from the list's RV.
    relist = fake.requests(path="/api/v1/nodes", watch=False)[-1]
    assert "resourceVersion" not in relist.query


def test_410_with_nothing_changed_emits_nothing(fake: FakeKube, events: Events, start_source) -> None:
    src = _start_with_three_nodes(fake, events, start_source)

    fake.expire_next_watches(1)
    fake.disconnect_watches()
    wait_for(lambda: src.stats.lists == 2, what="the relist")
    fake.add(k.node("marker"))

    assert [e.key.name for e in events.until_upsert_of("marker")] == ["marker"]


def test_expired_continue_token_restarts_the_list(fake: FakeKube, events: Events, start_source) -> None:
    for i in range(5):
        fake.add(k.service(f"svc-{i}", cluster_ip=f"10.96.0.{i + 1}"))
    # The second page of the first list is refused: its continue token expired.
    fake.fail_next(1, status=410, path="/api/v1/services", when=lambda m, p, q: "continue" in q)
    start_source(SERVICES)

    evs = events.until_synced()
    assert [e.key.name for e in evs if isinstance(e, Upsert)] == [f"svc-{i}" for i in range(5)]
    lists = fake.requests(path="/api/v1/services", watch=False)
    assert [(r.status, "continue" in r.query) for r in lists] == [
        (200, False), (410, True),  # first attempt, abandoned
        (200, False), (200, True), (200, True),  # full restart: 3 pages of 2
    ]


def test_repeated_410s_back_off_instead_of_spinning(fake: FakeKube, events: Events, start_source) -> None:
    src = _start_with_three_nodes(fake, events, start_source)

    fake.expire_next_watches(1000)
    fake.disconnect_watches()
    start = time.monotonic()
    time.sleep(1.0)
    lists = len(fake.requests(path="/api/v1/nodes", watch=False, since=start))

    # Backoff 0.05s doubling to 0.4s: about 6 relists (2 requests each, page_size=2
    # and three nodes) in a second; a spinning loop would make hundreds.
    assert 2 <= lists <= 30, lists
    assert src.stats.errors >= 2
    assert events.pending() == []  # nothing changed, nothing emitted


def test_delete_is_keyed_even_when_object_was_never_valid(fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("bad", pod_cidrs=["not-a-cidr"]))
    start_source(NODES)
    events.until_synced()

    fake.delete("Node", "bad")
    fake.add(k.node("marker"))

    # It was never emitted, so its deletion is not either.
    assert [e.key for e in events.until_upsert_of("marker")] == [ObjectKey("Node", "", "marker")]
    assert all(not isinstance(e, Delete) for e in events.pending())
