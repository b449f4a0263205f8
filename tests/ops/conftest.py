"""A running agent (fake Kubernetes API + the VPP emulator, both over their real protocols)
with its status socket, health server and ops metrics, for the operator tier."""
from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.agent.conftest import FAST, NODE, agent_env, populate, wait_for
from tests.conftest import api_dir
from tests.fakekube import FakeKube
from vppagent.agent import Agent
from vppagent.config import load
from vppagent.emulator.server import Emulator
from vppagent.health import Health, HealthServer
from vppagent.ops import metrics
from vppagent.ops.status_server import StatusServer
from vppagent.sources import api_client_for_host


@dataclass
class OpsAgent:
    agent: Agent
    fake: FakeKube
    vpp_socket: str
    status_socket: str
    health_port: int
    registry: CollectorRegistry
    ops: metrics.OpsMetrics
    errors: list[BaseException] = field(default_factory=list)


@pytest.fixture
def ops_agent() -> Iterator[OpsAgent]:
    with tempfile.TemporaryDirectory(prefix="vpa-ops-") as d, FakeKube(bookmark_interval=0.2) as fake:
        populate(fake, nodes=3, services=2)
        emu = Emulator(str(Path(d) / "api.sock"), api_dir()).start()
        cfg = load(agent_env(emu.socket_path, VPPAGENT_PODS="false"))
        registry = CollectorRegistry()
        health = Health()
        agent = Agent(cfg, api_client=api_client_for_host(fake.url), source_options=FAST, health=health,
                      registry=registry)
        ops = metrics.register(registry, agent, stats_socket=None)
        server = HealthServer(health, "127.0.0.1", 0, registry).start()
        status = StatusServer.for_agent(str(Path(d) / "run" / "status.sock"), agent).start()
        handle = OpsAgent(agent, fake, emu.socket_path, status.path, server.port, registry, ops)

        def run() -> None:
            try:
                agent.run()
            except BaseException as e:  # noqa: BLE001 - surfaced below
                handle.errors.append(e)

        thread = threading.Thread(target=run, name="ops-agent", daemon=True)
        thread.start()
        try:
            wait_for(lambda: agent.ready or handle.errors, 20, "the agent to be ready")
            assert not handle.errors, handle.errors
            yield handle
        finally:
            agent.stop()
            thread.join(timeout=15)
            status.stop()
            server.stop()
            emu.stop()
        assert not thread.is_alive(), "agent loop did not stop"
        assert not handle.errors, handle.errors


__all__ = ["NODE", "OpsAgent", "wait_for"]
