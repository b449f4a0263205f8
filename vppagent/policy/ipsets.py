"""Incremental ipset membership for NetworkPolicy peers.

Owns: ``IpSetIndex``, which keeps every set a compiled policy references
(a *scope*: which pods, or which prefixes, a peer means), its stable name, and
its members, as pods and namespaces come, change and go. Scopes:

- ``PodScope``: the IPs of pods picked by a podSelector in one namespace, or by
  a namespaceSelector (+ optional podSelector) across namespaces -> ``AddrSet``;
- ``BlockScope``: an ipBlock (cidr minus excepts) -> ``NetSet`` (static);
- ``NamedPortScope``: (ip, proto, port) of every pod of a peer that declares a
  named port -> ``AddrPortSet`` (egress named ports, resolved per peer pod);
- ``NodeScope``: this node's own addresses (its Node's InternalIPs and
  ExternalIPs) -> ``AddrSet``, set by ``set_node_addresses``: the peers every
  isolated ingress admits (kubelet probes and the node's own traffic).

A set's name is a hash of the scope's canonical form, so it is the same for
equal selectors however they were written, and across agent restarts; rules
name sets, so membership changes never rewrite rules. Members are reference
counted (two pods may briefly share an IP), and every change is reported as
``SetDelta``s holding only the members that appeared or disappeared.

Which pods count: those with IPs that are not terminal (Succeeded/Failed) and
not host-network. Pending pods with IPs count: their init containers already
send traffic. Terminating pods count until they are removed.

Must not touch: rules and per-pod policy (``compiler``), VPP.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from vppagent.model.k8s import IPBlock, LabelSelector, Namespace, ObjectKey, Pod, Protocol

from .ir import AddrPortSet, AddrSet, IpAddress, IpSet, NetSet, PROTO_SCTP, PROTO_TCP, PROTO_UDP

PROTO_NUMBERS: dict[Protocol, int] = {Protocol.TCP: PROTO_TCP, Protocol.UDP: PROTO_UDP,
                                      Protocol.SCTP: PROTO_SCTP}


@dataclass(frozen=True)
class PodScope:
    """Pods picked by a peer.

    Exactly one of ``namespace`` (a podSelector-only peer: the policy's own
    namespace) and ``namespace_selector`` is set.
    """

    namespace: str | None
    namespace_selector: LabelSelector | None
    pod_selector: LabelSelector


@dataclass(frozen=True)
class BlockScope:
    block: IPBlock


@dataclass(frozen=True)
class NamedPortScope:
    peer: PodScope | BlockScope
    port: str
    protocol: Protocol


@dataclass(frozen=True)
class NodeScope:
    """The addresses of the node the compiler runs for; one per index."""


Scope = PodScope | BlockScope | NamedPortScope | NodeScope


@dataclass(frozen=True)
class SetDelta:
    """Members that appeared in / disappeared from one existing set."""

    name: str
    added: frozenset = frozenset()
    removed: frozenset = frozenset()


# -- naming ---------------------------------------------------------------------


def _canon_selector(sel: LabelSelector | None) -> object:
    if sel is None:
        return None
    return {"labels": sorted(sel.match_labels.items()),
            "exprs": sorted([r.key, str(r.operator), sorted(r.values)] for r in sel.match_expressions)}


def _canon(scope: Scope) -> object:
    if isinstance(scope, PodScope):
        return {"ns": scope.namespace, "nssel": _canon_selector(scope.namespace_selector),
                "pod": _canon_selector(scope.pod_selector)}
    if isinstance(scope, BlockScope):
        return {"cidr": str(scope.block.cidr), "except": sorted(str(e) for e in scope.block.excepts)}
    if isinstance(scope, NodeScope):
        return {"node": True}
    return {"peer": _canon(scope.peer), "port": scope.port, "proto": str(scope.protocol)}


_PREFIX = {PodScope: "pod-", BlockScope: "net-", NamedPortScope: "npt-", NodeScope: "node-"}


def set_name(scope: Scope) -> str:
    """The stable name of a scope's set (prefix + 20 hex digits of a SHA-256)."""
    text = json.dumps(_canon(scope), sort_keys=True, separators=(",", ":"))
    return _PREFIX[type(scope)] + hashlib.sha256(text.encode()).hexdigest()[:20]


