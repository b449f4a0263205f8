"""The ``policies`` feature: Kubernetes NetworkPolicy enforced on this node's pods.

Owns: feeding the compiler (``PolicyCompiler``) from the cluster state, one
changed object at a time; turning its snapshot into reconciler intents,
either for our kpol plugin (``kpol_kind``: ipsets with members, one policy
per isolated local pod, attachments to the pod interfaces) or, when VPP
lacks kpol, for the ACL plugin (``acl_fallback``, ``acl_kind``); reporting the compiler's
problems; reading the plugin's per-rule counters back as "why".

Backend choice: kpol when the connected VPP offers every kpol message with
the pinned CRCs, else ACLs, with one warning per switch. It is re-asked at
every recompute, so a VPP restarted with or without the plugin converges to
the other backend (the reconciler removes the other kinds' objects).

Why incremental: ``desired`` runs after every cluster change; the compiler
is fed only the objects that changed since the last call (by identity), so a
pod joining a namespace changes set members only, and the set's update is
one member message (see ``kpol_kind``).

``desired_delta`` is the agent's incremental path (kpol backend only): it
feeds the compiler the touched objects and answers with the intents that
changed, derived from the compiler's deltas (a set's members are patched,
never recomputed); None sends the agent down the full path.

Must not touch: VPP directly, pod networking's objects (it only names the
pod interfaces by key), the compiler's internals.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from vppagent.feature import Feature
from vppagent.model.cluster_state import ClusterState
from vppagent.model.k8s import Namespace, NetworkPolicy, Node, ObjectKey, Pod
from vppagent.reconcile import Delta, Intent, Key, Problem
from vppagent.vpp import kpol
from vppagent.vpp.client import VppClient

from . import acl_fallback as aclf, acl_kind as aclk
from . import kpol_kind as vk
from .compiler import PolicyCompiler, PolicyDelta, RuleRef
from .ir import Direction, IpSet

log = logging.getLogger(__name__)

KPOL = "kpol"
ACL = "acl"
# This node's own Node too: its addresses are the peers every isolated ingress admits.
_WATCHED = ("Node", "Pod", "Namespace", "NetworkPolicy")
_FEED_ORDER = {"Node": 0, "Namespace": 1, "Pod": 2, "NetworkPolicy": 3}
EXPANSION_FAILED = "PolicyExpansionFailed"


@dataclass(frozen=True)
class RuleCount:
    """Packets one local pod's policy counted in one direction: allowed by a rule, or denied."""

    pod: str
    direction: Direction
    rule_index: int  # -1: dropped by default deny
    rule: RuleRef | None  # the NetworkPolicy rule it came from (None for default deny)
    packets: int


def _member(m: Any) -> kpol.Member:
    if isinstance(m, tuple):
        addr, proto, port = m
        return kpol.Member(addr, proto=proto, port=port)
    return kpol.Member(m)


def _interface_key(container_id: str, ifname: str) -> Key:
    name = f"{container_id[:32]}/{ifname}"  # vppagent.cni.pod_interface_kind.interface_name
    return Key(vk.INTERFACE_KIND, name)


