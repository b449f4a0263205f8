"""Fixtures of the plugin tests: a running fake agent and the spec's example netconf."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from testbed.fake_cni_agent import FakeAgent, RunningAgent


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    with RunningAgent() as a:
        yield a


def spec_netconf(socket: str = "/nonexistent/cni.sock", **extra: Any) -> dict[str, Any]:
    """The CNI spec's example network configuration, pointed at our plugin."""
    conf: dict[str, Any] = {
        "cniVersion": "1.1.0",
        "name": "dbnet",
        "type": "vppagent-cni",
        "agentSocket": socket,
        "keyA": ["some more", "plugin specific", "configuration"],
        "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1"},
        "dns": {"nameservers": ["10.1.0.1"]},
    }
    conf.update(extra)
    return conf


def cni_env(command: str, **over: str) -> dict[str, str]:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "3e1a8c09f2b4", "CNI_NETNS": "/var/run/netns/blue",
           "CNI_IFNAME": "eth0", "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
           "CNI_PATH": "/opt/cni/bin"}
    env.update(over)
    return {k: v for k, v in env.items() if v is not None}


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()
