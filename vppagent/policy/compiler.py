"""NetworkPolicy -> per-pod rule lists over named ipsets (the IR), incrementally.

Owns: ``PolicyCompiler``, which holds the cluster's NetworkPolicies, pods and
namespaces, and answers every change with a ``PolicyDelta``: sets created,
member add/del of existing sets, local pods whose ``PodPolicy`` changed, sets
deleted, and ``Problem``s for input it could not express. ``snapshot()`` is
the full desired state. Semantics (networking.k8s.io/v1):

- a policy selects the pods of its namespace matching ``podSelector`` (empty:
  all); a selected pod is isolated, default deny, in each of the policy's
  ``policyTypes``; the rules of every policy selecting a pod are ORed;
- a rule with no peers allows every peer; no ports, every port;
  ``ingress: [{}]`` allows all, ``ingress: []`` allows nothing;
- peers are ORed; within one peer, namespaceSelector AND podSelector; a
  podSelector alone means the policy's namespace; ipBlock is cidr minus except;
- a port without protocol is TCP; ``endPort`` makes a range; a named port is
  resolved against the target pod for ingress (per local pod) and against each
  peer pod for egress (an ``AddrPortSet``); a named port a pod lacks matches
  nothing on that pod;
- traffic from the pod's own node is always allowed into it, as Kubernetes
  documents (kubelet probes): every isolated ingress ends with one more rule,
  any port from the node set (``NodeScope``: this node's InternalIPs and
  ExternalIPs, from ``update_node``). Its origin names the Node. A node
  address change is a member change of that one set, never a rule change.
  Egress has no such exception (the reply to the node passes as a reply).

Rules reference sets by stable names (``ipsets.set_name``), so pods and
namespaces changing only change members. Only pods of this node (non-terminal,
not host-network) get a PodPolicy; sets hold the pod IPs of the whole cluster.

Bad input never widens what is allowed: an invalid peer (bad CIDR, an except
outside its block, an unknown selector operator) is dropped from its rule, an
invalid port (out of range, unknown protocol) is dropped from its rule, and a
rule left with no valid peers or ports matches nothing; the policy keeps
isolating its pods and a ``Problem`` names the field. A policy whose own
podSelector is invalid cannot say which pods it isolates: it is skipped with a
Problem.

Apply a delta in this order: ``sets_created``, ``members``, ``pods``,
``sets_deleted`` (a set is created before a rule names it and deleted after
no rule does).

Must not touch: VPP, the reconciler, Kubernetes I/O.
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vppagent.model.k8s import (
    IPBlock,
    LabelSelector,
    Namespace,
    NetworkPolicy,
    Node,
    ObjectKey,
    Operator,
    Pod,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    PolicyType,
    Protocol,
)
from vppagent.reconcile.state import Problem

from .ipsets import (
    PROTO_NUMBERS,
    BlockScope,
    IpSetIndex,
    NamedPortScope,
    NodeScope,
    PodScope,
    Scope,
    SetDelta,
    describe,
    parse_network,
)
from .ir import PORT_MAX, Direction, DirectionPolicy, IpSet, PodPolicy, PortRange, Rule

log = logging.getLogger(__name__)

INVALID_POLICY = "InvalidNetworkPolicy"
NAMED_PORT_UNRESOLVED = "NamedPortUnresolved"
_EMPTY_SELECTOR = LabelSelector()


class PolicyInputError(ValueError):
    """One part of a NetworkPolicy that cannot be compiled; ``field`` is its JSON path."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class RuleRef:
    """Where a compiled rule comes from: for counters and verdicts that say why."""

    policy: ObjectKey
    direction: Direction
    index: int  # index in the policy's spec.ingress / spec.egress


@dataclass(frozen=True)
class PolicyDelta:
    """What one input change changes; apply in field order (see module docstring)."""

    sets_created: tuple[IpSet, ...] = ()
    members: tuple[SetDelta, ...] = ()
    pods: Mapping[ObjectKey, PodPolicy | None] = field(default_factory=dict)  # None: not isolated any more
    sets_deleted: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.sets_created or self.members or self.pods or self.sets_deleted or self.problems)


