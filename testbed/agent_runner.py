"""One agent running its loop in a thread, as ``vppagent run`` runs it on its main thread.

Owns the settings tests and benchmarks shrink (source timeouts and backoff,
retry delays; ``agent_env``), and ``AgentThread``: starting ``Agent.run`` on a
thread of its own, waiting until the agent is ready, and stopping it,
surfacing any exception the loop raised. Callers add what they need around
it (a health server, an Event recorder, a status server) as ``on_stop``
callbacks, so that one runner serves every tier.
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from testbed.targets import api_dir
from testbed.wait import wait_for
from vppagent.agent import Agent
from vppagent.sources import BackoffPolicy, SourceOptions

FAST = SourceOptions(watch_timeout_s=5, connect_timeout_s=1.0, read_timeout_s=5.0, page_size=200,
                     backoff=BackoffPolicy(initial_s=0.05, max_s=0.3, multiplier=2.0, jitter=0.2),
                     min_watch_s=0.2)

NODE = "node-1"


def agent_env(socket_path: str, **over: str) -> dict[str, str]:
    """An agent's environment for tests: this VPP socket, fast retries, features off unless asked for."""
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
        # Pod networking and policy have their own tiers: elsewhere the agent
        # programs routes and services only, which the tests count.
        "VPPAGENT_PODS": "false",
        "VPPAGENT_POLICIES": "false",
        "VPPAGENT_SERVICE_SNAT": "false",
        "VPPAGENT_SERVICE_REJECT": "false",
        # Every test agent gets its own status socket (the default path is the node's, and a
        # second agent on one path is refused), and reads no stats segment.
        "VPPAGENT_STATUS_SOCKET": os.path.join(tempfile.gettempdir(),
                                               f"vpa-status-{os.getpid()}-{os.urandom(4).hex()}.sock"),
        "VPPAGENT_STATS_SOCKET": "",
        # Spare pod interfaces have their own tests; elsewhere each pod's veth
        # is named after its container, which the tests check.
        "VPPAGENT_POD_SPARE_INTERFACES": "0",
    }
    env.update(over)
    return env


@dataclass
class AgentThread:
    """``agent.run()`` on a thread; ``errors`` holds what the loop raised."""

    agent: Agent
    name: str = "test-agent"
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> "AgentThread":
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.agent.run()
        except BaseException as e:  # noqa: BLE001 - surfaced by wait_ready and stop
            self.errors.append(e)

    @property
    def error(self) -> BaseException | None:
        return self.errors[0] if self.errors else None

    def wait_ready(self, timeout: float = 20.0) -> None:
        wait_for(lambda: self.agent.ready or self.errors, timeout, "the agent to be ready")
        assert not self.errors, self.errors

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def stop(self, *, check: bool = True) -> None:
        """Stop the loop, then run the ``on_stop`` callbacks (last added first)."""
        self.agent.stop()
        if self.thread is not None:
            self.thread.join(timeout=15)
        for cb in reversed(self.on_stop):
            cb()
        self.on_stop.clear()
        assert self.thread is None or not self.thread.is_alive(), "agent loop did not stop"
        if check:
            assert not self.errors, self.errors


__all__ = ["AgentThread", "FAST", "NODE", "agent_env"]