def describe(scope: Scope) -> str:
    """A short human form of a scope, for logs and Events."""
    if isinstance(scope, PodScope):
        where = f"ns={scope.namespace}" if scope.namespace is not None else \
            f"nsSelector={{{scope.namespace_selector}}}"
        return f"pods {where} podSelector={{{scope.pod_selector}}}"
    if isinstance(scope, BlockScope):
        excepts = ",".join(str(e) for e in scope.block.excepts)
        return f"ipBlock {scope.block.cidr}" + (f" except {excepts}" if excepts else "")
    if isinstance(scope, NodeScope):
        return "this node's addresses"
    return f"{describe(scope.peer)} port {scope.protocol}/{scope.port}"


# -- state ----------------------------------------------------------------------


@dataclass(frozen=True)
class _PodRec:
    """What membership needs of a pod; ``ips`` is empty when the pod does not count."""

    namespace: str
    labels: dict[str, str]
    ips: tuple[IpAddress, ...]
    pod: Pod


class _Matcher:
    """A selector flattened for plain dicts: LabelSelector.matches goes through the Mapping ABC."""

    __slots__ = ("pairs", "reqs")

    def __init__(self, sel: LabelSelector):
        self.pairs = tuple(sel.match_labels.items())
        self.reqs = sel.match_expressions

    def __call__(self, labels: dict[str, str]) -> bool:
        for k, v in self.pairs:
            if labels.get(k) != v:
                return False
        for r in self.reqs:
            if not r.matches(labels):
                return False
        return True


@dataclass
class _Entry:
    scope: Scope
    name: str
    pod_match: _Matcher | None  # None: not selected by pod labels (ipBlock peers)
    refs: int = 0
    members: Counter = field(default_factory=Counter)


class _Deltas:
    """Accumulates member changes per set; an add and a remove of one member cancel."""

    def __init__(self) -> None:
        self._added: dict[str, set] = defaultdict(set)
        self._removed: dict[str, set] = defaultdict(set)

    def add(self, name: str, member: Hashable) -> None:
        if member in self._removed[name]:
            self._removed[name].discard(member)
        else:
            self._added[name].add(member)

    def remove(self, name: str, member: Hashable) -> None:
        if member in self._added[name]:
            self._added[name].discard(member)
        else:
            self._removed[name].add(member)

    def result(self) -> list[SetDelta]:
        names = sorted(set(self._added) | set(self._removed))
        out = []
        for n in names:
            a, r = self._added.get(n, set()), self._removed.get(n, set())
            if a or r:
                out.append(SetDelta(n, frozenset(a), frozenset(r)))
        return out


def counts(pod: Pod) -> bool:
    """Whether a pod's IPs belong in sets."""
    return bool(pod.ips) and not pod.terminal and not pod.host_network


def _in_block(ip: IpAddress, block: IPBlock) -> bool:
    if ip.version != block.cidr.version or ip not in block.cidr:
        return False
    return not any(ip in e for e in block.excepts)


