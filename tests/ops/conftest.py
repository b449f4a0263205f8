"""A running agent (fake Kubernetes API + the VPP emulator, both over their real protocols)
with its status socket, health server and ops metrics, for the operator tier."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from testbed import targets
from testbed.agent_runner import FAST, NODE, AgentThread, agent_env
from testbed.fakekube import FakeKube
from testbed.wait import wait_for
from tests.cluster import populate
from vppagent.agent import Agent
from vppagent.config import load
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
    runner: AgentThread

    @property
    def errors(self) -> list[BaseException]:
        return self.runner.errors


@pytest.fixture
def ops_agent(tmp_short: Path) -> Iterator[OpsAgent]:
    with ExitStack() as stack:
        fake = stack.enter_context(FakeKube(bookmark_interval=0.2))
        populate(fake, nodes=3, services=2)
        emu = targets.emulator(stack, tmp_short, check_errors=False)
        cfg = load(agent_env(emu.socket, VPPAGENT_PODS="false"))
        registry = CollectorRegistry()
        health = Health()
        agent = Agent(cfg, api_client=api_client_for_host(fake.url), source_options=FAST, health=health,
                      registry=registry)
        ops = metrics.register(registry, agent, stats_socket=None)
        server = HealthServer(health, "127.0.0.1", 0, registry).start()
        status = StatusServer.for_agent(str(tmp_short / "run" / "status.sock"), agent).start()
        runner = AgentThread(agent, "ops-agent", on_stop=[server.stop, status.stop])
        handle = OpsAgent(agent, fake, emu.socket, status.path, server.port, registry, ops, runner)
        runner.start()
        try:
            runner.wait_ready()
            yield handle
        finally:
            runner.stop(check=False)
        assert not runner.errors, runner.errors


__all__ = ["NODE", "OpsAgent", "wait_for"]
