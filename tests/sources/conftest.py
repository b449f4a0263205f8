"""Fixtures for the source tests: a fake API server (a test double, real HTTP),
the real ``kubernetes`` client pointed at it, and sources that are always stopped.

Timeouts and backoffs are shrunk so the whole suite stays fast.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testbed.fakekube import FakeKube
from vppagent.sources import (
    BackoffPolicy,
    EventRecorder,
    KindSpec,
    KubeSource,
    SourceEvent,
    SourceOptions,
    Synced,
    Upsert,
    api_client_for_host,
)

FAST = SourceOptions(
    watch_timeout_s=5,
    connect_timeout_s=1.0,
    read_timeout_s=5.0,
    page_size=2,  # small pages, so that paging is exercised too
    backoff=BackoffPolicy(initial_s=0.05, max_s=0.4, multiplier=2.0, jitter=0.2),
    min_watch_s=0.2,
)


class Events:
    """The agent's queue, with waiting helpers for tests."""

    def __init__(self) -> None:
        self.queue: queue.Queue[SourceEvent] = queue.Queue()

    def next(self, timeout: float = 5.0) -> SourceEvent:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout}s") from None

    def take(self, n: int, timeout: float = 5.0) -> list[SourceEvent]:
        return [self.next(timeout) for _ in range(n)]

    def until(self, stop: Callable[[SourceEvent], bool], timeout: float = 5.0) -> list[SourceEvent]:
        """Events up to and including the first one ``stop`` accepts."""
        out: list[SourceEvent] = []
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next(max(0.01, deadline - time.monotonic()))
            out.append(ev)
            if stop(ev):
                return out

    def until_synced(self, n: int = 1, timeout: float = 5.0) -> list[SourceEvent]:
        seen = 0

        def stop(ev: SourceEvent) -> bool:
            nonlocal seen
            seen += isinstance(ev, Synced)
            return seen == n
        return self.until(stop, timeout)

    def until_upsert_of(self, name: str, timeout: float = 5.0) -> list[SourceEvent]:
        return self.until(lambda ev: isinstance(ev, Upsert) and ev.obj.name == name, timeout)

    def pending(self) -> list[SourceEvent]:
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube(bookmark_interval=0.1) as server:
        yield server


@pytest.fixture
def api(fake: FakeKube) -> Iterator[Any]:
    client = api_client_for_host(fake.url)
    yield client
    client.close()


@pytest.fixture
def recorder(api: Any) -> Iterator[EventRecorder]:
    rec = EventRecorder(api, component="vppagent", host="node-1")
    yield rec
    rec.stop()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def start_source(api: Any, events: Events, recorder: EventRecorder
                 ) -> Iterator[Callable[..., KubeSource]]:
    """Start a KubeSource on the test's queue; every one is stopped (and must stop) at teardown."""
    started: list[KubeSource] = []

    def start(spec: KindSpec, **kwargs: Any) -> KubeSource:
        kwargs.setdefault("options", FAST)
        kwargs.setdefault("recorder", recorder)
        src = KubeSource(spec, kwargs.pop("api", api), events.queue, **kwargs)
        started.append(src.start())
        return src

    yield start
    for src in started:
        assert src.stop(timeout=5), f"source {src.name} did not stop"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    def leaked() -> list[threading.Thread]:
        return [t for t in threading.enumerate()
                if t not in before and t.is_alive()
                and t.name.startswith(("vppagent-", "fakekube-"))]
    deadline = time.monotonic() + 5
    while leaked() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not leaked(), f"threads left running: {leaked()}"