class IpSetIndex:
    """Sets in use, their members, and the pods and namespaces they come from.

    Scopes are indexed by where their pods can come from, so that a pod change
    looks only at its namespace's scopes, the scopes whose namespaceSelector
    matches its namespace (one test per distinct selector), and ipBlock-peer
    named-port scopes; a namespace change only at scopes whose
    namespaceSelector verdict on it flipped.
    """

    def __init__(self) -> None:
        self._entries: dict[Scope, _Entry] = {}
        self._by_name: dict[str, _Entry] = {}
        self._ns_scopes: dict[str, set[Scope]] = defaultdict(set)  # podSelector-only peers
        self._nssel_scopes: dict[LabelSelector, set[Scope]] = defaultdict(set)
        self._nssel_match: dict[LabelSelector, _Matcher] = {}
        self._block_scopes: set[Scope] = set()  # named ports of ipBlock peers
        self._pods: dict[ObjectKey, _PodRec] = {}
        self._pods_by_ns: dict[str, set[ObjectKey]] = defaultdict(set)
        self._ns_labels: dict[str, dict[str, str]] = {}
        self._node_addresses: frozenset[IpAddress] = frozenset()

    # -- scopes -----------------------------------------------------------------

    def acquire(self, scope: Scope) -> tuple[str, bool]:
        """Take a reference on a scope's set; returns (name, created)."""
        entry = self._entries.get(scope)
        if entry is not None:
            entry.refs += 1
            return entry.name, False
        peer = scope.peer if isinstance(scope, NamedPortScope) else scope
        match = _Matcher(peer.pod_selector) if isinstance(peer, PodScope) else None
        entry = _Entry(scope, set_name(scope), match, refs=1)
        self._entries[scope] = entry
        self._by_name[entry.name] = entry
        if isinstance(scope, NodeScope):
            entry.members.update(self._node_addresses)
            return entry.name, True
        if isinstance(scope, BlockScope):
            return entry.name, True
        if isinstance(peer, PodScope) and peer.namespace is not None:
            self._ns_scopes[peer.namespace].add(scope)
            candidates: Iterable[ObjectKey] = self._pods_by_ns.get(peer.namespace, ())
        elif isinstance(peer, PodScope):
            sel = peer.namespace_selector
            if sel not in self._nssel_match:
                self._nssel_match[sel] = _Matcher(sel)  # type: ignore[arg-type]
            self._nssel_scopes[sel].add(scope)  # type: ignore[index]
            ns_match = self._nssel_match[sel]  # type: ignore[index]
            candidates = [k for ns, keys in self._pods_by_ns.items()
                          if ns_match(self._ns_labels.get(ns, {})) for k in keys]
        else:
            self._block_scopes.add(scope)
            candidates = self._pods
        for key in candidates:
            for m in _contribution(entry, self._pods[key]):
                entry.members[m] += 1
        return entry.name, True

    def release(self, scope: Scope) -> str | None:
        """Drop a reference; returns the set's name when this was the last one (the set is gone)."""
        entry = self._entries[scope]
        entry.refs -= 1
        if entry.refs > 0:
            return None
        del self._entries[scope]
        del self._by_name[entry.name]
        peer = scope.peer if isinstance(scope, NamedPortScope) else scope
        if isinstance(peer, PodScope) and peer.namespace is not None:
            _discard(self._ns_scopes, peer.namespace, scope)
        elif isinstance(peer, PodScope):
            if _discard(self._nssel_scopes, peer.namespace_selector, scope):
                del self._nssel_match[peer.namespace_selector]  # type: ignore[arg-type]
        elif isinstance(scope, NamedPortScope):
            self._block_scopes.discard(scope)
        return entry.name

    def get(self, name: str) -> IpSet:
        return _ir(self._by_name[name])

    def scope_of(self, name: str) -> Scope:
        return self._by_name[name].scope

    def sets(self) -> dict[str, IpSet]:
        return {name: _ir(e) for name, e in self._by_name.items()}

    def __len__(self) -> int:
        return len(self._entries)

    # -- inputs -----------------------------------------------------------------

    def update_pod(self, pod: Pod) -> list[SetDelta]:
        new = _PodRec(pod.namespace, dict(pod.labels), pod.ips if counts(pod) else (), pod)
        old = self._pods.get(pod.key)
        self._pods[pod.key] = new
        self._pods_by_ns[pod.namespace].add(pod.key)
        deltas = _Deltas()
        for scope in self._scopes_of_namespace(pod.namespace):
            self._move(self._entries[scope], old, new, deltas)
        return deltas.result()

    def remove_pod(self, key: ObjectKey) -> list[SetDelta]:
        old = self._pods.pop(key, None)
        if old is None:
            return []
        _discard(self._pods_by_ns, old.namespace, key)
        deltas = _Deltas()
        for scope in self._scopes_of_namespace(old.namespace):
            self._move(self._entries[scope], old, None, deltas)
        return deltas.result()

    def update_namespace(self, ns: Namespace) -> list[SetDelta]:
        return self._relabel(ns.name, dict(ns.labels))

    def set_node_addresses(self, addresses: Iterable[IpAddress]) -> list[SetDelta]:
        """This node's own addresses (from its Node object); the node set's member change."""
        new = frozenset(addresses)
        old, self._node_addresses = self._node_addresses, new
        entry = self._entries.get(NodeScope())
        if entry is None or new == old:
            return []
        entry.members = Counter(new)
        return [SetDelta(entry.name, new - old, old - new)]

    def remove_namespace(self, name: str) -> list[SetDelta]:
        # Its pods go with it (their own deletions follow); until then they
        # are treated as living in an unlabelled namespace.
        return self._relabel(name, None)

    # -- internals --------------------------------------------------------------

    def _relabel(self, name: str, labels: dict[str, str] | None) -> list[SetDelta]:
        old_labels = self._ns_labels.get(name, {})
        if labels is None:
            self._ns_labels.pop(name, None)
            labels = {}
        else:
            self._ns_labels[name] = labels
        deltas = _Deltas()
        recs = [self._pods[k] for k in self._pods_by_ns.get(name, ())]
        for sel, scopes in self._nssel_scopes.items():
            match = self._nssel_match[sel]
            was_in, now_in = match(old_labels), match(labels)
            if was_in == now_in:
                continue
            for scope in scopes:
                entry = self._entries[scope]
                for rec in recs:
                    for m in _contribution(entry, rec):
                        if now_in:
                            _inc(entry, m, deltas)
                        else:
                            _dec(entry, m, deltas)
        return deltas.result()

    def _scopes_of_namespace(self, namespace: str) -> list[Scope]:
        """The scopes a pod of this namespace can be in (its labels aside)."""
        out = list(self._ns_scopes.get(namespace, ()))
        ns_labels = self._ns_labels.get(namespace, {})
        for sel, scopes in self._nssel_scopes.items():
            if self._nssel_match[sel](ns_labels):
                out.extend(scopes)
        out.extend(self._block_scopes)
        return out

    @staticmethod
    def _move(entry: _Entry, old: _PodRec | None, new: _PodRec | None, deltas: _Deltas) -> None:
        before = _contribution(entry, old) if old is not None else frozenset()
        after = _contribution(entry, new) if new is not None else frozenset()
        if before == after:
            return
        for m in after - before:
            _inc(entry, m, deltas)
        for m in before - after:
            _dec(entry, m, deltas)