@dataclass(frozen=True)
class PolicySnapshot:
    sets: Mapping[str, IpSet]
    pods: Mapping[ObjectKey, PodPolicy]  # local pods isolated in at least one direction
    origins: Mapping[ObjectKey, tuple[tuple[RuleRef, ...], tuple[RuleRef, ...]]]  # (ingress, egress)


# -- one policy, compiled once, resolved per local pod -------------------------------


@dataclass(frozen=True)
class _RuleTemplate:
    peers: tuple[str, ...] | None
    ranges: tuple[PortRange, ...]
    named: tuple[tuple[str, Protocol], ...] = ()  # ingress named ports, resolved per target pod
    peer_ports: tuple[str, ...] = ()  # egress named ports, resolved per peer pod (AddrPortSets)


@dataclass(frozen=True)
class _Compiled:
    policy: NetworkPolicy
    ingress: tuple[_RuleTemplate, ...] | None  # None: the policy does not isolate ingress
    egress: tuple[_RuleTemplate, ...] | None
    scopes: tuple[Scope, ...]  # every set reference this policy holds


class _PolicyBuilder:
    """Compiles one policy, acquiring set references; collects problems."""

    def __init__(self, policy: NetworkPolicy, sets: IpSetIndex):
        self.policy = policy
        self.sets = sets
        self.scopes: list[Scope] = []
        self.problems: list[Problem] = []

    def _ref(self, scope: Scope) -> str:
        name, _ = self.sets.acquire(scope)
        self.scopes.append(scope)
        return name

    def _problem(self, err: PolicyInputError, what: str) -> None:
        self.problems.append(Problem(self.policy.key, INVALID_POLICY,
                                     f"{self.policy.key}: {err.field}: {err.reason}; {what}"))

    def build(self) -> _Compiled:
        p = self.policy
        ingress = egress = None
        if PolicyType.INGRESS in p.policy_types:
            ingress = tuple(self._rule(r, Direction.INGRESS, f"spec.ingress[{i}]")
                            for i, r in enumerate(p.ingress))
        if PolicyType.EGRESS in p.policy_types:
            egress = tuple(self._rule(r, Direction.EGRESS, f"spec.egress[{i}]")
                           for i, r in enumerate(p.egress))
        return _Compiled(p, ingress, egress, tuple(self.scopes))

    def _rule(self, rule: PolicyRule, direction: Direction, path: str) -> _RuleTemplate:
        peers_field = "from" if direction is Direction.INGRESS else "to"
        peer_scopes: list[PodScope | BlockScope] | None = None
        if rule.peers:
            peer_scopes = []
            for j, peer in enumerate(rule.peers):
                ppath = f"{path}.{peers_field}[{j}]"
                try:
                    peer_scopes.append(self._peer_scope(peer, ppath))
                except PolicyInputError as err:
                    self._problem(err, "peer ignored (matches nothing)")
        ranges: list[PortRange] = []
        named: list[tuple[str, Protocol]] = []
        for j, port in enumerate(rule.ports):
            try:
                r = _port(port, f"{path}.ports[{j}]")
            except PolicyInputError as err:
                self._problem(err, "port ignored (matches nothing)")
                continue
            if isinstance(r, PortRange):
                ranges.append(r)
            else:
                named.append(r)
        if rule.ports and not ranges and not named:
            # Every listed port was invalid: "no ports" would mean any port.
            return _RuleTemplate((), ())
        peers = None if peer_scopes is None else tuple(self._ref(s) for s in peer_scopes)
        if direction is Direction.INGRESS or not named:
            return _RuleTemplate(peers, tuple(ranges), tuple(named), ())
        # Egress named ports: the port number depends on the peer pod, so the
        # (peer, named port) pairs become AddrPortSets. Without numeric ports
        # the plain peers must match nothing (empty ports would mean "any").
        everyone = PodScope(None, _EMPTY_SELECTOR, _EMPTY_SELECTOR)
        port_peers = peer_scopes if peer_scopes is not None else [everyone]
        peer_ports = tuple(self._ref(NamedPortScope(s, name, proto))
                           for s in port_peers for name, proto in named)
        if not ranges:
            peers = ()
        return _RuleTemplate(peers, tuple(ranges), (), peer_ports)

    def _peer_scope(self, peer: PolicyPeer, path: str) -> PodScope | BlockScope:
        if peer.ip_block is not None:
            if peer.pod_selector is not None or peer.namespace_selector is not None:
                raise PolicyInputError(path, "ipBlock cannot be combined with podSelector or namespaceSelector")
            return BlockScope(_block(peer.ip_block, f"{path}.ipBlock"))
        if peer.pod_selector is None and peer.namespace_selector is None:
            raise PolicyInputError(path, "must specify podSelector, namespaceSelector or ipBlock")
        pod_sel = peer.pod_selector if peer.pod_selector is not None else _EMPTY_SELECTOR
        _check_selector(pod_sel, f"{path}.podSelector")
        if peer.namespace_selector is None:
            return PodScope(self.policy.namespace, None, pod_sel)
        _check_selector(peer.namespace_selector, f"{path}.namespaceSelector")
        return PodScope(None, peer.namespace_selector, pod_sel)


