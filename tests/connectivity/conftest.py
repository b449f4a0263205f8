"""Two nodes, each with its own emulated VPP (a test double of VPP 26.06 over the real socket
protocol) and its own connectivity feature + reconciler, driven by one shared cluster state.

The cluster state stands in for the API server: ``Pair.publish`` does what the agent's Node
patcher does (puts ``feature.annotations()`` on the node's own Node object).
"""
from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ipsec import RekeyTimers
from testbed.emulator.server import Emulator
from testbed.targets import api_dir
from tests.reconcile.fakes import Clock
from vppagent.connectivity import EncryptionSettings, NodeConnectivity
from vppagent.model.k8s import Node
from vppagent.model.k8s.fields import FrozenMap
from vppagent.reconcile import Intent, Key, Reconciler
from vppagent.kinds.loopback_kind import KIND as LOOPBACK_KIND
from vppagent.kinds.loopback_kind import Loopback, LoopbackDescriptor
from vppagent.vpp.client import VppClient
from vppagent.vpp.tunnels import VxlanDecapNext

GATEWAY = Loopback("pod-gateway", True, ("169.254.1.1/32",), 0)
GATEWAY_KEY = Key(LOOPBACK_KIND, "pod-gateway")
CLUSTER_CIDRS = (ipaddress.ip_network("10.244.0.0/16"),)
NODES = {  # name -> (pod CIDR, InternalIP)
    "node-a": ("10.244.1.0/24", "192.0.2.1"),
    "node-b": ("10.244.2.0/24", "192.0.2.2"),
    "node-c": ("10.244.3.0/24", "192.0.2.3"),
}


@dataclass
class ClusterView:
    nodes: dict[str, Node] = field(default_factory=dict)

    def annotate(self, name: str, **changes: str | None) -> None:
        """Set (or, with None, remove) annotations; keys use _ for - and / as in k8s names."""
        node = self.nodes[name]
        ann = dict(node.annotations)
        for k, v in changes.items():
            key = "vppagent.io/" + k.replace("_", "-")
            if v is None:
                ann.pop(key, None)
            else:
                ann[key] = v
        self.nodes[name] = dataclasses.replace(node, annotations=FrozenMap(ann))


def make_node(name: str, **annotations: str) -> Node:
    cidr, ip = NODES[name]
    return Node(name, uid=f"uid-{name}", pod_cidrs=(ipaddress.ip_network(cidr),),
                internal_ips=(ipaddress.ip_address(ip),),
                annotations=FrozenMap({"vppagent.io/" + k.replace("_", "-"): v for k, v in annotations.items()}))


@dataclass
class Side:
    name: str
    emu: Emulator
    vpp: VppClient
    feature: NodeConnectivity
    rec: Reconciler
    problems: list = field(default_factory=list)

    def program(self, cluster: ClusterView):
        intents, problems = self.feature.desired(cluster)
        self.problems = problems
        self.rec.set_desired([Intent(LOOPBACK_KIND, GATEWAY, None)] + intents)
        result = self.rec.converge()
        assert not self.rec.failures, {str(k): str(f.error) for k, f in self.rec.failures.items()}
        assert not self.emu.handler_errors
        return result

    def restart_agent(self, tmp: Path, mode: str, clock: Clock) -> "Side":
        """A new feature + reconciler on the same VPP and key dir (an agent restart)."""
        feature = _feature(self.name, tmp, mode, clock)
        rec = _reconciler(self.vpp, feature)
        return Side(self.name, self.emu, self.vpp, feature, rec)


def emulator_decap_next(vpp, underlay_v6: bool) -> int:
    """The emulator does not implement ``add_node_next`` (it answers UNIMPLEMENTED) and knows only
    vxlan-input's static nexts: its L3 VXLAN tunnels get l2-input, which it does not route by anyway.
    The real-VPP tier uses the real ``ip_input_next``."""
    return VxlanDecapNext.L2_INPUT


def _feature(name: str, tmp: Path, mode: str, clock: Clock, *, real: bool = False) -> NodeConnectivity:
    settings = EncryptionSettings(tmp / name / "keys", timers=RekeyTimers(switch_after_s=5, overlap_s=30))
    extra = {} if real else {"vxlan_decap_next": emulator_decap_next}
    return NodeConnectivity(name, CLUSTER_CIDRS, mode=mode, unnumbered=GATEWAY_KEY, encryption=settings,
                            clock=clock, **extra)


def _reconciler(vpp: VppClient, feature: NodeConnectivity) -> Reconciler:
    rec = Reconciler(vpp)
    rec.register(LoopbackDescriptor())
    for d in feature.descriptors():
        rec.register(d)
    return rec


@dataclass
class Pair:
    a: Side
    b: Side
    cluster: ClusterView
    clock: Clock
    tmp: Path
    mode: str
    silent: set[str] = field(default_factory=set)  # nodes whose agent does not publish (broken patcher)

    @property
    def sides(self) -> tuple[Side, Side]:
        return (self.a, self.b)

    def publish(self) -> None:
        for s in self.sides:
            if s.name in self.silent:
                continue
            node = self.cluster.nodes[s.name]
            ann = dict(node.annotations)
            ann.update(s.feature.annotations())
            self.cluster.nodes[s.name] = dataclasses.replace(node, annotations=FrozenMap(ann))

    def program(self) -> None:
        """Both agents' passes, then publishing, then again if publishing changed a Node."""
        for s in self.sides:
            s.program(self.cluster)
        before = dict(self.cluster.nodes)
        self.publish()
        if self.cluster.nodes != before:
            for s in self.sides:
                s.program(self.cluster)


@pytest.fixture
def make_pair(tmp_path):
    made: list[tuple[Emulator, VppClient]] = []
    adir = api_dir()

    def make(mode: str = "ipip", **annotations: str) -> Pair:
        clock = Clock()
        cluster = ClusterView({n: make_node(n, **annotations) for n in ("node-a", "node-b")})
        sides = []
        for name in ("node-a", "node-b"):
            emu = Emulator(str(tmp_path / f"{name}.sock"), adir).start()
            vpp = VppClient(emu.socket_path, adir).connect()
            made.append((emu, vpp))
            feature = _feature(name, tmp_path, mode, clock)
            sides.append(Side(name, emu, vpp, feature, _reconciler(vpp, feature)))
        pair = Pair(sides[0], sides[1], cluster, clock, tmp_path, mode)
        # As the agent does: compute, publish what changed, compute again on the Node update.
        for s in pair.sides:
            s.feature.desired(cluster)
        pair.publish()
        return pair

    yield make
    for emu, vpp in made:
        vpp.close()
        emu.stop()