def _inc(entry: _Entry, member: Hashable, deltas: _Deltas) -> None:
    entry.members[member] += 1
    if entry.members[member] == 1:
        deltas.add(entry.name, member)


def _dec(entry: _Entry, member: Hashable, deltas: _Deltas) -> None:
    entry.members[member] -= 1
    if entry.members[member] <= 0:
        del entry.members[member]
        deltas.remove(entry.name, member)


def _contribution(entry: _Entry, rec: _PodRec) -> frozenset:
    """The members one pod gives a set; the caller has checked the pod's namespace is in scope."""
    if not rec.ips:
        return frozenset()
    scope = entry.scope
    if entry.pod_match is not None:
        if not entry.pod_match(rec.labels):
            return frozenset()
        ips = rec.ips
    else:
        peer = scope.peer  # type: ignore[union-attr]
        ips = tuple(ip for ip in rec.ips if _in_block(ip, peer.block))
    if not isinstance(scope, NamedPortScope):
        return frozenset(ips)
    port = rec.pod.named_port(scope.port, scope.protocol)
    if port is None:
        return frozenset()
    proto = PROTO_NUMBERS[scope.protocol]
    return frozenset((ip, proto, port) for ip in ips)


def _discard(index: dict, key: object, value: object) -> bool:
    """Remove value from index[key]; drop the key when empty; True if it was dropped."""
    values = index.get(key)
    if values is None:
        return False
    values.discard(value)
    if not values:
        del index[key]
        return True
    return False


def _ir(entry: _Entry) -> IpSet:
    scope = entry.scope
    if isinstance(scope, BlockScope):
        return NetSet(entry.name, (scope.block.cidr,), tuple(scope.block.excepts))
    if isinstance(scope, NamedPortScope):
        return AddrPortSet(entry.name, frozenset(entry.members))
    return AddrSet(entry.name, frozenset(entry.members))


def parse_network(value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR from a model value or a string; raises ValueError."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    if not isinstance(value, str) or "/" not in value:
        raise ValueError(f"{value!r} is not a valid CIDR")
    return ipaddress.ip_network(value, strict=False)
