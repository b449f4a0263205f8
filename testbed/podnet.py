"""A running agent with pod networking, for the CNI tiers and the throughput runner.

The agent runs its loop in a thread (``agent_runner``) against the fake
Kubernetes API (real HTTP) and either the emulator or a private real VPP
(``targets``); its CNI gRPC server listens on a unix socket in a temp dir. ``Pods`` creates test
network namespaces (named ``vpa-t<random>-<n>``) the way a container
runtime would, and removes them afterwards.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from testbed import targets
from testbed.agent_runner import FAST, NODE, AgentThread, agent_env
from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from vppagent.agent import Agent
from vppagent.cni.pb import cni_backend_pb2 as pb
from vppagent.cni.pb import cni_backend_pb2_grpc as pb_grpc
from vppagent.config import load
from vppagent.sources import api_client_for_host
from vppagent.vpp.client import VppClient

NETCONF = {"cniVersion": "1.0.0", "name": "vppagent", "type": "vppagent-cni"}


@dataclass
class AgentHandle:
    agent: Agent
    fake: FakeKube
    vpp: VppClient          # the test's own client, to look at VPP
    cni_socket: str
    state_dir: Path
    real_vpp: bool
    runner: AgentThread | None = None
    target: targets.Target | None = None
    _features: Callable[[Any], list] | None = None

    @property
    def errors(self) -> list[BaseException]:
        return self.runner.errors if self.runner is not None else []

    def stub(self) -> pb_grpc.CniBackendStub:
        channel = grpc.insecure_channel(f"unix:{self.cni_socket}")
        return pb_grpc.CniBackendStub(channel)

    def request(self, container_id: str, netns: str, ifname: str = "eth0", pod: str = "p",
                namespace: str = "default", prev_result: dict | None = None) -> pb.CniRequest:
        return pb.CniRequest(container_id=container_id, netns=netns, ifname=ifname,
                             args=f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod}",
                             config=json.dumps(NETCONF).encode(),
                             prev_result=json.dumps(prev_result).encode() if prev_result else b"")

    def add(self, container_id: str, netns: str, **kw: Any) -> tuple[dict | None, Any]:
        """(result, error) of one ADD through gRPC."""
        reply = self.stub().Add(self.request(container_id, netns, **kw), timeout=30)
        if reply.HasField("error"):
            return None, reply.error
        return json.loads(reply.result), None

    def delete(self, container_id: str, netns: str, **kw: Any) -> Any:
        reply = self.stub().Del(self.request(container_id, netns, **kw), timeout=30)
        return reply.error if reply.HasField("error") else None

    def check(self, container_id: str, netns: str, **kw: Any) -> Any:
        reply = self.stub().Check(self.request(container_id, netns, **kw), timeout=30)
        return reply.error if reply.HasField("error") else None

    def restart(self, between: Callable[[], None] = lambda: None) -> Agent:
        """Stop the agent, run ``between`` (what happens while none runs), then start a new one with
        the same settings, state dir, VPP and API server; returns it once it is ready."""
        assert self.runner is not None
        self.runner.stop()
        between()
        self.agent = Agent(self.agent.cfg, api_client=api_client_for_host(self.fake.url), source_options=FAST,
                           features=self._features(self.agent.cfg) if self._features is not None else None)
        self.runner = AgentThread(self.agent, name="podnet-agent").start()
        self.runner.wait_ready(30)
        return self.agent


@contextmanager
def running_agent(*, vpp_bin: str | None = None, pod_cidrs: tuple[str, ...] = ("10.244.1.0/24",),
                  pod_interface: str = "veth", state_dir: str | None = None, fake: FakeKube | None = None,
                  plugin_dirs: tuple[str | Path, ...] = (), workers: int | None = None, namespaces: tuple[str, ...] = (),
                  features: Callable[[Any], list] | None = None, **env: str) -> Iterator[AgentHandle]:
    """An agent serving pods: the emulator, or a private real VPP when ``vpp_bin`` is given
    (with ``plugin_dirs`` and ``workers``); ``features(cfg)`` replaces the features the
    configuration enables; ``env`` overrides the agent's settings."""
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vpa-podnet-")))
        if fake is None:
            fake = stack.enter_context(FakeKube(bookmark_interval=0.2))
            fake.add(k.node(NODE, pod_cidrs=list(pod_cidrs), internal_ip="192.168.0.1"))
            for ns in namespaces:
                fake.add(k.namespace(ns))
        if vpp_bin:
            target = targets.private_vpp(stack, tmp / "vpp", binary=vpp_bin, plugin_dirs=plugin_dirs,
                                         workers=workers)
        else:
            # tun pods need the tun device VPP would create: the emulator makes it.
            target = targets.emulator(stack, tmp, host_devices=pod_interface == "tun", workers=workers or 0)
        sd = Path(state_dir) if state_dir else tmp / "state"
        cni_socket = str(tmp / "cni" / "cni.sock")
        settings = {"VPPAGENT_PODS": "true", "VPPAGENT_SERVICES": "false", "VPPAGENT_STATE_DIR": str(sd),
                    "VPPAGENT_CNI_SOCKET": cni_socket, "VPPAGENT_POD_INTERFACE": pod_interface, **env}
        cfg = load(agent_env(target.socket, **settings))
        agent = Agent(cfg, api_client=api_client_for_host(fake.url), source_options=FAST,
                      features=features(cfg) if features is not None else None)
        vpp = stack.enter_context(target.client(required={}))
        handle = AgentHandle(agent, fake, vpp, cni_socket, sd, bool(vpp_bin), target=target, _features=features)
        handle.runner = AgentThread(agent, name="podnet-agent").start()
        stack.callback(lambda: handle.runner.stop(check=False) if handle.runner is not None else None)
        handle.runner.wait_ready(30)
        yield handle
        assert not handle.errors, handle.errors


class Pods:
    """Network namespaces standing in for pod sandboxes."""

    def __init__(self) -> None:
        self.prefix = f"vpa-t{secrets.token_hex(3)}"
        self.made: list[str] = []

    def netns(self, n: int) -> str:
        name = f"{self.prefix}-{n}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.made.append(name)
        return f"/var/run/netns/{name}"

    def drop(self, path: str) -> None:
        name = Path(path).name
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)

    def exec(self, path: str, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", Path(path).name, *cmd], capture_output=True,
                              text=True, timeout=timeout)

    def close(self) -> None:
        for name in self.made:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


_RUN = secrets.token_hex(28)  # one per test process: ids differ between runs, not between calls


def container_id(n: int) -> str:
    return f"{n:08x}" + _RUN


def host_links(*patterns: re.Pattern[str]) -> set[str]:
    """The links of this netns that match one of ``patterns``; by default the veth host ends of
    pods (``vpa`` + 12 hex digits)."""
    patterns = patterns or (re.compile(r"vpa[0-9a-f]{12}"),)
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    return {n for n in names if any(p.fullmatch(n) for p in patterns)}


def vpp_binary() -> str | None:
    return os.environ.get("VPPAGENT_VPP_BIN") or None