def _check_selector(sel: LabelSelector, path: str) -> None:
    if not isinstance(sel, LabelSelector):
        raise PolicyInputError(path, f"expected a label selector, got {sel!r}")
    for i, req in enumerate(sel.match_expressions):
        if not isinstance(req.operator, Operator):
            try:
                Operator(req.operator)
            except ValueError:
                raise PolicyInputError(f"{path}.matchExpressions[{i}].operator",
                                       f"{req.operator!r} is not one of In, NotIn, Exists, DoesNotExist") from None
            raise PolicyInputError(f"{path}.matchExpressions[{i}].operator",
                                   f"{req.operator!r} is not an Operator value")
        if req.operator in (Operator.IN, Operator.NOT_IN) and not req.values:
            raise PolicyInputError(f"{path}.matchExpressions[{i}].values",
                                   f"must be non-empty for operator {req.operator.value}")


def _block(block: IPBlock, path: str) -> IPBlock:
    try:
        cidr = parse_network(block.cidr)
    except ValueError:
        raise PolicyInputError(f"{path}.cidr", f"{block.cidr!r} is not a valid CIDR") from None
    excepts = []
    for i, e in enumerate(block.excepts):
        try:
            ex = parse_network(e)
        except ValueError:
            raise PolicyInputError(f"{path}.except[{i}]", f"{e!r} is not a valid CIDR") from None
        if ex.version != cidr.version or not ex.subnet_of(cidr) or ex.prefixlen <= cidr.prefixlen:  # type: ignore[arg-type]
            raise PolicyInputError(f"{path}.except[{i}]", f"{str(ex)!r} is not strictly within {str(cidr)!r}")
        excepts.append(ex)
    return IPBlock(cidr, tuple(sorted(set(excepts), key=lambda n: (n.network_address, n.prefixlen))))


def _port(port: PolicyPort, path: str) -> PortRange | tuple[str, Protocol]:
    try:
        proto = Protocol(port.protocol)
    except ValueError:
        raise PolicyInputError(f"{path}.protocol",
                               f"{port.protocol!r} is not one of TCP, UDP, SCTP") from None
    number = PROTO_NUMBERS[proto]
    if port.port is None:
        if port.end_port is not None:
            raise PolicyInputError(f"{path}.endPort", "requires a numeric port")
        return PortRange(number, 0, PORT_MAX)
    if isinstance(port.port, str):
        if port.end_port is not None:
            raise PolicyInputError(f"{path}.endPort", "requires a numeric port")
        if not port.port or len(port.port) > 15:
            raise PolicyInputError(f"{path}.port", f"{port.port!r} is not a valid port name")
        return (port.port, proto)
    if isinstance(port.port, bool) or not isinstance(port.port, int) or not 1 <= port.port <= PORT_MAX:
        raise PolicyInputError(f"{path}.port", f"{port.port!r} is not a port number in 1..65535")
    end = port.port if port.end_port is None else port.end_port
    if isinstance(end, bool) or not isinstance(end, int) or not port.port <= end <= PORT_MAX:
        raise PolicyInputError(f"{path}.endPort", f"{end!r} is not in {port.port}..65535")
    return PortRange(number, port.port, end)


