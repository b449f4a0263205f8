"""Fixtures for end-to-end agent tests.

Everything real but the two test doubles: the fake Kubernetes API server
(real HTTP, used through the real ``kubernetes`` client) and the VPP API
emulator (real socket protocol, used through the real client). Timeouts and
backoffs are shrunk so that the suite stays fast.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import api_dir
from tests.fakekube import FakeKube
from tests.fakekube import objects as k
from vppagent.agent import Agent
from vppagent.config import Config, load
from vppagent.emulator.server import Emulator
from vppagent.health import Health, HealthServer
from vppagent.sources import BackoffPolicy, EventRecorder, SourceOptions, api_client_for_host
from vppagent.vpp import cnat, routes
from vppagent.vpp.client import VppClient

FAST = SourceOptions(watch_timeout_s=5, connect_timeout_s=1.0, read_timeout_s=5.0, page_size=200,
                     backoff=BackoffPolicy(initial_s=0.05, max_s=0.3, multiplier=2.0, jitter=0.2),
                     min_watch_s=0.2)

NODE = "node-1"


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def agent_env(socket_path: str, **over: str) -> dict[str, str]:
    env = {
        "VPPAGENT_NODE_NAME": NODE,
        "VPPAGENT_VPP_SOCKET": socket_path,
        "VPPAGENT_API_DIR": api_dir(),
        "VPPAGENT_HEALTH_ADDRESS": "127.0.0.1",
        "VPPAGENT_HEALTH_PORT": "0",
        "VPPAGENT_RETRY_INITIAL_S": "0.05",
        "VPPAGENT_RETRY_MAX_S": "0.5",
        "VPPAGENT_VPP_TIMEOUT_S": "5",
        "VPPAGENT_WATCH_TIMEOUT_S": "5",
        # Pod networking has its own tier (tests/podnet): these tests count the
        # objects of routes and services only.
        "VPPAGENT_PODS": "false",
        "VPPAGENT_POLICIES": "false",
        "VPPAGENT_SERVICE_SNAT": "false",
        "VPPAGENT_SERVICE_REJECT": "false",
        # Every test agent gets its own status socket (the default path is the node's, and a
        # second agent on one path is refused), and reads no stats segment.
        "VPPAGENT_STATUS_SOCKET": os.path.join(tempfile.gettempdir(),
                                               f"vpa-status-{os.getpid()}-{os.urandom(4).hex()}.sock"),
        "VPPAGENT_STATS_SOCKET": "",
        # Spare pod interfaces have their own tests (tests/podnet/test_spares.py); elsewhere each
        # pod's veth is named after its container, which the tests check.
        "VPPAGENT_POD_SPARE_INTERFACES": "0",
    }
    env.update(over)
    return env


# -- a small cluster -------------------------------------------------------------


def populate(fake: FakeKube, *, nodes: int = 3, services: int = 4) -> None:
    """This node (node-1, 10.244.1.0/24), ``nodes - 1`` others, and ``services`` ClusterIP
    services with two ports each and three ready endpoints."""
    for i in range(1, nodes + 1):
        fake.add(k.node(f"node-{i}", pod_cidrs=[f"10.244.{i}.0/24"], internal_ip=f"192.168.0.{i}"))
    for i in range(services):
        add_service(fake, i)


def add_service(fake: FakeKube, i: int, endpoints: int = 3) -> None:
    fake.add(k.service(f"s{i}", cluster_ip=f"10.96.{i // 200}.{10 + i % 200}", ports=[
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
        {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353}]))
    fake.add(slice_for(i, endpoints))


def slice_for(i: int, endpoints: int = 3, port: int = 8080) -> dict[str, Any]:
    s = k.endpointslice(f"s{i}-a", service=f"s{i}",
                        addresses=[f"10.244.{2 + j % 2}.{(i * 7 + j) % 250 + 2}" for j in range(endpoints)],
                        port=port)
    s["ports"].append({"name": "dns", "protocol": "UDP", "port": 5353})
    return s


def vpp_picture(vpp: VppClient) -> dict[str, list]:
    """What VPP holds of the agent's kinds, comparably (ids left out)."""
    rts = sorted((str(r.prefix), tuple(sorted(str(p.next_hop) for p in r.paths)))
                 for r in routes.dump(vpp)
                 if r.prefix.subnet_of(_CLUSTER) and r.paths and all(p.type == routes.PathType.NORMAL for p in r.paths))
    trs = sorted((str(t.vip.address), t.vip.port, int(t.proto), tuple(sorted(f"{p.dst.address}:{p.dst.port}"
                                                                               for p in t.paths)))
                 for t in cnat.dump_translations(vpp))
    return {"routes": rts, "translations": trs}


import ipaddress  # noqa: E402

_CLUSTER = ipaddress.ip_network("10.244.0.0/16")


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with tempfile.TemporaryDirectory(prefix="vppagent-agent-") as d:
        emu = Emulator(str(Path(d) / "api.sock"), api_dir()).start()
        try:
            yield emu
        finally:
            emu.stop()
            assert not emu.handler_errors, emu.handler_errors


@pytest.fixture
def vpp(emulator: Emulator) -> Iterator[VppClient]:
    """A client of the test's own, to look at (or meddle with) what VPP holds."""
    c = VppClient(emulator.socket_path, api_dir(), auto_reconnect=True).connect()
    yield c
    c.close()


class Running:
    """An agent running its loop in a thread, with an HTTP health server."""

    def __init__(self, agent: Agent, server: HealthServer, recorder: EventRecorder):
        self.agent = agent
        self.server = server
        self.recorder = recorder
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-agent", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.agent.run()
        except BaseException as e:  # noqa: BLE001 - surfaced by the test
            self.error = e

    def wait_ready(self, timeout: float = 10.0) -> None:
        wait_for(lambda: self.agent.ready or self.error, timeout, "the agent to be ready")
        assert self.error is None, self.error

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "agent loop did not stop"
        self.server.stop()
        self.recorder.flush(2)
        self.recorder.stop()
        assert self.error is None, self.error


@pytest.fixture
def start_agent(fake: FakeKube, emulator: Emulator) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(features: Callable[[Config], list] | None = None, **env_over: str) -> Running:
        """An agent with ``env_over``; ``features(cfg)`` replaces the features the config enables."""
        cfg: Config = load(agent_env(emulator.socket_path, **env_over))
        api = api_client_for_host(fake.url)
        recorder = EventRecorder(api, host=NODE).start()
        health = Health()
        registry = CollectorRegistry()
        agent = Agent(cfg, api_client=api, recorder=recorder, health=health, source_options=FAST,
                      registry=registry, features=features(cfg) if features is not None else None)
        server = HealthServer(health, "127.0.0.1", 0, registry).start()
        run = Running(agent, server, recorder)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.thread.is_alive():
            run.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(**over: str) -> dict[str, str]:
    from tests.conftest import REPO

    env = {k: v for k, v in os.environ.items() if not k.startswith("VPPAGENT_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(over)
    return env