class PolicyFeature(Feature):
    name = "policies"
    incremental = True
    watches = _WATCHED
    needs_all_pods = True  # peers are pods of the whole cluster
    follows = ("pods",)  # attachments (which local pod has which interface) come from the pods feature

    def __init__(self, node_name: str, pods: Any = None, *, backend: Callable[[], str] | None = None):
        """``pods``: the ``pods`` feature (anything with ``attachments()``); ``backend``: overrides
        the choice (tests); otherwise ``bind_vpp`` must be called with the agent's client."""
        self.compiler = PolicyCompiler(node_name)
        self.pods = pods
        self._backend_override = backend
        self._vpp: VppClient | None = None
        self._seen: dict[ObjectKey, Any] = {}
        self._sets_cache: dict[str, tuple[IpSet, vk.KpolSet]] = {}
        self._last_backend: str | None = None
        # What the last desired()/desired_delta() answered, by reconciler key (kpol backend).
        self._current: dict[Key, Intent] | None = None
        self.set_ids = vk.IdPool(kpol.MAX_SET_ID)
        self.policy_ids = vk.IdPool(kpol.MAX_POLICY_ID)
        self._descriptors = [vk.KpolSetDescriptor(self.set_ids), vk.KpolPolicyDescriptor(self.policy_ids),
                             vk.KpolAttachDescriptor(), aclk.PolicyAclDescriptor(), aclk.AclBindingDescriptor()]

    def bind_vpp(self, vpp: VppClient) -> None:
        self._vpp = vpp

    def descriptors(self) -> Sequence[Any]:
        return self._descriptors

    # -- backend ---------------------------------------------------------------------------

    def backend(self) -> str:
        if self._backend_override is not None:
            chosen = self._backend_override()
        else:
            chosen = KPOL if self._vpp is not None and self._vpp.connected and kpol.available(self._vpp) else ACL
        if chosen != self._last_backend:
            if chosen == ACL:
                log.warning("VPP lacks the kpol plugin: enforcing network policy with the ACL plugin "
                            "(rules expanded, member changes rewrite ACLs)", extra={"backend": chosen})
            else:
                log.info("enforcing network policy with the kpol plugin", extra={"backend": chosen})
            self._last_backend = chosen
        return chosen

    # -- inputs ----------------------------------------------------------------------------

    def _feed_one(self, key: ObjectKey, obj: Any) -> PolicyDelta | None:
        """Tell the compiler about one object (None: it is gone); None if nothing changed."""
        if key.kind == Node.KIND and key.name != self.compiler.node_name:
            return None
        if obj is None:
            if self._seen.pop(key, None) is None:
                return None
            if key.kind == Node.KIND:
                return self.compiler.remove_node(key.name)
            if key.kind == "Namespace":
                return self.compiler.remove_namespace(key.name)
            if key.kind == "Pod":
                return self.compiler.remove_pod(key)
            return self.compiler.remove_policy(key)
        if self._seen.get(key) is obj:
            return None
        self._seen[key] = obj
        if isinstance(obj, Node):
            return self.compiler.update_node(obj)
        if isinstance(obj, Namespace):
            return self.compiler.update_namespace(obj)
        if isinstance(obj, Pod):
            return self.compiler.update_pod(obj)
        if isinstance(obj, NetworkPolicy):
            return self.compiler.update_policy(obj)
        return None

    def _feed(self, cluster: ClusterState) -> None:
        current = {k: o for k, o in cluster.others.items() if k.kind in _WATCHED}
        me = cluster.nodes.get(self.compiler.node_name)
        if me is not None:
            current[me.key] = me
        # Namespaces first, policies last: each step then sees the others' latest state.
        for kind in _FEED_ORDER:
            for key in [k for k in self._seen if k.kind == kind and k not in current]:
                self._feed_one(key, None)
            for key, obj in current.items():
                if key.kind == kind:
                    self._feed_one(key, obj)

    def _interfaces(self) -> dict[ObjectKey, list[Key]]:
        out: dict[ObjectKey, list[Key]] = {}
        for a in self.pods.attachments() if self.pods is not None else ():
            out.setdefault(ObjectKey("Pod", a.pod_namespace, a.pod_name), []).append(
                _interface_key(a.container_id, a.ifname))
        return out

    def _kpol_set(self, s: IpSet) -> vk.KpolSet:
        hit = self._sets_cache.get(s.name)
        if hit is not None and hit[0] == s:
            return hit[1]
        value = vk.kpol_set(s)
        self._sets_cache[s.name] = (s, value)
        return value

    # -- desired state ------------------------------------------------------------------------

    def desired(self, cluster: ClusterState) -> tuple[list[Intent], list[Problem]]:
        intents, problems = self._desired(cluster)
        self._current = {i.value.key: i for i in intents} if self._last_backend == KPOL else None
        return intents, problems

    def desired_delta(self, cluster: ClusterState, touched: Collection[ObjectKey]) -> Delta | None:
        if self._current is None or self.backend() != KPOL:
            return None
        mine = sorted((k for k in touched if k.kind in _FEED_ORDER), key=lambda k: (_FEED_ORDER[k.kind], k))
        before: dict[Key, Intent | None] = {}
        current = self._current

        def put(key: Key, intent: Intent | None) -> None:
            if key not in before:
                before[key] = current.get(key)
            if intent is None:
                current.pop(key, None)
            else:
                current[key] = intent

        ifaces: dict[ObjectKey, list[Key]] | None = None
        for key in mine:
            d = self._feed_one(key, cluster.get(key))
            if d is None:
                continue
            for s in d.sets_created:
                put(Key(vk.SET_KIND, s.name), Intent(vk.SET_KIND, vk.kpol_set(s)))
            for sd in d.members:
                old = current.get(Key(vk.SET_KIND, sd.name))
                if old is None:
                    self._current = None  # out of step: the full path rebuilds from the snapshot
                    return None
                members = (old.value.members | {_member(m) for m in sd.added}) - {_member(m) for m in sd.removed}
                put(old.value.key, Intent(vk.SET_KIND, vk.KpolSet(sd.name, old.value.kind, members)))
                self._sets_cache.pop(sd.name, None)
            if d.pods and ifaces is None:
                ifaces = self._interfaces()
            for pod, policy in d.pods.items():
                value = vk.KpolPolicy(str(pod), policy) if policy is not None else None
                put(Key(vk.POLICY_KIND, str(pod)), Intent(vk.POLICY_KIND, value, pod) if value else None)
                for i in (ifaces or {}).get(pod, ()):
                    put(Key(vk.ATTACH_KIND, i.id),
                        Intent(vk.ATTACH_KIND, vk.KpolAttach(i, value.key), pod) if value else None)
            for name in d.sets_deleted:
                put(Key(vk.SET_KIND, name), None)
                self._sets_cache.pop(name, None)
        removed = [b for k, b in before.items() if b is not None and current.get(k) != b]
        added = [current[k] for k, b in before.items() if k in current and current[k] != b]
        return Delta(removed, added, list(self.compiler.problems()))

    def _desired(self, cluster: ClusterState) -> tuple[list[Intent], list[Problem]]:
        self._feed(cluster)
        snap = self.compiler.snapshot()
        problems = list(self.compiler.problems())
        ifaces = self._interfaces()
        intents: list[Intent] = []
        if self.backend() == KPOL:
            for name in list(self._sets_cache):
                if name not in snap.sets:
                    del self._sets_cache[name]
            intents += [Intent(vk.SET_KIND, self._kpol_set(s)) for s in snap.sets.values()]
            for pod, policy in sorted(snap.pods.items()):
                value = vk.KpolPolicy(str(pod), policy)
                intents.append(Intent(vk.POLICY_KIND, value, pod))
                intents += [Intent(vk.ATTACH_KIND, vk.KpolAttach(i, value.key), pod) for i in ifaces.get(pod, ())]
            return intents, problems
        self._sets_cache.clear()
        for pod, policy in sorted(snap.pods.items()):
            if pod not in ifaces:
                continue  # ACLs cost rules: only for pods with interfaces here
            try:
                rules_in, rules_out = aclf.pod_acls(policy, snap.sets)
            except aclf.PolicyExpansionError as e:
                problems.append(Problem(pod, EXPANSION_FAILED, f"{pod}: {e}"))
                continue
            acl_in = aclk.PolicyAcl(aclk.acl_tag(str(pod), "in"), rules_in)
            acl_out = aclk.PolicyAcl(aclk.acl_tag(str(pod), "out"), rules_out)
            intents += [Intent(aclk.ACL_KIND, acl_in, pod), Intent(aclk.ACL_KIND, acl_out, pod)]
            intents += [Intent(aclk.BINDING_KIND, aclk.AclBinding(i, (acl_in.key,), (acl_out.key,)), pod)
                        for i in ifaces[pod]]
        return intents, problems

    # -- counters --------------------------------------------------------------------------------

    def rule_counts(self) -> list[RuleCount]:
        """Per local pod and direction: packets each rule allowed, and default-deny drops (kpol only)."""
        vpp = self._vpp
        if vpp is None or not vpp.connected or not kpol.available(vpp):
            return []
        out: list[RuleCount] = []
        pods = {str(k): k for k in self.compiler.snapshot().pods}
        for c in kpol.counters(vpp):
            name = self.policy_ids.names.get(c.policy_id)
            if name is None or name.startswith(vk.ORPHAN):
                continue
            direction = Direction.INGRESS if c.dir == kpol.Dir.INGRESS else Direction.EGRESS
            pod = pods.get(name)
            refs = self.compiler.rule_origins(pod, direction) if pod is not None else ()
            out.append(RuleCount(name, direction, -1, None, c.denied))
            for i, n in enumerate(c.allowed_by_rule):
                out.append(RuleCount(name, direction, i, refs[i] if i < len(refs) else None, n))
        return out


__all__ = ["ACL", "KPOL", "PolicyFeature", "RuleCount"]
