"""API errors and outages: backoff with jitter, never a busy loop, convergence after."""
from __future__ import annotations

import random
import time

import pytest

from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from testbed.wait import wait_for
from vppagent.sources import NODES, Backoff, BackoffPolicy, Upsert

from .conftest import FAST, Events


def test_backoff_grows_exponentially_within_jitter_and_caps() -> None:
    policy = BackoffPolicy(initial_s=0.1, max_s=1.0, multiplier=2.0, jitter=0.2)
    b = Backoff(policy, random.Random(7))
    delays = [b.next_delay() for _ in range(8)]
    bases = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for d, base in zip(delays, bases):
        assert base * 0.8 <= d <= base
    assert len(set(delays)) == len(delays)  # jittered: no two agents retry in lockstep
    b.reset()
    assert 0.08 <= b.next_delay() <= 0.1


@pytest.mark.parametrize("bad", [
    dict(initial_s=0), dict(initial_s=2, max_s=1), dict(multiplier=0.5), dict(jitter=1.0)])
def test_backoff_policy_rejects_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**bad)


def test_500s_on_list_are_retried_with_growing_pauses(fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("node-1"))
    fake.fail_next(3, status=500, path="/api/v1/nodes")

    src = start_source(NODES)

    evs = events.until_synced()
    assert [e.obj.name for e in evs if isinstance(e, Upsert)] == ["node-1"]
    lists = fake.requests(path="/api/v1/nodes", watch=False)
    assert [r.status for r in lists] == [500, 500, 500, 200]
    gaps = [b.at - a.at for a, b in zip(lists, lists[1:])]
    floor = FAST.backoff.initial_s * (1 - FAST.backoff.jitter)
    for i, gap in enumerate(gaps):  # sleeps never end early: lower bounds are safe to assert
        assert gap >= floor * FAST.backoff.multiplier ** i
    assert src.stats.errors == 3


def test_500_on_watch_rewatches_from_same_rv_without_relisting(
        fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("node-1"))
    src = start_source(NODES)
    events.until_synced()
    rv = src.resource_version
    wait_for(lambda: fake.open_watches() == 1, what="the watch")

    with fake.watches_held():
        fake.disconnect_watches()
        fake.fail_next(2, status=503, watch=True)
        fake.error_next_watches(1, code=500)  # and then one ERROR event inside a stream
    fake.add(k.node("node-2"))

    assert [e.obj.name for e in events.until_upsert_of("node-2")] == ["node-2"]
    watches = fake.requests(path="/api/v1/nodes", watch=True)
    assert [r.status for r in watches[1:4]] == [503, 503, 200]
    assert all(int(r.query["resourceVersion"]) >= int(rv) for r in watches)
    assert src.stats.lists == 1


def test_unavailable_server_gets_a_slowing_trickle_then_converges(
        fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("node-1"))
    src = start_source(NODES)
    events.until_synced()

    # Down, but still accepting connections and hanging up: every attempt is counted.
    fake.go_down(refuse=False)
    down_at = time.monotonic()
    fake.patch("Node", "node-1", {"metadata": {"labels": {"changed": "while-down"}}})
    time.sleep(1.5)
    attempts = len(fake.requests(since=down_at))
    fake.come_up()

    # Backoff 0.05s doubling to 0.4s is ~7 attempts in 1.5s (urllib3 retries each
    # once, so ~14 connections); a busy loop would make thousands.
    assert 3 <= attempts <= 40, attempts
    ev = events.next()
    assert isinstance(ev, Upsert) and ev.obj.labels == {"changed": "while-down"}
    assert src.stats.lists == 1  # the RV was still valid: resumed, no relist


def test_refused_connections_back_off_then_converge(fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("node-1"))
    src = start_source(NODES)
    events.until_synced()

    fake.go_down(refuse=True)
    errors_before = src.stats.errors
    fake.add(k.node("node-2"))  # the store survives the outage, as etcd would
    time.sleep(1.5)
    errors_during = src.stats.errors - errors_before
    fake.come_up()

    assert 2 <= errors_during <= 20, errors_during
    assert [e.obj.name for e in events.until_upsert_of("node-2", timeout=5)] == ["node-2"]
    wait_for(lambda: fake.open_watches() == 1, what="the watch to be back")


def test_source_started_while_server_down_syncs_when_it_comes_up(
        fake: FakeKube, events: Events, start_source) -> None:
    fake.add(k.node("node-1"))
    fake.go_down(refuse=True)
    src = start_source(NODES)
    time.sleep(0.5)
    assert not src.synced
    fake.come_up()

    assert [type(e).__name__ for e in events.until_synced()] == ["Upsert", "Synced"]
