"""kill -9 at every step of a pod's ADD and DEL: after a restart and a DEL, nothing is left.

The agent runs as a process, as on a node (``vppagent run``), against VPP
(the emulator here; a private real VPP with ``VPPAGENT_VPP_BIN``) and the
fake API server. One clean run with ``crash_trace`` lists the crash points
an ADD and a DEL pass (``vppagent/crash.py``: every VPP request before and
after, every disk write and Linux change of the CNI steps). Then, for each
point in turn, an agent armed with ``crash_at`` kills itself there in the
middle of the same ADD and DEL; a new agent starts, the runtime retries the
DEL (as kubelet does after a failed ADD), and the test asserts that VPP,
the node and the state directory hold nothing of the pod: no interface
(tagged or left untagged), route, veth, address or record.
"""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import grpc
import pytest

from testbed import targets
from testbed.targets import emulator_and_private_vpp
from testbed.agent_process import AgentProcess
from testbed.agent_runner import agent_env
from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from testbed.podnet import NETCONF, Pods, container_id, host_links
from testbed.wait import wait_for
from tests.cluster import free_port
from vppagent.cni import pod_interface_kind, pool
from vppagent.cni.ipam import Ipam
from vppagent.cni.pb import cni_backend_pb2 as pb
from vppagent.cni.pb import cni_backend_pb2_grpc as pb_grpc
from vppagent.cni.store import AttachmentStore
from vppagent.crash import CrashPoints
from vppagent.vpp import af_packet, interfaces, routes

pytestmark = [pytest.mark.netns, pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]

POD_CIDR = ipaddress.ip_network("10.244.1.0/24")
CID = container_id(1)


class Node:
    """One node's VPP, API server, state directory and CNI socket; agents come and go."""

    def __init__(self, stack: ExitStack, tmp: Path, vpp_bin: str | None):
        self.tmp = tmp
        self.target = (targets.private_vpp(stack, tmp / "vpp", binary=vpp_bin) if vpp_bin
                       else targets.emulator(stack, tmp / "emu"))
        self.vpp = stack.enter_context(self.target.client(required={}))
        self.fake = stack.enter_context(FakeKube(bookmark_interval=0.5))
        self.fake.add(k.node("node-1", pod_cidrs=[str(POD_CIDR)], internal_ip="192.168.0.1"))
        self.state = tmp / "state"
        self.cni_socket = str(tmp / "cni" / "cni.sock")
        self.pods = Pods()
        stack.callback(self.pods.close)
        self.netns = self.pods.netns(1)

    def agent(self, *, ready: bool = True, **over: str) -> AgentProcess:
        env = agent_env(self.target.socket, VPPAGENT_KUBECONFIG=str(self.fake.write_kubeconfig(self.tmp / "kc")),
                        VPPAGENT_HEALTH_PORT=str(free_port()), VPPAGENT_PODS="true", VPPAGENT_SERVICES="false",
                        VPPAGENT_POD_INTERFACE="veth", VPPAGENT_STATE_DIR=str(self.state),
                        VPPAGENT_CNI_SOCKET=self.cni_socket, VPPAGENT_KERNEL_RCU_EXPEDITED="false", **over)
        a = AgentProcess(env)
        if ready:
            a.wait_ready()
        return a

    def cni(self, verb: str) -> pb.CniError | None:
        """One ADD or DEL as the plugin sends it; a dead agent is an error as the runtime sees one."""
        req = pb.CniRequest(container_id=CID, netns=self.netns, ifname="eth0",
                            args="K8S_POD_NAMESPACE=default;K8S_POD_NAME=p", config=json.dumps(NETCONF).encode())
        with grpc.insecure_channel(f"unix:{self.cni_socket}") as channel:
            try:
                reply = getattr(pb_grpc.CniBackendStub(channel), verb)(req, timeout=30)
            except grpc.RpcError as e:
                return pb.CniError(code=11, msg=f"agent gone: {e.code()}")
        return reply.error if reply.HasField("error") else None

    def leftovers(self) -> dict[str, object]:
        """What VPP and the node hold of the pod (all empty when clean)."""
        ifs = interfaces.dump(self.vpp)
        untagged = {i.sw_if_index for i in ifs if not i.tag}
        ours = pod_interface_kind.HOST_IFNAME, pool.HOST_IFNAME
        out = {
            "tagged": sorted(i.tag for i in ifs if i.tag.startswith((pod_interface_kind.TAG_PREFIX, pool.TAG_PREFIX))),
            "untagged": sorted(a.host_if_name for a in af_packet.dump(self.vpp)
                               if a.sw_if_index in untagged and any(p.fullmatch(a.host_if_name) for p in ours)),
            "routes": sorted(str(r.prefix) for r in routes.dump(self.vpp)
                             if r.prefix.version == 4 and r.prefix.subnet_of(POD_CIDR)
                             and r.prefix.prefixlen == 32),
            "veths": sorted(host_links(pod_interface_kind.HOST_IFNAME, pool.HOST_IFNAME, pool.SPARE_IFNAME)),
            "pod eth0": self.pods.exec(self.netns, "ip", "link", "show", "eth0").returncode == 0,
        }
        return {k: v for k, v in out.items() if v}

    def disk(self) -> dict[str, object]:
        """The state directory's addresses and records (read with no agent running)."""
        with Ipam(self.state / "ipam") as ipam:
            ips = ipam.allocations()
        records = AttachmentStore(self.state).all()
        return {k: v for k, v in {"ips": ips, "records": records}.items() if v}


