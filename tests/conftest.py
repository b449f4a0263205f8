"""Fixtures every suite may use: short temp dirs, the fake API server, the emulator and a client
of it, and agents started on them. The harnesses themselves live in ``testbed/``."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from testbed import targets
from testbed.agent_runner import FAST, NODE, AgentThread, agent_env
from testbed.emulator.process import start_emulator_process
from testbed.emulator.server import Emulator
from testbed.fakekube import FakeKube
from testbed.targets import REPO, Unavailable, api_dir, real_vpp_reason  # noqa: F401 - re-exported for suites
from vppagent.agent import Agent
from vppagent.config import Config, load
from vppagent.health import Health, HealthServer
from vppagent.sources import EventRecorder, api_client_for_host
from vppagent.vpp.client import VppClient


@pytest.fixture(scope="session")
def api_definitions_dir() -> str:
    try:
        return api_dir()
    except Unavailable as e:
        pytest.exit(str(e), 2)


@pytest.fixture
def tmp_short() -> Iterator[Path]:
    """A fresh directory with a short path: unix socket paths are limited to 107 bytes, and
    pytest's ``tmp_path`` is often longer than that with a socket name under it."""
    d = Path(tempfile.mkdtemp(prefix="vpa-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
def emulator(tmp_short: Path) -> Iterator[Emulator]:
    with ExitStack() as stack:
        target = targets.emulator(stack, tmp_short)
        assert target.emu is not None
        yield target.emu


@pytest.fixture
def vpp(emulator: Emulator) -> Iterator[VppClient]:
    """A client of the test's own, to look at (or meddle with) what VPP holds."""
    c = VppClient(emulator.socket_path, api_dir(), auto_reconnect=True).connect()
    yield c
    c.close()


class Running(AgentThread):
    """An agent running its loop in a thread, with an HTTP health server and an Event recorder."""

    def __init__(self, agent: Agent, server: HealthServer, recorder: EventRecorder):
        super().__init__(agent)
        self.server = server
        self.recorder = recorder
        self.on_stop += [self.recorder.stop, lambda: self.recorder.flush(2), self.server.stop]
        self.start()


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
        if run.alive():
            run.stop()


@pytest.fixture
def emulator_process() -> Iterator[str]:
    """The emulator as a process of its own (``vppagent-emulator``), for tests that run the agent as one."""
    with ExitStack() as stack:
        yield start_emulator_process(stack, api_dir()).socket