def _resolve(t: _RuleTemplate, pod: Pod) -> tuple[Rule, list[str]]:
    """One template as a rule for one target pod; and the named ports that pod lacks."""
    if not t.named:
        return Rule(t.peers, t.ranges, t.peer_ports), []
    ranges = list(t.ranges)
    missing = []
    for name, proto in t.named:
        number = pod.named_port(name, proto)
        if number is None:
            missing.append(f"{proto}/{name}")
        else:
            ranges.append(PortRange(PROTO_NUMBERS[proto], number, number))
    if not ranges:
        return Rule((), ()), missing  # only named ports, none on this pod: matches nothing
    return Rule(t.peers, tuple(dict.fromkeys(ranges))), missing


# -- the compiler ---------------------------------------------------------------------


class _Op:
    """What one input change did: pods changed, sets that came alive or died, problems."""

    def __init__(self) -> None:
        self.pods: dict[ObjectKey, PodPolicy | None] = {}
        self.created: dict[str, None] = {}  # ordered sets
        self.deleted: dict[str, None] = {}
        self.problems: list[Problem] = []

    def came_alive(self, name: str) -> None:
        if name in self.deleted:
            del self.deleted[name]  # died and came back within the op: unchanged
        else:
            self.created[name] = None

    def died(self, name: str) -> None:
        if name in self.created:
            del self.created[name]
        else:
            self.deleted[name] = None


def _set_names(pp: PodPolicy | None) -> set[str]:
    names: set[str] = set()
    for d in (pp.ingress, pp.egress) if pp is not None else ():
        for r in d.rules if d is not None else ():
            names.update(r.peers or ())
            names.update(r.peer_ports)
    return names


