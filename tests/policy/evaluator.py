"""The evaluator the policy tests use over the IR.

Prefers the shared reference evaluator (``testbed.policy_reference``, written
against the same IR by another part of the project); until it exists, a small
local one that follows ``vppagent.policy.ir``'s normative semantics.
``SOURCE`` says which one is in use.
"""
from __future__ import annotations

from collections.abc import Mapping

from vppagent.policy.ir import (
    AddrPortSet,
    AddrSet,
    Direction,
    IpAddress,
    IpSet,
    NetSet,
    Packet,
    PodPolicy,
    Reason,
    Verdict,
)


def _member(s: IpSet, addr: IpAddress) -> bool:
    if isinstance(s, AddrSet):
        return addr in s.members
    if isinstance(s, NetSet):
        best = -1
        inside = False
        for nets, verdict in ((s.include, True), (s.exclude, False)):
            for n in nets:
                if n.version == addr.version and addr in n and n.prefixlen > best:
                    best, inside = n.prefixlen, verdict
        return inside
    raise TypeError(f"{s.name} is not an address or prefix set")


def local_evaluate(policy: PodPolicy, sets: Mapping[str, IpSet], direction: str, packet: Packet) -> Verdict:
    d = policy.ingress if Direction(direction) is Direction.INGRESS else policy.egress
    if d is None:
        return Verdict(True, -1, Reason.NOT_ISOLATED.value)
    peer = packet.src if Direction(direction) is Direction.INGRESS else packet.dst
    for i, rule in enumerate(d.rules):
        peer_ok = rule.peers is None or any(_member(sets[n], peer) for n in rule.peers)
        port_ok = not rule.ports or any(
            (r.proto == 0 or r.proto == packet.proto) and r.lo <= packet.dport <= r.hi for r in rule.ports)
        pp = any((peer, packet.proto, packet.dport) in sets[n].members  # type: ignore[union-attr]
                 for n in rule.peer_ports if isinstance(sets[n], AddrPortSet))
        if (peer_ok and port_ok) or pp:
            return Verdict(True, i, Reason.RULE.value)
    return Verdict(False, -1, Reason.DEFAULT_DENY.value)


try:
    from testbed.policy_reference import evaluate as _reference_evaluate
except ImportError:  # not written yet
    _reference_evaluate = None

SOURCE = "testbed.policy_reference" if _reference_evaluate is not None else "tests/policy/evaluator.py (local)"


def evaluate(policy: PodPolicy, sets: Mapping[str, IpSet], direction: str, packet: Packet) -> bool:
    """Allowed or not; when the reference evaluator exists, it must agree with the local one exactly."""
    local = local_evaluate(policy, sets, direction, packet)
    if _reference_evaluate is not None:
        d = Direction(direction)
        ref = _reference_evaluate(policy.ingress if d is Direction.INGRESS else policy.egress, d, packet, sets)
        assert (ref.allowed, ref.rule_index, ref.reason) == (local.allowed, local.rule_index, local.reason), (
            f"reference evaluator says {ref}, local says {local} for {direction} {packet}")
        return ref.allowed
    return local.allowed
