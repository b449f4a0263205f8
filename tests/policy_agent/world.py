"""A small node for feature tests: cluster state, the policies feature, a real reconciler on a VPP API.

Pod interfaces are loopbacks tagged ``test-pod:<name>`` under the real
``pod-interface`` kind name (the veth/af_packet kind needs host devices; the
policy side only needs an sw_if_index behind the key).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vppagent.model.cluster_state import ClusterState
from vppagent.model.k8s import FrozenMap, Namespace, Node as K8sNode, ObjectKey, Pod, networkpolicy_from_api
from vppagent.policy.feature import PolicyFeature
from vppagent.kinds import default_is_retriable
from vppagent.reconcile import Found, Key, Reconciler
from vppagent.sources import Delete, Upsert
from vppagent.vpp import interfaces
from vppagent.vpp.client import VppClient

NODE = "n1"
TAG = "test-pod:"


class LoopbackPods:
    """The ``pod-interface`` kind as loopbacks (value: the interface name)."""

    kind = "pod-interface"
    retrieve_after: tuple[str, ...] = ()

    def key(self, value: str) -> str:
        return value

    def dependencies(self, value: str) -> Iterable[Key]:
        return ()

    def create(self, vpp: VppClient, value: str, resolver: Any) -> int:
        sw = interfaces.create_loopback(vpp)
        interfaces.set_tag(vpp, sw, TAG + value)
        return sw

    def can_update(self, old: str, new: str) -> bool:
        return False

    def update(self, *a: Any) -> Any:
        raise NotImplementedError

    def delete(self, vpp: VppClient, value: str, handle: int, resolver: Any) -> None:
        interfaces.delete_loopback(vpp, handle)

    def retrieve(self, vpp: VppClient, resolver: Any) -> list[Found[str]]:
        return [Found(i.tag[len(TAG):], i.sw_if_index) for i in interfaces.dump(vpp) if i.tag.startswith(TAG)]

    def is_retriable(self, error: Exception) -> bool:
        return default_is_retriable(error)


@dataclass(frozen=True)
class Att:
    pod_namespace: str
    pod_name: str
    container_id: str
    ifname: str = "eth0"


@dataclass
class Pods:
    """The ``pods`` feature as the policy feature sees it: attachments, and their interface intents."""

    atts: dict[str, Att] = field(default_factory=dict)

    def attachments(self) -> list[Att]:
        return list(self.atts.values())


class Node:
    def __init__(self, vpp: VppClient, backend: str | None = None):
        self.vpp = vpp
        self.cluster = ClusterState()
        self.pods = Pods()
        self.feature = PolicyFeature(NODE, self.pods, backend=(lambda: backend) if backend else None)
        self.feature.bind_vpp(vpp)
        self.reconciler = Reconciler(vpp)
        self.reconciler.register(LoopbackPods())
        for d in self.feature.descriptors():
            self.reconciler.register(d)
        self.problems: list[Any] = []
        self.vpp_emu: Any = None  # the emulator, when the VPP is emulated (verdict hook)

    # -- cluster -------------------------------------------------------------------------

    def namespace(self, name: str, **labels: str) -> None:
        labels = {"kubernetes.io/metadata.name": name, **labels}
        self.cluster.apply(Upsert(Namespace(name, labels=FrozenMap(labels)), "test"))

    def node(self, name: str, *ips: str) -> K8sNode:
        """A Node object with these InternalIPs."""
        obj = K8sNode(name, internal_ips=tuple(ipaddress.ip_address(i) for i in ips))
        self.cluster.apply(Upsert(obj, "test"))
        return obj

    def pod(self, ref: str, ip: str, node: str = NODE, **labels: str) -> Pod:
        ns, name = ref.split("/")
        pod = Pod(ns, name, node_name=node, ips=(ipaddress.ip_address(ip),), labels=FrozenMap(labels),
                  phase="Running")
        self.cluster.apply(Upsert(pod, "test"))
        if node == NODE:
            self.pods.atts[ref] = Att(ns, name, (name * 8)[:32].ljust(32, "0"))
        return pod

    def remove(self, obj: Any) -> None:
        self.cluster.apply(Delete(obj.key, obj, "test"))
        if isinstance(obj, Pod):
            self.pods.atts.pop(f"{obj.namespace}/{obj.name}", None)

    def policy(self, obj: Mapping[str, Any]) -> Any:
        p = networkpolicy_from_api(dict(obj))
        self.cluster.apply(Upsert(p, "test"))
        return p

    # -- the agent's pass ------------------------------------------------------------------

    def interface_intents(self) -> list[Any]:
        from vppagent.reconcile import Intent

        return [Intent("pod-interface", f"{a.container_id[:32]}/{a.ifname}") for a in self.pods.atts.values()]

    def converge(self) -> Any:
        intents, self.problems = self.feature.desired(self.cluster)
        self.reconciler.set_desired(self.interface_intents() + intents)
        result = self.reconciler.converge()
        assert not self.reconciler.failures, dict(self.reconciler.failures)
        return result

    def sw_if_index(self, ref: str) -> int:
        a = self.pods.atts[ref]
        return self.reconciler.applied.get(Key("pod-interface", f"{a.container_id[:32]}/{a.ifname}")).handle


def pod_key(ref: str) -> ObjectKey:
    ns, name = ref.split("/")
    return ObjectKey("Pod", ns, name)


def converge_delta(node: Node, touched: set[ObjectKey]) -> Any:
    """The agent's incremental path: only the touched objects, intents patched in place."""
    delta = node.feature.desired_delta(node.cluster, touched)
    assert delta is not None
    node.reconciler.update_desired(delta.removed, delta.added)
    node.problems = delta.problems
    result = node.reconciler.converge()
    assert not node.reconciler.failures, dict(node.reconciler.failures)
    return result


def full_intents(node: Node) -> set[Any]:
    """What the full path would want now (the feature's kinds only)."""
    intents, _ = node.feature.desired(node.cluster)
    return set(intents)


def desired_now(node: Node) -> set[Any]:
    kinds = {d.kind for d in node.feature.descriptors()}
    return {i for i in node.reconciler.desired.values() if i.kind in kinds}