class PolicyCompiler:
    """The cluster's policies, pods and namespaces -> ipsets and local pods' PodPolicies.

    Every policy's sets are kept current, but only the *live* ones, named by
    some local pod's rules, are in deltas and snapshots: a node programs only
    the sets its own pods use. A set that comes alive is reported whole in
    ``sets_created``; member deltas are reported for live sets only.
    """

    def __init__(self, node_name: str):
        self.node_name = node_name
        self._sets = IpSetIndex()
        self._policies: dict[ObjectKey, _Compiled] = {}
        self._by_ns: dict[str, dict[ObjectKey, _Compiled]] = defaultdict(dict)
        self._local: dict[ObjectKey, Pod] = {}  # pods of this node that can be isolated
        self._local_by_ns: dict[str, set[ObjectKey]] = defaultdict(set)
        self._out: dict[ObjectKey, PodPolicy] = {}
        self._origins: dict[ObjectKey, tuple[tuple[RuleRef, ...], tuple[RuleRef, ...]]] = {}
        self._live: Counter[str] = Counter()  # set name -> local pods whose rules name it
        # Current problems, by the object they are about: deltas report them
        # when they arise, problems() lists the ones still true.
        self._policy_problems: dict[ObjectKey, tuple[Problem, ...]] = {}
        self._pod_problems: dict[ObjectKey, tuple[Problem, ...]] = {}
        # Held for the compiler's life: the set exists (empty) before the Node is seen.
        self._node_set, _ = self._sets.acquire(NodeScope())
        self._node_ref = RuleRef(ObjectKey(Node.KIND, "", node_name), Direction.INGRESS, 0)

    # -- inputs -------------------------------------------------------------------

    def update_policy(self, policy: NetworkPolicy) -> PolicyDelta:
        key = policy.key
        old = self._policies.get(key)
        if old is not None and old.policy == policy:
            return PolicyDelta()
        try:
            _check_selector(policy.pod_selector, "spec.podSelector")
        except PolicyInputError as err:
            problem = Problem(key, INVALID_POLICY, f"{key}: {err}; policy skipped")
            log.warning("network policy skipped", extra={"policy": str(key), "field": err.field,
                                                         "reason": err.reason})
            op = self._drop_policy(key)
            self._policy_problems[key] = (problem,)
            op.problems.append(problem)
            return self._delta(op)
        builder = _PolicyBuilder(policy, self._sets)
        compiled = builder.build()
        for p in builder.problems:
            log.warning("network policy part ignored", extra={"policy": str(key), "problem": p.message})
        self._policies[key] = compiled
        self._by_ns[policy.namespace][key] = compiled
        if builder.problems:
            self._policy_problems[key] = tuple(builder.problems)
        else:
            self._policy_problems.pop(key, None)
        op = _Op()
        op.problems += builder.problems
        affected = self._selected(compiled) | (self._selected(old) if old is not None else set())
        self._recompute(affected, op)
        if old is not None:
            self._release(old.scopes)  # after the new version took its references: shared sets stay
        return self._delta(op)

    def remove_policy(self, key: ObjectKey) -> PolicyDelta:
        return self._delta(self._drop_policy(key))

    def update_pod(self, pod: Pod) -> PolicyDelta:
        members = self._sets.update_pod(pod)
        was_local = self._local.get(pod.key)
        if pod.node_name == self.node_name and not pod.terminal and not pod.host_network:
            self._local[pod.key] = pod
            self._local_by_ns[pod.namespace].add(pod.key)
        elif was_local is not None:
            self._forget_local(pod.key)
        now_local = self._local.get(pod.key)
        op = _Op()
        # A local pod's policy depends only on its labels (which policies
        # select it) and its named ports (ingress resolution).
        if (now_local is None) != (was_local is None) or (
                now_local is not None and was_local is not None
                and (was_local.labels != pod.labels or was_local.ports != pod.ports)):
            self._recompute({pod.key}, op)
        return self._delta(op, members)

    def remove_pod(self, key: ObjectKey) -> PolicyDelta:
        members = self._sets.remove_pod(key)
        op = _Op()
        if key in self._local:
            self._forget_local(key)
            self._recompute({key}, op)
        return self._delta(op, members)

    def update_namespace(self, ns: Namespace) -> PolicyDelta:
        # Policies select pods of their own namespace by pod labels only, so a
        # namespace's labels change set members, never rules.
        return self._delta(_Op(), self._sets.update_namespace(ns))

    def remove_namespace(self, name: str) -> PolicyDelta:
        return self._delta(_Op(), self._sets.remove_namespace(name))

    def update_node(self, node: Node) -> PolicyDelta:
        """A Node changed; only this node's own addresses matter (the node set)."""
        if node.name != self.node_name:
            return PolicyDelta()
        addresses = (*node.internal_ips, *node.external_ips)
        return self._delta(_Op(), self._sets.set_node_addresses(addresses))

    def remove_node(self, name: str) -> PolicyDelta:
        if name != self.node_name:
            return PolicyDelta()
        return self._delta(_Op(), self._sets.set_node_addresses(()))

    # -- outputs ------------------------------------------------------------------

    def snapshot(self) -> PolicySnapshot:
        return PolicySnapshot({n: self._sets.get(n) for n in sorted(self._live)}, dict(self._out),
                              dict(self._origins))

    def problems(self) -> list[Problem]:
        """Every problem still true of the current inputs (for a full recompute's report)."""
        out = [p for ps in self._policy_problems.values() for p in ps]
        out += [p for ps in self._pod_problems.values() for p in ps]
        return out

    def stats(self) -> dict[str, int]:
        """Sizes, for metrics: sets tracked (every policy's) and live (on this node), and inputs."""
        return {"sets_tracked": len(self._sets), "sets_live": len(self._live), "policies": len(self._policies),
                "local_pods": len(self._local), "isolated_local_pods": len(self._out)}

    def pod_policy(self, key: ObjectKey) -> PodPolicy | None:
        return self._out.get(key)

    def rule_origins(self, key: ObjectKey, direction: Direction | str) -> tuple[RuleRef, ...]:
        """For each rule of a local pod's direction, the policy rule it came from."""
        pair = self._origins.get(key)
        if pair is None:
            return ()
        return pair[0] if Direction(direction) is Direction.INGRESS else pair[1]

    def describe_set(self, name: str) -> str:
        return describe(self._sets.scope_of(name))

    # -- internals ----------------------------------------------------------------

    def _delta(self, op: _Op, members: Iterable[SetDelta] = ()) -> PolicyDelta:
        # Sets that came alive are sent whole (with this change's members);
        # sets that died need no member updates.
        live_members = tuple(d for d in members if d.name in self._live and d.name not in op.created)
        return PolicyDelta(tuple(self._sets.get(n) for n in op.created), live_members, op.pods,
                           tuple(op.deleted), tuple(op.problems))

    def _drop_policy(self, key: ObjectKey) -> _Op:
        self._policy_problems.pop(key, None)
        op = _Op()
        old = self._policies.pop(key, None)
        if old is None:
            return op
        ns = self._by_ns[key.namespace]
        del ns[key]
        if not ns:
            del self._by_ns[key.namespace]
        self._recompute(self._selected(old), op)
        self._release(old.scopes)
        return op

    def _forget_local(self, key: ObjectKey) -> None:
        self._local.pop(key, None)
        keys = self._local_by_ns.get(key.namespace)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._local_by_ns[key.namespace]

    def _selected(self, compiled: _Compiled) -> set[ObjectKey]:
        ns = compiled.policy.namespace
        sel = compiled.policy.pod_selector
        return {k for k in self._local_by_ns.get(ns, ()) if sel.matches(self._local[k].labels)}

    def _release(self, scopes: Iterable[Scope]) -> None:
        for s in scopes:
            self._sets.release(s)

    def _recompute(self, keys: Iterable[ObjectKey], op: _Op) -> None:
        for key in sorted(keys):
            pod = self._local.get(key)
            new, origins, missing = (None, None, []) if pod is None else self._compile_pod(pod)
            pod_problems = tuple(Problem(key, NAMED_PORT_UNRESOLVED, m) for m in missing)
            op.problems += pod_problems
            if pod_problems:
                self._pod_problems[key] = pod_problems
            else:
                self._pod_problems.pop(key, None)
            old = self._out.get(key)
            if new is None:
                self._out.pop(key, None)
                self._origins.pop(key, None)
            else:
                self._out[key] = new
                self._origins[key] = origins  # type: ignore[assignment]
            if old == new:
                continue
            op.pods[key] = new
            before, after = _set_names(old), _set_names(new)
            for n in after - before:
                self._live[n] += 1
                if self._live[n] == 1:
                    op.came_alive(n)
            for n in before - after:
                self._live[n] -= 1
                if self._live[n] == 0:
                    del self._live[n]
                    op.died(n)

    def _compile_pod(self, pod: Pod) -> tuple[PodPolicy | None, tuple, list[str]]:
        policies = [c for k, c in sorted(self._by_ns.get(pod.namespace, {}).items())
                    if c.policy.pod_selector.matches(pod.labels)]
        if not policies:
            return None, (), []
        missing: list[str] = []
        dirs = []
        origins = []
        for direction in (Direction.INGRESS, Direction.EGRESS):
            isolated = False
            rules: list[Rule] = []
            refs: list[RuleRef] = []
            for c in policies:
                templates = c.ingress if direction is Direction.INGRESS else c.egress
                if templates is None:
                    continue
                isolated = True
                for i, t in enumerate(templates):
                    rule, lacks = _resolve(t, pod)
                    rules.append(rule)
                    refs.append(RuleRef(c.policy.key, direction, i))
                    missing += [f"{pod.key}: {c.policy.key} spec.{direction.value}[{i}]: "
                                f"the pod has no port named {n}; that port matches nothing" for n in lacks]
            if isolated and direction is Direction.INGRESS:
                rules.append(Rule((self._node_set,), ()))
                refs.append(self._node_ref)
            dirs.append(DirectionPolicy(tuple(rules)) if isolated else None)
            origins.append(tuple(refs))
        return PodPolicy(dirs[0], dirs[1]), (origins[0], origins[1]), missing
