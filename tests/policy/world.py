"""A small cluster for policy tests: a compiler, a mirror built only from its deltas, and verdicts.

Every change goes through ``PolicyCompiler``; the returned delta is applied to
a mirror of the data plane (sets and per-pod policies), and the mirror must
equal ``snapshot()`` after every step, so each test also checks that the
deltas are complete and minimal in form (no member re-added, no unknown set).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from vppagent.model.k8s import (
    ContainerPort,
    FrozenMap,
    Namespace,
    Node,
    ObjectKey,
    Pod,
    Protocol,
    networkpolicy_from_api,
)
from vppagent.policy.compiler import PolicyCompiler, PolicyDelta
from vppagent.policy.ir import AddrPortSet, AddrSet, IpSet, Packet, PodPolicy

from .evaluator import evaluate

NODE = "n1"
PROTO = {"TCP": 6, "UDP": 17, "SCTP": 132, "ICMP": 1}


class World:
    def __init__(self, node: str = NODE):
        self.compiler = PolicyCompiler(node)
        self.pods: dict[str, Pod] = {}
        self.sets: dict[str, IpSet] = {}
        self.policies: dict[ObjectKey, PodPolicy] = {}
        self.deltas: list[PolicyDelta] = []

    # -- inputs ---------------------------------------------------------------

    def namespace(self, name: str, **labels: str) -> PolicyDelta:
        labels = {"kubernetes.io/metadata.name": name, **labels}
        return self._apply(self.compiler.update_namespace(Namespace(name, labels=FrozenMap(labels))))

    def node(self, name: str, *ips: str) -> PolicyDelta:
        """A Node with these InternalIPs (only the compiler's own node matters to it)."""
        return self._apply(self.compiler.update_node(Node(name, internal_ips=tuple(
            ipaddress.ip_address(i) for i in ips))))

    def pod(self, ref: str, labels: Mapping[str, str] | None = None, ips: tuple[str, ...] = (),
            node: str = NODE, ports: Mapping[str, int | tuple[str, int]] | None = None,
            phase: str = "Running", host_network: bool = False) -> PolicyDelta:
        ns, name = ref.split("/")
        cports = tuple(ContainerPort(n, Protocol(p[0]), p[1]) if isinstance(p, tuple)
                       else ContainerPort(n, Protocol.TCP, p) for n, p in (ports or {}).items())
        pod = Pod(ns, name, node_name=node, ips=tuple(ipaddress.ip_address(i) for i in ips),
                  labels=FrozenMap(labels or {}), ports=cports, phase=phase, host_network=host_network)
        self.pods[ref] = pod
        return self._apply(self.compiler.update_pod(pod))

    def remove_pod(self, ref: str) -> PolicyDelta:
        pod = self.pods.pop(ref)
        return self._apply(self.compiler.remove_pod(pod.key))

    def policy(self, obj: dict[str, Any]) -> PolicyDelta:
        return self._apply(self.compiler.update_policy(networkpolicy_from_api(obj)))

    def apply_model(self, policy: Any) -> PolicyDelta:
        return self._apply(self.compiler.update_policy(policy))

    def remove_policy(self, namespace: str, name: str) -> PolicyDelta:
        return self._apply(self.compiler.remove_policy(ObjectKey("NetworkPolicy", namespace, name)))

    def remove_namespace(self, name: str) -> PolicyDelta:
        return self._apply(self.compiler.remove_namespace(name))

    # -- the mirror -----------------------------------------------------------

    def _apply(self, delta: PolicyDelta) -> PolicyDelta:
        for s in delta.sets_created:
            assert s.name not in self.sets, f"set {s.name} created twice"
            self.sets[s.name] = s
        for d in delta.members:
            s = self.sets[d.name]
            assert isinstance(s, (AddrSet, AddrPortSet)), f"members of static set {d.name} changed"
            assert not (d.added & s.members), f"{d.name}: re-added {d.added & s.members}"
            assert d.removed <= s.members, f"{d.name}: removed non-members {d.removed - s.members}"
            self.sets[d.name] = type(s)(s.name, (s.members - d.removed) | d.added)
        for key, pp in delta.pods.items():
            if pp is None:
                assert key in self.policies, f"{key}: detached but never attached"
                del self.policies[key]
            else:
                self.policies[key] = pp
        for p in self.policies.values():
            for d in (p.ingress, p.egress):
                for r in (d.rules if d else ()):
                    for n in (r.peers or ()) + r.peer_ports:
                        assert n in self.sets, f"rule names unknown set {n}"
        for name in delta.sets_deleted:
            del self.sets[name]
        snap = self.compiler.snapshot()
        assert dict(snap.sets) == self.sets
        assert dict(snap.pods) == self.policies
        self.deltas.append(delta)
        return delta

    # -- verdicts -------------------------------------------------------------

    def _end(self, ref: str, family: int) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ObjectKey | None]:
        if ref in self.pods:
            pod = self.pods[ref]
            ip = next(i for i in pod.ips if i.version == family)
            return ip, pod.key
        return ipaddress.ip_address(ref), None

    def allowed(self, src: str, dst: str, dport: int, proto: str = "TCP", family: int = 4) -> bool:
        """Whether a new flow src -> dst passes src's egress and dst's ingress (local pods only)."""
        s_ip, s_key = self._end(src, family)
        d_ip, d_key = self._end(dst, family)
        pkt = Packet(s_ip, d_ip, PROTO[proto], 40000 if proto != "ICMP" else 0, dport)
        ok = True
        if s_key is not None and s_key in self.policies:
            ok = ok and evaluate(self.policies[s_key], self.sets, "egress", pkt)
        if d_key is not None and d_key in self.policies:
            ok = ok and evaluate(self.policies[d_key], self.sets, "ingress", pkt)
        return ok


def np(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": ns, "name": name}, "spec": spec}