def _spare_tags(node: Node) -> list[str]:
    return [i.tag for i in interfaces.dump(node.vpp) if i.tag.startswith(pool.TAG_PREFIX)]


def _quiet(path: Path) -> list[str]:
    """The trace once the agent has stopped adding to it (the spare thread works on its own)."""
    lines: list[str] = []
    while True:
        time.sleep(0.5)
        now = path.read_text().splitlines() if path.exists() else []
        if now and now == lines:
            return now
        lines = now


def _trace(node: Node) -> list[str]:
    """The crash points of one ADD and one DEL, in the order a fresh agent reaches them."""
    trace = node.tmp / "trace"
    agent = node.agent(VPPAGENT_CRASH_TRACE=str(trace))
    try:
        start = len(trace.read_text().splitlines()) if trace.exists() else 0
        assert node.cni("Add") is None
        assert node.cni("Del") is None
        assert node.leftovers() == {}
        points = trace.read_text().splitlines()[start:]  # before the stop's own points
    finally:
        assert agent.kill(signal.SIGTERM) == 0
    assert points == [p for p in points if p.startswith(("vpp:", "cni:"))]
    # A read changes nothing: a kill there is a kill before the next change.
    return [p for p in points if not p.split(":")[1].startswith("show_")]


@pytest.mark.parametrize("vpp_bin", emulator_and_private_vpp())
def test_kill_9_at_every_step_of_add_and_del_leaves_nothing(tmp_path: Path, vpp_bin: str | None) -> None:
    with ExitStack() as stack:
        node = Node(stack, tmp_path, vpp_bin)
        _trace(node)  # the first agent makes the node's own objects (the pod gateway); not counted
        points = _trace(node)
        kinds = {p.split(":")[0] for p in points}
        assert kinds == {"vpp", "cni"}, points
        assert any(p.startswith("vpp:af_packet_create") for p in points), points
        assert any(p.startswith("cni:record:after") for p in points), points
        survived = []
        for point in points:
            armed = node.agent(VPPAGENT_CRASH_AT=point)
            if node.cni("Add") is None:
                node.cni("Del")
            try:
                rc = armed.proc.wait(timeout=10)  # the kill is synchronous: it died before answering
            except subprocess.TimeoutExpired:
                survived.append(point)
                assert armed.kill(signal.SIGTERM) == 0
                continue
            assert armed.kill(signal.SIGKILL) == rc == -signal.SIGKILL, (point, rc)
            after = node.agent()
            try:
                assert node.cni("Del") is None, point
                assert node.leftovers() == {}, f"killed at {point}: {node.leftovers()}"
            finally:
                assert after.kill(signal.SIGTERM) == 0
            assert node.disk() == {}, f"killed at {point}: {node.disk()}"
        assert survived == [], f"points not reached when armed: {survived}"


@pytest.mark.parametrize("vpp_bin", emulator_and_private_vpp())
def test_kill_9_at_every_step_of_making_a_spare_leaves_nothing(tmp_path: Path, vpp_bin: str | None) -> None:
    """The spare thread makes a veth and the reconciler attaches it; an agent killed at any step,
    restarted without spares, leaves no spare veth or VPP interface behind."""
    with ExitStack() as stack:
        node = Node(stack, tmp_path, vpp_bin)
        warm = node.agent()  # the node's own objects (the pod gateway) exist before the trace
        assert warm.kill(signal.SIGTERM) == 0
        trace = tmp_path / "spare-trace"
        agent = node.agent(VPPAGENT_POD_SPARE_INTERFACES="1", VPPAGENT_CRASH_TRACE=str(trace))
        try:
            wait_for(lambda: _spare_tags(node), 20, "the spare in VPP")
            points = [p for p in _quiet(trace) if not p.split(":")[1].startswith("show_")]
        finally:
            assert agent.kill(signal.SIGTERM) == 0
        start = points.index("cni:spare-veth:before#1")
        points = points[start:]
        assert "vpp:af_packet_create_v3:after#1" in points and "vpp:sw_interface_tag_add_del:before#1" in points
        clean = node.agent()
        assert clean.kill(signal.SIGTERM) == 0
        assert node.leftovers() == {}
        for point in points:
            armed = node.agent(ready=False, VPPAGENT_POD_SPARE_INTERFACES="1", VPPAGENT_CRASH_AT=point)
            assert armed.proc.wait(timeout=30) == -signal.SIGKILL, point
            armed.kill(signal.SIGKILL)
            after = node.agent()
            try:
                assert node.leftovers() == {}, f"killed at {point}: {node.leftovers()}"
            finally:
                assert after.kill(signal.SIGTERM) == 0


def test_a_bad_crash_point_is_refused_at_start(tmp_path: Path) -> None:
    from testbed.agent_process import subprocess_env

    env = subprocess_env(VPPAGENT_CRASH_AT="vpp:af_packet_create_v3:during",
                         VPPAGENT_STATE_DIR=str(tmp_path / "state"))
    out = subprocess.run([sys.executable, "-m", "vppagent.cli", "run"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "VPPAGENT_CRASH_AT" in out.stderr and "before|after" in out.stderr, out
    assert CrashPoints.from_env({"VPPAGENT_CRASH_AT": "cni:record:after#2"}).at == "cni:record:after#2"
    assert not CrashPoints.from_env({}).armed
